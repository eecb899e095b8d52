"""A typed record: one trained member's config, status, metrics and provenance.

The on-disk format is the JSON object written by the sweep store (``records/<hash>.json``)
and by ``identlab run --out``; :meth:`Record.from_json` reads it (checking the keys every
record has) and :meth:`Record.to_json` writes exactly the same object back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["Record", "RecordError"]


class RecordError(ValueError):
    """A JSON object that is not a record (a missing key or a wrong type)."""


@dataclass(frozen=True)
class Record:
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
    def from_json(cls, obj: Any) -> Record:
        if not isinstance(obj, dict):
            raise RecordError(f"a record is a JSON object, got {type(obj).__name__}")
        for key, typ in cls._TYPES.items():
            if key not in obj:
                raise RecordError(f"record misses the key {key!r}")
            if not isinstance(obj[key], typ) or (typ is int and isinstance(obj[key], bool)):
                raise RecordError(f"record key {key!r} should be {typ.__name__}, "
                                  f"got {type(obj[key]).__name__}")
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
