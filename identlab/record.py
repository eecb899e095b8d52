"""A typed record: one trained member's config, status, metrics and provenance.

The on-disk format is the JSON object written by the sweep store (``records/<hash>.json``)
and by ``identlab run --out``. The trainer builds it with :meth:`Record.build` (the one
place its layout is written), :meth:`Record.from_json` reads it, checking every section
against the layout below (:func:`record_body_problem`; the sweep store trusts a record
only when it passes), and :meth:`Record.to_json` writes exactly the same object back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["Record", "RecordError", "record_body_problem"]


class RecordError(ValueError):
    """A JSON object that is not a record (a missing key or a wrong type)."""


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _metric_value(v, depth: int = 0) -> bool:
    """A metric is a scalar or a (nested, at most 3 deep) list of scalars."""
    if _scalar(v):
        return True
    return isinstance(v, list) and depth < 3 and all(_metric_value(x, depth + 1) for x in v)


def _typed_map(obj, key: str, ok) -> str | None:
    bad = next((k for k, v in obj[key].items() if not isinstance(k, str) or not ok(v)), None)
    if bad is not None:
        return f"{key}.{bad} has the wrong type ({type(obj[key][bad]).__name__})"
    return None


PROVENANCE_NUMBERS = ("wall_s", "train_s", "steps_per_s")


def record_body_problem(obj) -> str | None:
    """Why ``obj`` is not a whole record (None: it is): every key present with its type,
    and each section's inner layout — metrics, flags, reasons, sample, train,
    provenance, sweep — as the trainer writes it."""
    if not isinstance(obj, dict):
        return f"a record is a JSON object, got {type(obj).__name__}"
    for key, typ in Record._TYPES.items():
        if key not in obj:
            return f"record misses the key {key!r}"
        if not isinstance(obj[key], typ) or (typ is int and isinstance(obj[key], bool)):
            return (f"record key {key!r} should be {typ.__name__}, "
                    f"got {type(obj[key]).__name__}")
    status, at = obj["status"], obj.get("diverged_at")
    if status not in ("ok", "diverged"):
        return f"unknown status {status!r}"
    if not (at is None or _is_int(at)):
        return f"diverged_at should be an integer or null, got {type(at).__name__}"
    if status == "diverged" and at is None:
        return "a diverged record needs diverged_at"
    if status == "ok" and not obj["metrics"]:
        return "an ok record has no metrics"
    if obj["seed"] != obj["config"].get("seed", obj["seed"]):
        return "its seed is not its config's seed"
    problem = (_typed_map(obj, "metrics", _metric_value)
               or _typed_map(obj, "flags", lambda v: isinstance(v, bool))
               or _typed_map(obj, "provenance", _scalar))
    if problem:
        return problem
    if not all(isinstance(r, str) for r in obj["reasons"]):
        return "reasons should be a list of strings"
    sample = obj.get("sample")
    if not (sample is None or (isinstance(sample, dict)
                               and all(isinstance(v, list) for v in sample.values()))):
        return "sample should be null or a mapping of lists"
    train = obj["train"]
    if not (isinstance(train.get("history", []), list)
            and all(_metric_value(v) for v in train.get("history", []))
            and (train.get("final_loss") is None or _is_num(train["final_loss"]))
            and (train.get("log_every") is None or _is_int(train["log_every"]))):
        return "train should hold final_loss (a number), log_every and history (a list)"
    prov = obj["provenance"]
    if not isinstance(prov.get("device"), str):
        return "provenance names no device"
    bad = [k for k in PROVENANCE_NUMBERS if k in prov and not _is_num(prov[k])]
    if bad:
        return f"provenance.{bad[0]} should be a number"
    sweep = obj.get("sweep")
    if sweep is not None and not (
            isinstance(sweep, dict) and isinstance(sweep.get("name", ""), str)
            and (sweep.get("cell_index") is None or _is_int(sweep["cell_index"]))
            and isinstance(sweep.get("cell", {}), dict)
            and isinstance(sweep.get("values", {}), dict)):
        return "sweep should map name, cell_index, cell and values"
    return None


@dataclass(frozen=True)
class Record:
    """One trained member's record, section by section (the layout on disk)."""

    hash: str
    config: dict
    seed: int
    status: str                      # "ok" | "diverged"
    diverged_at: int | None
    metrics: dict
    flags: dict
    theorem_applies: bool
    reasons: list
    mixer: dict
    sample: dict | None
    train: dict
    provenance: dict
    sweep: dict | None = None        # cell, values and name when written by a sweep
    extra: dict = field(default_factory=dict)  # keys this version does not know

    _TYPES = {"hash": str, "config": dict, "seed": int, "status": str, "metrics": dict,
              "flags": dict, "theorem_applies": bool, "reasons": list, "mixer": dict,
              "train": dict, "provenance": dict}

    @classmethod
    def build(cls, *, hash: str, config: dict, seed: int, diverged: bool,
              diverged_at: int | None, metrics: dict, flags: dict, theorem_applies: bool,
              reasons: list, mixer: dict, sample: dict | None, final_loss: float | None,
              log_every: int | None, history: list, provenance: dict) -> Record:
        """A trained member's record from its parts: the one place the trainer's layout is
        written (``status`` from ``diverged``, the ``train`` section from the final loss,
        the logging interval and the loss history); :meth:`to_json` is the on-disk
        object."""
        return cls(hash=hash, config=config, seed=seed,
                   status="diverged" if diverged else "ok", diverged_at=diverged_at,
                   metrics=metrics, flags=flags, theorem_applies=theorem_applies,
                   reasons=reasons, mixer=mixer, sample=sample,
                   train={"final_loss": final_loss, "log_every": log_every,
                          "history": history},
                   provenance=provenance)

    @classmethod
    def from_json(cls, obj: Any) -> Record:
        problem = record_body_problem(obj)
        if problem:
            raise RecordError(problem)
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: obj.get(k) for k in known},
                   extra={k: v for k, v in obj.items() if k not in known})

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name not in ("extra", "sweep")}
        if self.sweep is not None:
            out["sweep"] = self.sweep
        out.update(self.extra)
        return out

    # ---- typed views of the common fields ------------------------------------------
    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def final_loss(self) -> float | None:
        return self.train.get("final_loss")

    @property
    def history(self) -> list:
        return self.train.get("history") or []

    @property
    def cell(self) -> dict:
        """The sweep cell's axis labels ({} outside a sweep)."""
        return (self.sweep or {}).get("cell") or {}

    def metric(self, key: str, default: Any = None) -> Any:
        return self.metrics.get(key, default)
