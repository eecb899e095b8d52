"""Where a sweep's batched ensembles run: in-process, local worker processes, or SLURM.

Every executor receives the pending (config, sweep metadata) pairs, cuts them into
batched chunks (same shape signature, memory-bounded), and each chunk's records are
written to the store as soon as the chunk finishes — so a killed sweep loses at most
the chunks in flight.

Each executor holds the store's write lock while it runs (a second sweep into the same
directory is refused), drops work another writer finished in the meantime, and
restores a directory deleted under it. Ctrl-C (KeyboardInterrupt) cancels every queued
chunk and abandons the running ones (their records are not written); the caller prints
one line and exits 130. SIGTERM (what SLURM sends on preemption, what ``kill`` sends)
takes the same path: inside :func:`sigterm_raises` it raises :class:`Terminated`, a
KeyboardInterrupt, and the caller prints one line and exits 143.

Worker processes (``--executor process``) die with the sweep process: they are forked
by it with the Linux parent-death signal set to SIGKILL, and before each record they
write they check that their parent is still the sweep process and that it has not
stopped — so a killed or terminated sweep leaves no worker behind writing records.

This module imports no torch at import time (the command line imports it to catch
:class:`Terminated`).
"""

from __future__ import annotations

import contextlib
import ctypes
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
from typing import TYPE_CHECKING

from identlab.core.schema import ConfigError, to_dict
from identlab.sweep.store import Store

if TYPE_CHECKING:
    from identlab.config import RunConfig

__all__ = ["EXECUTORS", "EXIT_TERMINATED", "Terminated", "chunks", "pool_size",
           "run_chunk", "sigterm_raises"]

Pending = list[tuple["RunConfig", dict]]

EXIT_TERMINATED = 128 + signal.SIGTERM  # 143, the shell's code for a SIGTERM death


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (inside :func:`sigterm_raises`): handled like Ctrl-C."""


@contextlib.contextmanager
def sigterm_raises():
    """Inside the block SIGTERM raises :class:`Terminated` in the main thread, once (a
    repeated SIGTERM is ignored so the cleanup it starts runs to the end); the previous
    handler is restored after. Outside the main thread it does nothing."""
    fired = False

    def handler(signum, frame):
        nonlocal fired
        if not fired:
            fired = True
            raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def chunks(pending: Pending, device, max_members: int | None) -> list[Pending]:
    """Group by shape signature, then split each group to the memory budget."""
    from identlab.run.group import chunk_groups

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
        from identlab.config import config_hash

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
              progress: bool = False, threads: int | None = None,
              trackers: list[dict] | None = None) -> int:
    """Train one chunk (plain-data configs, so it pickles) and store its records; returns
    how many it wrote. In a worker process nothing more is written once the sweep
    process has stopped or died (:func:`_may_write`, checked before every record).
    ``trackers``: checked tracker specs (:mod:`identlab.track`), built here, in the
    process that writes the records; each sees the chunk's logged losses and records."""
    import torch

    from identlab import track
    from identlab.config import config_hash, from_dict
    from identlab.run.program import run_group

    if threads:
        torch.set_num_threads(threads)
    cfgs = [from_dict(c) for c, _ in items]
    tracker = track.build(trackers)
    try:
        if tracker is not None:
            for k, (cfg, (_, meta)) in enumerate(zip(cfgs, items)):
                tracker.on_start(k, config_hash(cfg), to_dict(cfg), meta)
        records = run_group(cfgs, device=device, progress=progress,
                            desc=f"train K={len(cfgs)}",
                            on_log=None if tracker is None else tracker.on_log)
        store = Store(root)
        written = 0
        for rec, (_, meta) in zip(records, items):
            if not _may_write():
                break
            rec["sweep"] = meta
            store.put(rec)
            written += 1
            if tracker is not None:
                tracker.on_record(rec)
        return written
    finally:
        if tracker is not None:
            tracker.close()


def _as_items(chunk: Pending) -> list[tuple[dict, dict]]:
    return [(to_dict(c), m) for c, m in chunk]


@exclusive
def run_local(pending: Pending, store: Store, *, device, bar, max_members, progress,
              trackers=None, **_) -> int:
    written = 0
    for chunk in chunks(pending, device, max_members):
        n = run_chunk(_as_items(chunk), str(store.root), device, progress,
                      trackers=trackers)
        written += n
        bar.update(n)
        store.ensure_dir()
    return written


