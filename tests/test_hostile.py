"""Faults and hostile inputs, round 3: resumes with a changed spec, disks full from the
start, unwritable frame caches, records whose body is damaged, unbounded sizes,
duplicate YAML keys, read-only sweeps, hand-damaged sweep directories, and the smaller
cases (quarantine on a refused run, nested sweeps, ``--out ""``, overrides after flags,
huge or control-character input).

Each fault ends in one line and exit code 2 with nothing half-written, or in a correct
run. A full disk and a read-only folder are real: a small tmpfs and a read-only bind
mount where the tests run as root (as CI does), ``chmod`` otherwise; the full-disk cases
need root and are skipped without it.
"""

import contextlib
import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_bad_inputs import _snapshot as snapshot
from tiny_config import TINY_RUN

from identlab.cli import main
from identlab.config import config_hash, load_run
from identlab.core.schema import ConfigError
from identlab.sweep.run import run_sweep
from identlab.sweep.spec import load_spec, plan
from identlab.sweep.store import Store, StoreError, record_problem

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
ROOT = os.geteuid() == 0


def spec_dict(name="hostile", grid=None, seeds=(0,), steps=20) -> dict:
    base = json.loads(json.dumps(TINY_RUN))
    base["train"]["steps"] = steps
    return {"name": name, "base": base,
            "grid": grid or {"world.dynamics.rho": [0.5, 0.9]}, "seeds": list(seeds)}


def write_spec(path: Path, **kw) -> Path:
    path.write_text(yaml.safe_dump(spec_dict(**kw)))
    return path


def one_line_error(capsys, rc) -> str:
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("identlab: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def _mount(*args) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def full_disk(tmp_path):
    """A 512 KiB tmpfs filled to the last byte (root only)."""
    if not ROOT:
        pytest.skip("a real full disk needs root to mount a small tmpfs")
    mnt = tmp_path / "full"
    mnt.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)):
        pytest.skip("mount -t tmpfs is not permitted here")
    try:
        (mnt / "fill").mkdir()
        with contextlib.suppress(OSError), open(mnt / "fill" / "ballast", "wb", 0) as f:
            while True:
                f.write(b"\0" * 4096)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@contextlib.contextmanager
