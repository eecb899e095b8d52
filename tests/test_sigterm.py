"""SIGTERM (SLURM's preemption signal, ``kill``) ends a sweep like Ctrl-C in every
executor: one line on stderr, exit 143, queued work cancelled, running chunks abandoned.
Worker processes die with the sweep process and write nothing after the signal, whether
it reaches the sweep process alone or its whole process group; a rerun resumes.
"""

import multiprocessing
import os
import signal
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from test_faults import ENV, assert_exactly_planned, n_records, sweep_cmd, wait_for, write_spec

from identlab.cli import main
from identlab.sweep import executors
from identlab.sweep.executors import EXIT_TERMINATED, pool_size


def _alive_in_session(sid: int) -> list[int]:
    """Pids of the live (not zombie) processes of session ``sid``."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state ppid pgrp session ...
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(d.name))
    return pids


def _terminate(tmp_path: Path, executor: str, *, group: bool) -> None:
    """SIGTERM once the first record lands: to the sweep process alone (``group``
    False: the worst case of a scheduler signalling the job step's main process) or to
    its process group. Exit 143, one line, no traceback, no process of its session
    left, not one record written after the signal; a rerun ends with exactly the plan."""
    spec_path = write_spec(tmp_path, n_rho=8, steps=60)
    out = tmp_path / "out"
    extra = ["--workers", "2"] if executor == "process" else []
    proc = subprocess.Popen(sweep_cmd(spec_path, out, "--executor", executor, *extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV, start_new_session=True)
    assert wait_for(lambda: n_records(out) >= 1 or proc.poll() is not None)
    assert proc.poll() is None, proc.communicate()
    at_signal = n_records(out)
    (os.killpg if group else os.kill)(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_TERMINATED == 143, err
    assert err.splitlines() == ["identlab: terminated"], err
    assert wait_for(lambda: not _alive_in_session(proc.pid), timeout=5.0), \
        _alive_in_session(proc.pid)
    time.sleep(2.0)
    assert n_records(out) == at_signal < 8
    assert main(["sweep", str(spec_path), "--out", str(out), "--no-progress"]) == 0
    assert_exactly_planned(out, spec_path)


@pytest.mark.parametrize("group", [False, True], ids=["parent", "group"])
def test_sigterm_process_executor(tmp_path, group):
    _terminate(tmp_path, "process", group=group)


def test_sigterm_local_executor(tmp_path):
    _terminate(tmp_path, "local", group=False)


@pytest.mark.slow
def test_sigterm_slurm_local(tmp_path):
    """SIGTERM cancels the job array as Ctrl-C does (submitit's local controllers)."""
    pytest.importorskip("submitit")
    _terminate(tmp_path, "slurm", group=False)


def test_pool_size_is_capped_by_the_chunks():
    assert pool_size(8, 1) == 1
    assert pool_size(32, 3) == 3
    assert pool_size(2, 8) == 2


def test_one_chunk_starts_one_worker(tmp_path, monkeypatch, capsys):
    """``--workers 8`` for a single chunk forks one worker process; main leaves the
    SIGTERM handler it found."""
    started = []

    class Counting(ProcessPoolExecutor):
        def shutdown(self, *a, **kw):
            started.append(len(multiprocessing.active_children()))
            super().shutdown(*a, **kw)

    monkeypatch.setattr(executors, "ProcessPoolExecutor", Counting)
    before = signal.getsignal(signal.SIGTERM)
    spec_path = write_spec(tmp_path, n_rho=1, steps=10)
    out = tmp_path / "out"
    assert main(["sweep", str(spec_path), "--out", str(out), "--no-progress",
                 "--executor", "process", "--workers", "8"]) == 0
    assert started == [1]
    assert signal.getsignal(signal.SIGTERM) is before
    assert_exactly_planned(out, spec_path)
