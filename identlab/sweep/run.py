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

__all__ = ["run_sweep", "prepare_dir", "check_options", "DEFAULT_SWEEPS", "sweeps_dir"]


def check_options(*, executor: str = "local", device: str = "auto",
                  max_members: int | None = None, workers: int = 2) -> None:
    """Refuse a bad option before anything is created (no output directory, no
    spec.json): the executor's name, the device, ``max_members`` and ``workers``."""
    from identlab.learn.train import resolve_device
    from identlab.sweep.executors import EXECUTORS, check_max_members, check_workers

    if executor not in EXECUTORS:
        raise ConfigError("--executor", f"= {executor!r}: one of {', '.join(EXECUTORS)}")
    check_max_members(max_members)
    check_workers(workers)
    resolve_device(device)


def prepare_dir(spec: SweepSpec, out: Path, resume: bool, planned: list[str],
                store: Store | None = None) -> Store:
    """Create or reopen ``out``; refuse a directory holding another spec's records.
    ``planned`` (the config hashes of the plan) goes into spec.json for the report.
    Call it holding the store's lock (:func:`run_sweep` does)."""
    out.mkdir(parents=True, exist_ok=True)
    spec_path = out / "spec.json"
    old = read_json(spec_path)
    store = Store(out) if store is None else store
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
    """Run every unfinished (cell, seed) of ``spec`` into ``out``; return a summary.

    Options are checked before anything is written. Under the store's lock (taken before
    spec.json is written): untrusted records are set aside (``quarantined`` in the
    summary: ``[path, reason]`` each) and redone; ``written`` counts the records this
    run wrote, ``recreated`` how often ``out`` vanished and was restored with spec.json,
    ``on_disk`` how many planned records are there at the end."""
    from identlab.sweep.executors import EXECUTORS

    check_options(executor=executor, device=device, max_members=max_members,
                  workers=workers)
    out = Path(out)
    todo = plan(spec)
    hashes = [config_hash(c) for c, _ in todo]
    store = Store(out)
    t0 = time.perf_counter()
    with store.lock():
        moved = store.quarantine()
        prepare_dir(spec, out, resume, hashes, store)
        done = store.keys()
        pending = [(c, m) for (c, m), h in zip(todo, hashes) if h not in done]
        bar = tqdm(total=len(todo), initial=len(todo) - len(pending),
                   desc=f"sweep {spec.name}", unit="run", disable=not progress,
                   dynamic_ncols=True, file=sys.stderr)
        written = 0
        if pending:
            written = EXECUTORS[executor](
                pending, store, device=device, bar=bar, max_members=max_members,
                workers=workers, slurm=slurm or {}, progress=progress) or 0
        bar.close()
        summary = _summary(spec, store, hashes, len(todo) - len(pending), written, moved)
        summary["wall_s"] = round(time.perf_counter() - t0, 1)
        write_json_atomic(out / "summary.json", summary)
    return summary


def _summary(spec: SweepSpec, store: Store, hashes: list[str], skipped: int, written: int,
             moved: list) -> dict:
    planned = set(hashes)
    recs = [r for r in store.records() if r.get("hash") in planned]
    return {"name": spec.name, "planned": len(hashes), "skipped": skipped,
            "trained": written, "written": written, "on_disk": len(recs),
            "diverged": sum(r["status"] == "diverged" for r in recs),
            "recreated": store.recreated,
            "quarantined": [[str(p), why] for p, why in moved]}


DEFAULT_SWEEPS = ("gaussianity", "drift", "objectives", "timescales", "lambda_rho", "planning",
                  "constraint", "stability")


def sweeps_dir() -> Path:
    """``sweeps/`` of the checkout (falls back to the installed package copy)."""
    here = Path(__file__).resolve().parent.parent  # the identlab package
    for cand in (Path.cwd() / "sweeps", here.parent / "sweeps", here / "sweeps"):
        if cand.is_dir():
            return cand
    return Path("sweeps")
