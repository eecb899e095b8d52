"""Running a sweep: plan -> skip finished records -> batched runs -> store -> summary."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from identlab.config import config_hash
from identlab.core.io import read_json, write_json_atomic
from identlab.core.schema import ConfigError
from identlab.sweep.spec import SweepSpec, plan
from identlab.sweep.store import Store

__all__ = ["run_sweep", "prepare_dir", "DEFAULT_SWEEPS", "sweeps_dir"]


def prepare_dir(spec: SweepSpec, out: Path, resume: bool, planned: list[str]) -> Store:
    """Create or reopen ``out``; refuse a directory holding another spec's records.
    ``planned`` (the config hashes of the plan) goes into spec.json for the report."""
    out.mkdir(parents=True, exist_ok=True)
    spec_path = out / "spec.json"
    old = read_json(spec_path)
    store = Store(out)
    if old is not None and old.get("digest") != spec.digest() and not resume:
        n = len(store.keys())
        raise ConfigError("--out", f"{str(out)!r} holds {n} records of a different spec "
                          f"({old.get('name')!r}); pass --resume to add to it or choose "
                          "a new --out")
    write_json_atomic(spec_path, {**spec.to_json(), "planned": sorted(planned)})
    return store


def run_sweep(spec: SweepSpec, out: str | Path, *, executor: str = "local",
              resume: bool = False, device: str = "auto", progress: bool = True,
              max_members: int | None = None, workers: int = 2,
              slurm: dict | None = None) -> dict:
    """Run every unfinished (cell, seed) of ``spec`` into ``out``; return a summary."""
    from identlab.sweep.executors import EXECUTORS

    if executor not in EXECUTORS:
        raise ConfigError("--executor", f"= {executor!r}: one of {', '.join(EXECUTORS)}")
    out = Path(out)
    todo = plan(spec)
    hashes = [config_hash(c) for c, _ in todo]
    store = prepare_dir(spec, out, resume, hashes)
    done = store.keys()
    pending = [(c, m) for (c, m), h in zip(todo, hashes) if h not in done]
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), initial=len(todo) - len(pending), desc=f"sweep {spec.name}",
               unit="run", disable=not progress, dynamic_ncols=True, file=sys.stderr)
    n_before = len(done)
    if pending:
        EXECUTORS[executor](pending, store, device=device, bar=bar, max_members=max_members,
                            workers=workers, slurm=slurm or {}, progress=progress)
    bar.close()
    planned = set(hashes)
    recs = [r for r in store.records() if r.get("hash") in planned]
    summary = {"name": spec.name, "planned": len(todo), "skipped": len(todo) - len(pending),
               "trained": len(store.keys()) - n_before,
               "diverged": sum(r["status"] == "diverged" for r in recs),
               "wall_s": round(time.perf_counter() - t0, 1)}
    write_json_atomic(out / "summary.json", summary)
    return summary


DEFAULT_SWEEPS = ("gaussianity", "drift", "objectives", "timescales", "lambda_rho", "planning",
                  "constraint")


def sweeps_dir() -> Path:
    """``sweeps/`` of the checkout (falls back to the installed package copy)."""
    here = Path(__file__).resolve().parent.parent  # the identlab package
    for cand in (Path.cwd() / "sweeps", here.parent / "sweeps", here / "sweeps"):
        if cand.is_dir():
            return cand
    return Path("sweeps")
