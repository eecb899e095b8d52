"""The walkthrough's runs: sweep specs planned, trained and stored by the sweep engine.

Each section that trains has a spec ``sweeps/teach/<section>.yaml`` whose default grid is
the full walkthrough and whose ``quick`` preset is the tiny budget of ``--quick``. The
specs are expanded by :func:`identlab.sweep.plan` (so config hashes are those of any other
sweep), configs shared between sections are trained once, all pending configs of one shape
signature train as one batched program through the sweep's local executor, and every
record is written to a :class:`identlab.store.Store` under the runs directory as its chunk
finishes — an interrupted walkthrough resumes where it stopped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from identlab.config import RunConfig, config_hash
from identlab.core.io import read_json, write_json_atomic
from identlab.core.progress import tqdm
from identlab.measure.stats import ok_rows, seed_std
from identlab.record import Record, RecordError
from identlab.sweep.executors import EXECUTORS
from identlab.sweep.run import sweeps_dir
from identlab.sweep.spec import SweepSpec, load_spec, plan
from identlab.sweep.store import Store

__all__ = ["SPECS", "QUICK_PRESET", "CHECKS", "Budget", "Run", "Execution", "spec_path",
           "load_specs", "grid_values", "plan_runs", "execute", "results_frame", "agg",
           "cell"]

# section id -> spec file stem under sweeps/teach/ (section 8 reuses the runs of these)
SPECS = {"s2": "unmix", "s4": "gaussianity", "s5": "stationarity", "s6": "additive",
         "s7": "timescales"}
QUICK_PRESET = "quick"
# samples of the checks that train nothing: (world diagnostics, Monte-Carlo pairs per dot
# of section 3), full and quick
CHECKS = {False: (20_000, 200_000), True: (2_000, 20_000)}

# (cell values, cell index) -> the (arm, level, order within its section) rows that one
# grid cell fills in the results frame
RowFn = Callable[[Mapping, int], list[tuple[str, object, tuple]]]


def spec_path(stem: str, root: str | Path | None = None) -> Path:
    """``sweeps/teach/<stem>.yaml`` of the checkout (or under ``root``)."""
    return Path(root or sweeps_dir() / "teach") / f"{stem}.yaml"


def load_specs(quick: bool, root: str | Path | None = None) -> dict[str, SweepSpec]:
    """Section id -> validated spec (with the ``quick`` preset when ``quick``)."""
    preset = QUICK_PRESET if quick else None
    return {sec: load_spec(spec_path(stem, root), preset) for sec, stem in SPECS.items()}


def grid_values(spec: SweepSpec, key: str) -> list:
    """Distinct values of one grid axis, in grid order."""
    out: list = []
    for v in spec.grid[key]:
        if v not in out:
            out.append(v)
    return out


@dataclass(frozen=True)
class Budget:
    """Sizes the walkthrough's text and checks refer to. The run sizes are read from the
    resolved config of section 2's spec (their one home is the spec); ``diag_n`` and
    ``mc_n`` size the checks that train nothing (:data:`CHECKS`)."""

    steps: int
    batch: int
    lr: float
    hidden: int
    depth: int
    slices: int
    eval_n: int
    rho: float                    # one-step correlation of every scalar-ρ world
    lam: float                    # the paper's SIGReg weight
    main_seeds: tuple[int, ...]   # seeds of section 2
    seeds: tuple[int, ...]        # seeds of the condition sections
    diag_n: int                   # samples for world diagnostics
    mc_n: int                     # Monte-Carlo pairs per dot in section 3
    quick: bool = False

    def __post_init__(self) -> None:
        if not (0.0 < self.rho < 1.0) or min(self.steps, self.diag_n, self.mc_n) < 1:
            raise ValueError(f"invalid walkthrough budget: {self}")

    @classmethod
    def from_specs(cls, specs: Mapping[str, SweepSpec], quick: bool) -> "Budget":
        cfg: RunConfig = plan(specs["s2"])[0][0]
        enc, obj = cfg.learner.encoder, cfg.learner.objective
        diag_n, mc_n = CHECKS[quick]
        return cls(steps=cfg.train.steps, batch=cfg.train.batch, lr=cfg.train.lr,
                   hidden=enc.hidden, depth=enc.depth, slices=obj.slices,
                   eval_n=cfg.eval.n, rho=float(cfg.world.dynamics.rho), lam=obj.lam,
                   main_seeds=specs["s2"].seeds, seeds=specs["s4"].seeds,
                   diag_n=diag_n, mc_n=mc_n, quick=quick)


@dataclass(frozen=True)
class Run:
    """One row of the walkthrough: a planned (cell, seed) of a section's spec, named by
    the section's arm and level."""

    section: str
    arm: str
    level: object
    seed: int
    order: tuple
    cfg: RunConfig
    meta: dict

    @property
    def hash(self) -> str:
        return config_hash(self.cfg)


