"""Running a sweep: plan -> skip finished records -> batched runs -> store -> summary."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from identlab.config import config_hash
from identlab.core.io import ensure_writable_dir, read_json, refuse_empty_path, write_json_atomic
from identlab.core.progress import tqdm
from identlab.core.schema import ConfigError, short
from identlab.sweep.spec import SweepSpec, plan
from identlab.sweep.store import Store, StoreError

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


def check_same_spec(spec: SweepSpec, out: Path, resume: bool, store: Store) -> None:
    """Refuse a directory holding another spec's records unless ``resume``; nothing in it
    is touched first (no quarantine, no spec.json)."""
    old = read_json(out / "spec.json")
    if old is not None and old.get("digest") != spec.digest() and not resume:
        n = len(store.keys())
        name = old.get("name") if isinstance(old, dict) else None
        raise ConfigError("--out", f"{short(str(out), 120)} holds {n} records of a "
                          f"different spec ({short(name)}); pass --resume to add to it "
                          "or choose a new --out")


def prepare_dir(spec: SweepSpec, out: Path, resume: bool, planned: list[str],
                store: Store | None = None, cells: dict | None = None) -> Store:
    """Create or reopen ``out``; refuse a directory holding another spec's records.
    ``planned`` (the config hashes of the plan) and ``cells`` (hash -> the current spec's
    cell metadata, which the report uses instead of what a reused record carries) go into
    spec.json. Call it holding the store's lock (:func:`run_sweep` does)."""
    store = Store(out) if store is None else store
    check_same_spec(spec, out, resume, store)
    data = {**spec.to_json(), "planned": sorted(planned)}
    if cells is not None:
        data["cells"] = cells
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "spec.json", data)
    except OSError as e:
        raise StoreError("--out", f"{short(str(out), 120)}: cannot write spec.json "
                         f"({e.strerror or e}); free space and rerun") from None
    return store


def run_sweep(spec: SweepSpec, out: str | Path, *, executor: str = "local",
              resume: bool = False, device: str = "auto", progress: bool = True,
              max_members: int | None = None, workers: int = 2,
              slurm: dict | None = None, trackers: list[dict] | None = None) -> dict:
    """Run every unfinished (cell, seed) of ``spec`` into ``out``; return a summary.

    ``trackers``: tracker specs, e.g. ``[{"kind": "tensorboard", "dir": "runs/tb"}]``
    (:mod:`identlab.track`), fed every logged loss and every record this run writes.

    Options are checked before anything is written. Under the store's lock (taken before
    spec.json is written): untrusted records are set aside (``quarantined`` in the
    summary: ``[path, reason]`` each) and redone; ``written`` counts the records this
    run wrote, ``recreated`` how often ``out`` vanished and was restored with spec.json,
    ``on_disk`` how many planned records are there at the end."""
    from identlab.learn.train import resolve_compile, resolve_device
    from identlab.sweep.executors import EXECUTORS

    check_options(executor=executor, device=device, max_members=max_members,
                  workers=workers)
    from identlab.track import check_specs
    from identlab.world.pixels import check_frame_cache

    trackers = check_specs(trackers)

    refuse_empty_path(out, "--out")
    out = Path(out)
    todo = plan(spec)
    hashes = [config_hash(c) for c, _ in todo]
    store = Store(out)
    store.check_layout()
    check_frame_cache([c for c, _ in todo])
    dev = resolve_device(device)
    for mode in sorted({c.train.compile for c, _ in todo}):  # refused before anything exists
        resolve_compile(mode, dev, say=lambda _: None)
    ensure_writable_dir(out, "--out")  # takes data: a full disk is found before training
    t0 = time.perf_counter()
    with store.lock():
        # the spec check comes first: a refused run moves nothing
        prepare_dir(spec, out, resume, hashes, store,
                    cells={h: m for h, (_, m) in zip(hashes, todo)})
        moved = store.quarantine()
        done = store.keys()
        pending = [(c, m) for (c, m), h in zip(todo, hashes) if h not in done]
        bar = tqdm(total=len(todo), initial=len(todo) - len(pending),
                   desc=f"sweep {spec.name}", unit="run", disable=not progress,
                   dynamic_ncols=True, file=sys.stderr)
        written = 0
        if pending:
            written = EXECUTORS[executor](
                pending, store, device=device, bar=bar, max_members=max_members,
                workers=workers, slurm=slurm or {}, progress=progress,
                trackers=trackers) or 0
        bar.close()
        summary = _summary(spec, store, hashes, len(todo) - len(pending), written, moved)
        summary["wall_s"] = round(time.perf_counter() - t0, 1)
        try:
            write_json_atomic(out / "summary.json", summary)
        except OSError as e:
            raise StoreError("--out", f"{short(str(out), 120)}: every record is written, "
                             f"but summary.json is not ({e.strerror or e})") from None
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