# In a worker process only (None in the sweep process itself):
_STOP = None  # the pool's stop flag, a shared byte the parent sets on an error or signal
_PARENT = None  # the pid of the sweep process, this worker's parent

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _may_write() -> bool:
    """False in a worker whose parent has stopped the pool or is gone (the worker was
    reparented: os.getppid() changes the instant the parent exits); True elsewhere."""
    if _PARENT is not None and os.getppid() != _PARENT:
        return False
    return not (_STOP is not None and _STOP.value)


def _die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux; the parent is
    the thread that forked it: the sweep's main thread, see :func:`_run_process`).
    Skipped quietly where prctl is not available."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _init_worker(stop, parent: int) -> None:
    """Worker initializer: die with the parent (and exit at once if it is already gone,
    which the parent-death signal set after it died would miss); remember the stop flag
    and the parent; an idle worker ignores Ctrl-C (the parent decides what happens);
    SIGTERM kills a worker at once (it was blocked from the fork until here, see
    :func:`_sigterm_blocked`)."""
    global _STOP, _PARENT
    _STOP, _PARENT = stop, parent
    _die_with_parent()
    if os.getppid() != parent:
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def _worker_chunk(*args) -> int:
    """:func:`run_chunk` in a worker: skipped once the parent has stopped (chunks already
    handed to the worker queue), interruptible (abandoned, nothing written) while it
    trains, deaf to SIGINT while idle."""
    if not _may_write():
        return 0
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run_chunk(*args)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if os.getppid() != _PARENT:  # orphaned (no parent-death signal here): go
            os._exit(1)


def run_process(pending: Pending, store: Store, *, device, bar, max_members, workers,
                trackers=None, **_) -> int:
    """Chunks in up to ``workers`` local processes (no more than there are chunks; one
    torch thread each by default). On an error, Ctrl-C or SIGTERM no further chunk
    starts; on Ctrl-C the running ones are interrupted too (SIGINT to the workers), on
    SIGTERM the workers are terminated (SIGTERM, which kills a worker at once)."""
    check_workers(workers)
    return _run_process(pending, store, device=device, bar=bar, max_members=max_members,
                 workers=workers, trackers=trackers)


def pool_size(workers: int, n_chunks: int) -> int:
    """How many worker processes a pool for ``n_chunks`` chunks starts: one per chunk,
    at most ``workers``."""
    return max(1, min(workers, n_chunks))


def _pool_context():
    """'fork' on Linux: every worker is then a child of this process, forked by its main
    thread (concurrent.futures forks the whole pool in the first submit), so both the
    parent-death signal and the parent-pid check refer to the sweep process. (A
    forkserver's workers would be children of the fork server instead.) Elsewhere the
    platform's default ('spawn': children of this process too)."""
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


@contextlib.contextmanager
def _sigterm_blocked():
    """SIGTERM blocked in this thread inside the block (a SIGTERM that arrives meanwhile
    is delivered when the block ends): processes forked inside start with it blocked,
    so none runs the parent's Python handler before its initializer sets its own."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _signal_children(sig: int) -> None:
    for child in multiprocessing.active_children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, sig)


@exclusive
def _run_process(pending: Pending, store: Store, *, device, bar, max_members, workers,
                 trackers=None, **_) -> int:
    todo = chunks(pending, device, max_members)
    n = pool_size(workers, len(todo))
    threads = max(1, (os.cpu_count() or 1) // n)
    ctx = _pool_context()
    # a lock-free shared flag (an Event's lock, held by a worker killed mid-read, would
    # stay locked and hang the parent's set())
    stop = ctx.RawValue(ctypes.c_bool, False)
    pool = ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker,
                               initargs=(stop, os.getpid()))
    written = 0
    try:
        with _sigterm_blocked():  # the first submit forks the workers
            futs = {pool.submit(_worker_chunk, _as_items(c), str(store.root), device,
                                False, threads, trackers) for c in todo}
        while futs:
            done, futs = wait(futs, return_when=FIRST_COMPLETED)
            for f in done:
                written += f.result()
                bar.update(f.result())
            store.ensure_dir()
        return written
    except BaseException as e:
        stop.value = True
        if isinstance(e, Terminated):
            _signal_children(signal.SIGTERM)
        elif isinstance(e, KeyboardInterrupt):
            _signal_children(signal.SIGINT)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@exclusive
def run_slurm(pending: Pending, store: Store, *, device, bar, max_members, slurm,
              trackers=None, **_) -> int:
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
        same = [[str(store.root)], [device], [False], [None], [trackers]]  # every job
        jobs = ex.map_array(run_chunk, [_as_items(c) for c in todo],
                            *[arg * len(todo) for arg in same])
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
