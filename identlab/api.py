"""The public Python API (``import identlab as il``).

    cfg = il.load_run("configs/spiral.yaml", ["train.steps=300"])
    f = il.fit(cfg)                 # or il.fit([cfg.with_seed(s) for s in range(4)])
    m = f.score()                   # exactly the record's metrics
    h = f.embed(x)                  # the encoder on any observations

Every default lives in the config tree (:mod:`identlab.config`); this module only
composes the parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from identlab.config import RunConfig
from identlab.measure.config import EvalConfig
from identlab.measure.metrics import evaluate as _evaluate
from identlab.record import Record
from identlab.run.program import Trained, embed, train_group

__all__ = ["Fitted", "fit", "evaluate", "run_sweep"]


class Fitted:
    """Members trained together as one batched program.

    ``embed(x, member)`` applies a member's encoder; ``score(member)`` returns the
    metrics its record carries (computed once, on its own held-out pairs);
    ``records()`` the typed records; ``history`` the loss curves (one list per member,
    a value every ``log_every`` steps); ``worlds`` and ``configs`` each member's parts.
    """

    def __init__(self, trained: Trained) -> None:
        self._trained = trained
        self._records: dict[int, dict] = {}

    @property
    def configs(self) -> list[RunConfig]:
        return list(self._trained.cfgs)

    @property
    def worlds(self) -> list:
        return list(self._trained.program.worlds)

    @property
    def history(self) -> list[list[float | None]]:
        return self._trained.result.history

    @property
    def log_every(self) -> int:
        return self._trained.result.log_every

    def __len__(self) -> int:
        return len(self._trained.cfgs)

    def _member(self, member: int) -> int:
        if not (isinstance(member, int) and 0 <= member < len(self)):
            raise IndexError(f"member {member!r}: this fit has members 0..{len(self) - 1}")
        return member

    def embed(self, x: np.ndarray | torch.Tensor, member: int = 0) -> np.ndarray:
        """h = f(x) for observations x (n, D) (frames: (n, 3, H, W) uint8), float64."""
        k = self._member(member)
        t = self._trained
        return embed(t.program.learners[k], t.result.params, k, x, t.device)

    def _record(self, member: int) -> dict:
        k = self._member(member)
        if k not in self._records:
            self._records[k] = self._trained.record(k)
        return self._records[k]

    def score(self, member: int = 0) -> dict:
        """The member's metrics, identical to its record's ``metrics``."""
        return dict(self._record(member)["metrics"])

    def records(self) -> list[Record]:
        return [Record.from_json(self._record(k)) for k in range(len(self))]


def fit(cfg_or_cfgs: RunConfig | Sequence[RunConfig], device: str | torch.device = "auto",
        progress: bool = True) -> Fitted:
    """Train one config, or several sharing one shape (same world dimension, mixer kind,
    architecture, objective structure, steps and batch), as one batched program."""
    cfgs = [cfg_or_cfgs] if isinstance(cfg_or_cfgs, RunConfig) else list(cfg_or_cfgs)
    if not cfgs or not all(isinstance(c, RunConfig) for c in cfgs):
        raise TypeError("fit needs a RunConfig or a non-empty sequence of them "
                        "(il.load_run builds one)")
    return Fitted(train_group(cfgs, device=device, progress=progress))


def evaluate(h_t, h_t1, z_t, z_t1, eval_cfg: EvalConfig | None = None, *,
             rho: float | None = None, seed: int = 0) -> dict:
    """The record's metrics for given embeddings and latents (see
    :func:`identlab.measure.metrics.evaluate`); settings from ``eval_cfg``."""
    return _evaluate(h_t, h_t1, z_t, z_t1, eval_cfg, rho=rho, seed=seed)


def run_sweep(spec, out: str | Path, *, executor: str = "local", preset: str | None = None,
              resume: bool = False, device: str = "auto", progress: bool = True,
              **options) -> pd.DataFrame:
    """Run a sweep spec (a path, a mapping or a loaded spec) into ``out`` (resumable) and
    return its records as a DataFrame (one row per record; see ``show.report``)."""
    from identlab.show.report import load_records
    from identlab.sweep.run import run_sweep as _run
    from identlab.sweep.spec import SweepSpec, load_spec

    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec, preset)
    _run(spec, out, executor=executor, resume=resume, device=device, progress=progress,
         **options)
    return load_records(out)