def read_only(path: Path):
    """``path`` read-only for this process: a read-only bind mount as root (root ignores
    permission bits), chmod otherwise."""
    if ROOT:
        assert _mount("--bind", str(path), str(path))
        try:
            assert _mount("-o", "remount,ro,bind", str(path))
            yield
        finally:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)
        return
    modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")]}
    for p in modes:
        p.chmod(modes[p] & ~0o222)
    try:
        yield
    finally:
        for p, m in modes.items():
            p.chmod(m)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny sweep (2 cells) to damage, copied per test."""
    root = tmp_path_factory.mktemp("finished")
    spec = write_spec(root / "spec.yaml")
    run_sweep(load_spec(spec), root / "out", progress=False)
    return root


@pytest.fixture
def sweep(finished, tmp_path):
    import shutil

    shutil.copytree(finished, tmp_path / "s")
    return tmp_path / "s" / "spec.yaml", tmp_path / "s" / "out"


# ------------------------------------------------------------------ 1. resume, new axis
def test_resume_with_a_new_axis_labels_reused_records_by_the_current_spec(tmp_path, capsys):
    """Reused records keep the old spec's cell in their body; the report takes every
    cell from the current spec by hash: no 'no runs' cell, no NaN axis value."""
    out, reports = tmp_path / "out", tmp_path / "reports"
    old = write_spec(tmp_path / "a.yaml")
    assert main(["sweep", str(old), "--out", str(out), "--no-progress"]) == 0
    grid = {"world.dynamics.rho": [0.5, 0.9], "learner.objective.lam": [1e-3, 1e-2]}
    new = tmp_path / "b.yaml"
    new.write_text(yaml.safe_dump({**spec_dict(grid=grid),
                                   "plots": [{"kind": "heatmap", "x": "world.dynamics.rho",
                                              "y": "learner.objective.lam"}]}))
    capsys.readouterr()
    assert main(["sweep", str(new), "--out", str(out), "--resume", "--report", "--reports",
                 str(reports), "--no-progress"]) == 0
    said = capsys.readouterr().out
    assert "2 already done, 2 trained" in said, said
    df = pd.read_csv(reports / "hostile" / "results.csv")
    assert len(df) == 4 and not df["learner.objective.lam"].isna().any()
    assert sorted(df["learner.objective.lam"]) == [1e-3, 1e-3, 1e-2, 1e-2]
    assert sorted(df["cell_index"]) == [0, 1, 2, 3]
    text = (reports / "hostile" / "README.md").read_text()
    assert "no runs" not in text and not re.search(r"\bnan\b", text, re.IGNORECASE)
    # the records on disk still carry the old spec's cells; only the report relabels them
    reused = [r for r in Store(out).records() if "learner.objective.lam" not in
              r["sweep"]["values"]]
    assert len(reused) == 2


# ------------------------------------------------------------------ 3. a full disk
def test_sweep_onto_a_full_disk_is_one_line_and_writes_nothing(full_disk, tmp_path, capsys,
                                                                no_training):
    spec = write_spec(tmp_path / "spec.yaml")
    before = snapshot(full_disk)
    rc = main(["sweep", str(spec), "--out", str(full_disk / "fill"), "--no-progress"])
    err = one_line_error(capsys, rc)
    assert "No space left" in err and "--out" in err
    assert snapshot(full_disk) == before


def test_run_out_on_a_full_disk_is_refused_before_training(full_disk, tmp_path, capsys,
                                                           no_training):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY_RUN))
    rc = main(["run", str(cfg), "--out", str(full_disk / "fill"), "--no-progress"])
    assert "No space left" in one_line_error(capsys, rc)
    assert not (full_disk / "fill" / "record.json").exists()


def test_lock_and_spec_on_a_full_disk_are_store_errors(full_disk, tmp_path):
    """The lock file and spec.json each fail with a one-line StoreError, not an OSError
    (mkdir may itself fail on a full tmpfs: that is a StoreError too)."""
    store = Store(full_disk / "fill" / "sub")
    with pytest.raises(StoreError, match="No space left"), store.lock():
        pass
    from identlab.sweep.run import prepare_dir

    spec = load_spec(spec_dict())
    with pytest.raises(StoreError, match="No space left"):
        prepare_dir(spec, full_disk / "fill", False, [])


def test_report_onto_a_full_disk_is_one_line(full_disk, sweep, capsys):
    _, out = sweep
    rc = main(["report", str(out), "--reports", str(full_disk / "fill")])
    assert "No space left" in one_line_error(capsys, rc)
    assert not (full_disk / "fill" / "hostile" / "README.md").exists()


def test_run_record_write_failure_after_training_is_one_line(tmp_path, capsys, monkeypatch):
    """Space that runs out during training (after the probe): one line, the record not
    half-written."""
    import identlab.cli as cli

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({**TINY_RUN, "train": {"steps": 3, "batch": 8}}))

    def full(path, obj, indent=1):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cli, "write_json_atomic", full)
    rc = main(["run", str(cfg), "--out", str(tmp_path / "o"), "--no-progress"])
    err = one_line_error(capsys, rc)
    assert "cannot write record.json" in err and "0 of 1" in err
    assert list((tmp_path / "o").iterdir()) == []


# ------------------------------------------------------------------ 4. frame cache
PIXEL_SPEC = {"name": "pix", "seeds": [0], "grid": {"world.dynamics.rho": [0.9]},
              "base": {"world": {"mixer": {"kind": "reacher", "pairs": 12}},
                       "learner": {"encoder": {"kind": "cnn", "channels": [8, 8],
                                               "groups": 4},
                                   "objective": {"kind": "lejepa", "slices": 8}},
                       "train": {"steps": 4, "batch": 8, "data_chunk": 2},
                       "eval": {"n": 42, "sigreg_slices": 8}}}


@pytest.mark.parametrize("executor", ["local", "process", "slurm"])
@pytest.mark.parametrize("cache_kind", ["file", "read_only"])
def test_unwritable_frame_cache_is_one_line_before_anything_is_written(
        tmp_path, monkeypatch, capsys, executor, cache_kind, no_training):
    spec = tmp_path / "pix.yaml"
    spec.write_text(yaml.safe_dump(PIXEL_SPEC))
    cache = tmp_path / "cache"
    if cache_kind == "file":
        cache.write_text("not a folder")
    else:
        cache.mkdir()
    monkeypatch.setenv("IDENTLAB_FRAME_CACHE", str(cache))
    out = tmp_path / "out"
    guard = read_only(cache) if cache_kind == "read_only" else contextlib.nullcontext()
    with guard:
        rc = main(["sweep", str(spec), "--out", str(out), "--executor", executor,
                   "--no-progress"])
    err = one_line_error(capsys, rc)
    assert "IDENTLAB_FRAME_CACHE" in err
    assert not out.exists()


def test_a_folder_where_a_shard_goes_is_one_line(tmp_path, monkeypatch):
    import numpy as np

    from identlab.world.pixels import FrameSet, ensure_frames

    monkeypatch.setenv("IDENTLAB_FRAME_CACHE", str(tmp_path))
    world = load_run(PIXEL_SPEC["base"]).world
    fs = FrameSet(world, 0, "train", np.zeros((4, 2)), tmp_path)
    fs.path(0).mkdir(parents=True)
    with pytest.raises(ConfigError, match="IDENTLAB_FRAME_CACHE") as info:
        ensure_frames([fs], workers=1, progress=False)
    assert "Is a directory" in str(info.value)
    assert fs.path(0).is_dir()  # never deleted


# ------------------------------------------------------------------ 5. damaged bodies
DAMAGE = {
    "metrics_missing": lambda r: r.pop("metrics"),
    "metrics_list": lambda r: r.update(metrics=[1, 2]),
    "metric_a_mapping": lambda r: r["metrics"].update(r2_hz={"x": 1}),
    "ok_without_metrics": lambda r: r.update(metrics={}),
    "provenance_missing": lambda r: r.pop("provenance"),
    "provenance_string": lambda r: r.update(provenance="cpu"),
    "provenance_no_device": lambda r: r["provenance"].pop("device"),
    "provenance_wall_text": lambda r: r["provenance"].update(wall_s="fast"),
    "flags_missing": lambda r: r.pop("flags"),
    "flag_not_bool": lambda r: r["flags"].update(gaussian="yes"),
    "history_text": lambda r: r["train"].update(history="falling"),
    "final_loss_text": lambda r: r["train"].update(final_loss="low"),
    "sample_number": lambda r: r.update(sample=3),
    "sweep_list": lambda r: r.update(sweep=[1]),
    "reasons_numbers": lambda r: r.update(reasons=[1, 2]),
    "status_other": lambda r: r.update(status="done"),
    "diverged_without_step": lambda r: r.update(status="diverged", diverged_at=None),
    "seed_mismatch": lambda r: r.update(seed=r["seed"] + 1),
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_a_record_with_a_damaged_body_is_not_trusted(sweep, damage, tmp_path, capsys):
    """The hash and config stay valid; the body does not. The report skips it (exit 0,
    no traceback), the next sweep sets it aside and retrains it."""
    spec, out = sweep
    path = sorted((out / "records").glob("*.json"))[0]
    rec = json.loads(path.read_text())
    DAMAGE[damage](rec)
    path.write_text(json.dumps(rec))
    assert record_problem(rec, path.stem) is not None
    assert main(["report", str(out), "--reports", str(tmp_path / "r")]) == 0
    assert len(pd.read_csv(tmp_path / "r" / "hostile" / "results.csv")) == 1
    capsys.readouterr()
    assert main(["sweep", str(spec), "--out", str(out), "--no-progress"]) == 0
    said = capsys.readouterr().out
    assert "quarantined" in said and "1 trained" in said, said
    assert len(Store(out).keys()) == 2


def test_a_deeply_nested_record_is_untrusted_not_a_crash(sweep):
    _, out = sweep
    path = sorted((out / "records").glob("*.json"))[0]
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert Store(out).problem(path.stem) is not None


# ------------------------------------------------------------------ 6. sizes
def test_a_huge_grid_is_refused_before_it_is_expanded(monkeypatch):
    import identlab.sweep.spec as spec_mod

    def no_expand(*a, **k):
        raise AssertionError("the grid was expanded")

    monkeypatch.setattr(spec_mod, "expand", no_expand)
    grid = {"world.dynamics.rho": [round(0.001 * i, 3) for i in range(1, 1001)],
            "train.lr": [0.001 * i for i in range(1, 1001)]}
    with pytest.raises(ConfigError, match="1,000,000 runs") as info:
        load_spec(spec_dict(grid=grid))
    assert info.value.field == "spec.grid"


def test_zipped_axes_count_once():
    from identlab.sweep.spec import run_count

    grid = {"a": [1, 2, 3], "b": [4, 5, 6], "c": [7, 8]}
    assert run_count(grid, (("a", "b"),), 2) == 3 * 2 * 2
    assert run_count(grid, (), 1) == 18


@pytest.mark.parametrize("override,field", [
    ("eval.n=200000000", "eval.n"), ("train.batch=50000000", "train.batch"),
    ("eval.grid=200000", "eval.grid"), ("eval.sigreg_slices=100000000", "eval.sigreg_slices"),
    ("eval.attribution.pairs=1000000000", "eval.attribution.pairs"),
    ("learner.encoder.hidden=100000", "train.batch"),
])
def test_every_size_has_an_estimate_and_a_bound(override, field):
    with pytest.raises(ConfigError) as info:
        load_run(TINY_RUN, [override])
    assert info.value.field == field and "GiB" in str(info.value)


def test_defaults_and_shipped_configs_are_far_below_the_bound():
    from identlab.core.limits import MAX_BYTES
    from identlab.sizes import size_estimates

    for cfg in [load_run(None), load_run(Path("configs/spiral.yaml")),
                load_run(None, ["eval.plan.enabled=true"])]:
        assert max(b for _, b in size_estimates(cfg)) < MAX_BYTES / 10


# ------------------------------------------------------------------ 7. duplicate keys
def test_a_spec_name_written_twice_is_refused(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: a\nname: b\ngrid: {train.lr: [0.01]}\n")
    with pytest.raises(ConfigError, match="'name' appears twice.*line 2"):
        load_spec(p)


def test_merge_keys_may_still_be_overridden(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("base: &b {steps: 7, batch: 16}\ntrain:\n  <<: *b\n  steps: 9\n")
    with pytest.raises(ConfigError, match="base"):  # an unknown top-level key, not a dup
        load_run(p)
    p.write_text("train: &b {steps: 7, batch: 16}\neval: {n: 100}\n")
    assert load_run(p).train.steps == 7


# ------------------------------------------------------------------ 8. read-only sweep
def test_report_reads_a_read_only_sweep(sweep, tmp_path, capsys):
    _, out = sweep
    before = snapshot(out)
    with read_only(out):
        assert main(["report", str(out), "--reports", str(tmp_path / "r")]) == 0
    assert snapshot(out) == before and not (out / "results.csv").exists()
    assert len(pd.read_csv(tmp_path / "r" / "hostile" / "results.csv")) == 2


# ------------------------------------------------------------------ 9. damaged folders
def _break(kind: str, out: Path) -> None:
    import shutil

    if kind == "records_file":
        shutil.rmtree(out / "records")
        (out / "records").write_text("x")
    elif kind == "quarantine_file":
        (out / "records" / "quarantine").write_text("x")
    elif kind == "spec_dir":
        (out / "spec.json").unlink()
        (out / "spec.json").mkdir()
    elif kind == "lock_dir":
        (out / ".lock").unlink()
        (out / ".lock").mkdir()
    elif kind == "summary_dir":
        (out / "summary.json").unlink()
        (out / "summary.json").mkdir()
    elif kind == "nested_sweep_in_records":
        (out / "records" / "spec.json").write_text("{}")


@pytest.mark.parametrize("kind", ["records_file", "quarantine_file", "spec_dir", "lock_dir",
                                  "summary_dir", "nested_sweep_in_records"])
def test_hand_damaged_sweep_directory_is_one_line_before_training(sweep, kind, capsys,
                                                                  no_training):
    spec, out = sweep
    (out / "records" / "0000000000000000.json").write_text("garbage")  # would be retrained
    _break(kind, out)
    before = snapshot(out)
    rc = main(["sweep", str(spec), "--out", str(out), "--no-progress"])
    one_line_error(capsys, rc)
    assert snapshot(out) == before


@pytest.mark.parametrize("plots", [[5], [{"kind": "bogus"}], [{"kind": "heatmap"}],
                                   "heatmap", [{"kind": "line", "x": "not.an.axis"}]])
def test_malformed_plots_in_spec_json_are_one_line(sweep, plots, tmp_path, capsys):
    _, out = sweep
    spec = json.loads((out / "spec.json").read_text())
    spec["plots"] = plots
    (out / "spec.json").write_text(json.dumps(spec))
    rc = main(["report", str(out), "--reports", str(tmp_path / "r")])
    assert "spec" in one_line_error(capsys, rc)


def test_stdout_on_dev_full_is_one_line(tmp_path):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "identlab", "world", "-n", "200"],
                              stdout=full, stderr=subprocess.PIPE, text=True, env=ENV,
                              timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "identlab: error: cannot write to standard output (No space left on device)"]


# ------------------------------------------------------------------ 10. smaller cases
def test_a_refused_spec_mismatch_moves_nothing(sweep, tmp_path, capsys):
    _, out = sweep
    junk = out / "records" / "junk.json"
    junk.write_text("not json")
    other = write_spec(tmp_path / "other.yaml", name="other")
    before = snapshot(out)
    rc = main(["sweep", str(other), "--out", str(out), "--no-progress"])
    assert "different spec" in one_line_error(capsys, rc)
    assert snapshot(out) == before and junk.exists()


def test_a_sweep_inside_another_sweeps_records_is_refused(sweep, tmp_path, capsys,
                                                          no_training):
    spec, out = sweep
    inner = out / "records" / "inner"
    rc = main(["sweep", str(spec), "--out", str(inner), "--no-progress"])
    assert "inside the records" in one_line_error(capsys, rc)
    assert not inner.exists()


def test_overrides_after_a_flag_reach_the_record(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY_RUN))
    out = tmp_path / "o"
    assert main(["run", str(cfg), "--out", str(out), "train.steps=3", "--no-progress",
                 "eval.n=100"]) == 0
    rec = json.loads((out / "record.json").read_text())
    assert rec["config"]["train"]["steps"] == 3 and rec["config"]["eval"]["n"] == 100


def test_a_huge_override_is_not_echoed_in_full(capsys):
    rc = main(["world", "x" * 100_000 + "=5"])
    err = one_line_error(capsys, rc)
    assert len(err) < 500 and " ... " in err


def test_control_characters_are_escaped(capsys):
    rc = main(["world", "train.st\x1b[2Jeps=5"])
    err = one_line_error(capsys, rc)
    assert "\x1b" not in err and "\\x1b" in err


def test_sweep_records_count_is_exactly_the_plan_after_all_this(sweep):
    spec, out = sweep
    assert main(["sweep", str(spec), "--out", str(out), "--no-progress"]) == 0
    assert Store(out).keys() == {config_hash(c) for c, _ in plan(load_spec(spec))}


def test_report_into_an_empty_reports_path_is_refused(sweep, tmp_path, capsys, monkeypatch):
    """``--reports ''`` would mean the current folder: refused like an empty --out."""
    _, out = sweep
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    rc = main(["report", str(out), "--reports", ""])
    assert "--reports '': an empty path" in one_line_error(capsys, rc)
    assert snapshot(tmp_path) == before
