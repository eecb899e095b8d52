"""Where a sweep's batched ensembles run: in-process, local worker processes, or SLURM.

Every executor receives the pending (config, sweep metadata) pairs, cuts them into
batched chunks (same shape signature, memory-bounded), and each chunk's records are
written to the store as soon as the chunk finishes — so a killed sweep loses at most
the chunks in flight.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from identlab.config import RunConfig, build
from identlab.core.schema import ConfigError, to_dict
from identlab.sweep.store import Store

__all__ = ["EXECUTORS", "chunks", "run_chunk"]

Pending = list[tuple[RunConfig, dict]]


def chunks(pending: Pending, device, max_members: int | None) -> list[Pending]:
    """Group by shape signature, then split each group to the memory budget."""
    from identlab.learn.budget import chunk_groups
    from identlab.learn.train import resolve_device

    idx = chunk_groups([c for c, _ in pending], resolve_device(device),
                       max_members=max_members)
    return [[pending[i] for i in chunk] for chunk in idx]


def run_chunk(items: list[tuple[dict, dict]], root: str, device: str = "auto",
              progress: bool = False, threads: int | None = None) -> int:
    """Train one chunk (plain-data configs, so it pickles) and store its records."""
    import torch

    from identlab.learn.program import run_group

    if threads:
        torch.set_num_threads(threads)
    cfgs = [build(RunConfig, c) for c, _ in items]
    records = run_group(cfgs, device=device, progress=progress,
                        desc=f"train K={len(cfgs)}")
    store = Store(root)
    for rec, (_, meta) in zip(records, items):
        rec["sweep"] = meta
        store.put(rec)
    return len(records)


def _as_items(chunk: Pending) -> list[tuple[dict, dict]]:
    return [(to_dict(c), m) for c, m in chunk]


def run_local(pending: Pending, store: Store, *, device, bar, max_members, progress,
              **_) -> None:
    for chunk in chunks(pending, device, max_members):
        bar.update(run_chunk(_as_items(chunk), str(store.root), device, progress))


def run_process(pending: Pending, store: Store, *, device, bar, max_members, workers,
                **_) -> None:
    """Chunks in ``workers`` local processes (one torch thread each by default)."""
    if workers < 1:
        raise ConfigError("--workers", f"= {workers}: must be >= 1")
    threads = max(1, (os.cpu_count() or 1) // workers)
    todo = chunks(pending, device, max_members)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futs = {pool.submit(run_chunk, _as_items(c), str(store.root), device, False,
                            threads) for c in todo}
        while futs:
            done, futs = wait(futs, return_when=FIRST_COMPLETED)
            for f in done:
                bar.update(f.result())


def run_slurm(pending: Pending, store: Store, *, device, bar, max_members, slurm,
              **_) -> None:
    """A submitit job array, one job per chunk. ``slurm['cluster']='local'`` runs the
    same path with submitit's local executor (used by the tests)."""
    try:
        import submitit
    except ImportError:
        raise ConfigError("--executor", "= 'slurm': needs submitit; install the extra: "
                          "pip install 'identlab[slurm]'") from None
    folder = Path(store.root) / "slurm"
    ex = submitit.AutoExecutor(folder=str(folder), cluster=slurm.get("cluster"))
    params = {"timeout_min": int(slurm.get("time_min") or 60)}
    if slurm.get("partition"):
        params["slurm_partition"] = slurm["partition"]
    if slurm.get("gpus"):
        params["gpus_per_node"] = int(slurm["gpus"])
    ex.update_parameters(**params)
    todo = chunks(pending, device, max_members)
    jobs = ex.map_array(run_chunk, [_as_items(c) for c in todo],
                        [str(store.root)] * len(todo), [device] * len(todo))
    for job in jobs:
        bar.update(job.result())


EXECUTORS: dict[str, Callable] = {"local": run_local, "process": run_process,
                                  "slurm": run_slurm}