def plan_runs(specs: Mapping[str, SweepSpec], rows: Mapping[str, RowFn]) -> list[Run]:
    """Every (cell, seed) of every spec, expanded by :func:`identlab.sweep.plan`, as rows
    named by ``rows[section](cell values, cell index)`` (one cell may fill several rows)."""
    out = []
    for sec, spec in specs.items():
        for cfg, meta in plan(spec):
            for arm, level, order in rows[sec](meta["values"], meta["cell_index"]):
                out.append(Run(sec, arm, level, cfg.seed, order, cfg, meta))
    return out


@dataclass
class Execution:
    """Records by config hash; how many were trained now and how many were reused."""

    records: dict[str, Record]
    trained: int
    reused: int

    def programs(self) -> list[dict]:
        """The batched programs the records came from (members, wall time, speed)."""
        progs: dict[tuple, dict] = {}
        for rec in self.records.values():
            p = rec.provenance
            key = (rec.config["learner"]["objective"]["kind"], p["group_size"],
                   p["train_s"], p["steps_per_s"], p["device"])
            g = progs.setdefault(key, {"objective": key[0], "members": key[1],
                                       "wall_s": 0.0, "steps_per_s": key[3],
                                       "device": key[4]})
            g["wall_s"] = max(g["wall_s"], p["wall_s"])  # the last member covers the group
        return list(progs.values())


def execute(runs: list[Run], specs: Mapping[str, SweepSpec], runs_dir: str | Path, *,
            device="auto", progress: bool = False) -> Execution:
    """Train every distinct planned config not yet in the store at ``runs_dir`` (one
    batched program per shape signature, cut to the memory budget by the sweep
    executor) and return the records of the plan."""
    store = Store(runs_dir)
    unique: dict[str, tuple[RunConfig, dict]] = {}
    for r in runs:
        unique.setdefault(r.hash, (r.cfg, r.meta))
    write_plan(Path(runs_dir), specs, runs)
    pending = [item for h, item in unique.items() if not store.has(h)]
    bar = tqdm(total=len(unique), initial=len(unique) - len(pending), desc="teach",
               unit="run", disable=not progress, dynamic_ncols=True, file=sys.stderr)
    if pending:
        EXECUTORS["local"](pending, store, device=device, bar=bar, max_members=None,
                           progress=progress)
    bar.close()
    records = {h: rec for h in unique if (rec := store_record(store, h)) is not None}
    missing = set(unique) - set(records)
    if missing:
        raise RuntimeError(f"{len(missing)} planned record(s) missing from {store.dir}")
    return Execution(records, trained=len(pending), reused=len(unique) - len(pending))


def store_record(store: Store, key: str) -> Record | None:
    """The stored record of ``key``, or None when missing, unreadable or not a record."""
    rec = read_json(store.path(key))
    if not (isinstance(rec, dict) and rec.get("hash") == key):
        return None
    try:
        return Record.from_json(rec)
    except RecordError:
        return None


def write_plan(root: Path, specs: Mapping[str, SweepSpec], runs: list[Run]) -> None:
    """``root/plan.json``: every resolved spec with the config hashes it plans."""
    planned = {sec: sorted({r.hash for r in runs if r.section == sec}) for sec in specs}
    write_json_atomic(root / "plan.json", {sec: {**spec.to_json(), "planned": planned[sec]}
                                           for sec, spec in specs.items()})


def results_frame(runs: list[Run], records: dict[str, Record]) -> pd.DataFrame:
    """One row per planned run (by section, seed, then the section's own order): section,
    arm, level, seed, hash, status and the scalar metrics (per-latent R² as r2_dim1/2)."""
    rows = []
    for r in sorted(runs, key=lambda r: (r.section, r.seed, r.order)):
        rec = records[r.hash]
        m = rec.metrics
        row = {"section": r.section, "arm": r.arm, "level": r.level, "seed": r.seed,
               "hash": rec.hash, "status": rec.status}
        for k, v in m.items():
            if isinstance(v, (bool, int, float)) or v is None:
                row[k] = np.nan if v is None else v
        dims = m.get("r2_hz_dims") or [None, None]
        row["r2_dim1"], row["r2_dim2"] = (np.nan if d is None else d for d in dims[:2])
        rows.append(row)
    return pd.DataFrame(rows)


def agg(df: pd.DataFrame, metric: str, keys=("arm", "level")) -> pd.DataFrame:
    """Mean, std (:func:`~identlab.measure.stats.seed_std`) and count of ``metric`` over
    finished runs per ``keys``."""
    sub = ok_rows(df).dropna(subset=[metric]) if metric in df else df.iloc[0:0]
    g = sub.groupby(list(keys), sort=False)[metric]
    return g.agg(mean="mean", std=seed_std, n="count").reset_index()


def cell(stats_df: pd.DataFrame, arm, level) -> tuple[float, float, int]:
    """(mean, std, n) of one (arm, level) row of :func:`agg`; NaNs when absent."""
    m = stats_df[(stats_df["arm"] == arm) & (stats_df["level"] == level)]
    if not len(m):
        return float("nan"), float("nan"), 0
    r = m.iloc[0]
    return float(r["mean"]), float(r["std"]), int(r["n"])
