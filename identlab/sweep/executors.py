"""Where a sweep's batched ensembles run: in-process, local worker processes, or SLURM.

Every executor receives the pending (config, sweep metadata) pairs, cuts them into
batched chunks (same shape signature, memory-bounded), and each chunk's records are
written to the store as soon as the chunk finishes — so a killed sweep loses at most
the chunks in flight.

Each executor holds the store's write lock while it runs (a second sweep into the same
directory is refused), drops work another writer finished in the meantime, and
restores a directory deleted under it. Ctrl-C (KeyboardInterrupt) cancels every queued
chunk and abandons the running ones (their records are not written); the caller prints
one line and exits 130.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from identlab.config import RunConfig, build, config_hash
from identlab.core.schema import ConfigError, to_dict
from identlab.sweep.store import Store

__all__ = ["EXECUTORS", "chunks", "run_chunk"]

Pending = list[tuple[RunConfig, dict]]


def chunks(pending: Pending, device, max_members: int | None) -> list[Pending]:
    """Group by shape signature, then split each group to the memory budget."""
    from identlab.learn.program import chunk_groups

    check_max_members(max_members)
    from identlab.learn.train import resolve_device

    idx = chunk_groups([c for c, _ in pending], resolve_device(device),
                       max_members=max_members)
    return [[pending[i] for i in chunk] for chunk in idx]


def check_max_members(max_members: int | None) -> None:
    if max_members is not None and (isinstance(max_members, bool)
                                    or not isinstance(max_members, int) or max_members < 1):
        raise ConfigError("--max-members", f"= {max_members!r}: must be an integer >= 1 "
                          "(or unset: the memory budget decides)")


def check_workers(workers: int) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError("--workers", f"= {workers!r}: must be an integer >= 1")


def exclusive(fn: Callable) -> Callable:
    """Run executor ``fn`` holding the store's write lock, on the pending items no other
    writer has finished meanwhile, restoring the directory if it vanishes under it.
    Returns the number of records written."""
    @functools.wraps(fn)
    def run(pending: Pending, store: Store, *, bar, **kw) -> int:
        check_max_members(kw.get("max_members"))
        written = 0
        with store.lock():
            store.clean_temp()
            store.keep_spec()
            todo = [(c, m) for c, m in pending if not store.has(config_hash(c))]
            bar.update(len(pending) - len(todo))
            if todo:
                written = fn(todo, store, bar=bar, **kw)
            store.ensure_dir()
        return written

    return run


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


@exclusive
def run_local(pending: Pending, store: Store, *, device, bar, max_members, progress,
              **_) -> int:
    written = 0
    for chunk in chunks(pending, device, max_members):
        n = run_chunk(_as_items(chunk), str(store.root), device, progress)
        written += n
        bar.update(n)
        store.ensure_dir()
    return written


_STOP = None  # in a worker: the pool's stop event (set by the parent on Ctrl-C)


def _init_worker(stop) -> None:
    """Worker initializer: remember the stop event; an idle worker ignores Ctrl-C (the
    parent decides what happens)."""
    global _STOP
    _STOP = stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_chunk(*args) -> int:
    """:func:`run_chunk` in a worker: skipped once the parent has stopped (chunks already
    handed to the worker queue), interruptible (abandoned, nothing written) while it
    trains, deaf to SIGINT while idle."""
    if _STOP is not None and _STOP.is_set():
        return 0
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run_chunk(*args)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_process(pending: Pending, store: Store, *, device, bar, max_members, workers,
                **_) -> int:
    """Chunks in ``workers`` local processes (one torch thread each by default). On an
    error or Ctrl-C no further chunk starts; on Ctrl-C the running ones are interrupted
    too (SIGINT to the workers, the only children of this process)."""
    check_workers(workers)
    return _run_process(pending, store, device=device, bar=bar, max_members=max_members,
                 workers=workers)


@exclusive
def _run_process(pending: Pending, store: Store, *, device, bar, max_members, workers,
                 **_) -> int:
    threads = max(1, (os.cpu_count() or 1) // workers)
    todo = chunks(pending, device, max_members)
    stop = multiprocessing.Event()
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                               initargs=(stop,))
    written = 0
    try:
        futs = {pool.submit(_worker_chunk, _as_items(c), str(store.root), device, False,
                            threads) for c in todo}
        while futs:
            done, futs = wait(futs, return_when=FIRST_COMPLETED)
            for f in done:
                written += f.result()
                bar.update(f.result())
            store.ensure_dir()
        return written
    except BaseException as e:
        stop.set()
        if isinstance(e, KeyboardInterrupt):
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGINT)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@exclusive
def run_slurm(pending: Pending, store: Store, *, device, bar, max_members, slurm,
              **_) -> int:
    """A submitit job array, one job per chunk. ``slurm['cluster']='local'`` runs the
    same path with submitit's local executor (used by the tests). Ctrl-C cancels every
    job of the array; local job controllers write to ``slurm/controllers.log``, never to
    this terminal, and are waited for (a few seconds at most) so nothing trains on."""
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
    local = ex.cluster in ("local", "debug")
    quiet = _children_write_to(folder / "controllers.log") if local else contextlib.nullcontext()
    with quiet:
        jobs = ex.map_array(run_chunk, [_as_items(c) for c in todo],
                            [str(store.root)] * len(todo), [device] * len(todo))
    written = 0
    try:
        for job in jobs:
            n = job.result()
            written += n
            bar.update(n)
            store.ensure_dir()
        return written
    except BaseException:
        _cancel(jobs, wait_s=CANCEL_WAIT_S if local else 0.0)
        raise


CANCEL_WAIT_S = 10.0  # local jobs: how long a cancel waits for the controllers to end


def _cancel(jobs: list, wait_s: float) -> None:
    """Cancel every job; for local jobs wait up to ``wait_s`` for their controllers
    (which stop their task: SIGINT, then SIGKILL a second later) to exit."""
    for job in jobs:
        with contextlib.suppress(Exception):
            job.cancel(check=False)
    deadline = time.monotonic() + wait_s
    for job in jobs:
        proc = getattr(job, "_process", None)  # a local job's controller process
        if proc is not None and wait_s > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))


@contextlib.contextmanager
def _children_write_to(path: Path):
    """Processes started inside the block inherit ``path`` (appended to) as their
    stdout and stderr; this process's own file descriptors 1 and 2 are restored after."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(log, 1)
        os.dup2(log, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log):
            os.close(fd)


EXECUTORS: dict[str, Callable] = {"local": run_local, "process": run_process,
                                  "slurm": run_slurm}
