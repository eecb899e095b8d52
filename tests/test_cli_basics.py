"""The command line's first hour: --version, a fast --help that imports no torch,
key=value overrides on sweeps, --dry-run, --print-config, log-friendly progress and the
verdict in the run table."""

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from tiny_config import TINY_SPIRAL as TINY_BASE

from identlab.cli import format_records, main
from identlab.core.progress import LineProgress, progress_seconds
from identlab.core.progress import tqdm as progress_bar
from identlab.record import Record
from identlab.sweep.spec import grid_clashes, load_spec
from identlab.sweep.store import Store

ROOT = Path(__file__).resolve().parent.parent

def tiny_spec(tmp_path: Path, name="tiny", grid=None, seeds=(0,)) -> Path:
    spec = {"name": name, "description": "tiny", "base": TINY_BASE,
            "grid": grid or {"world.dynamics.rho": [0.5, 0.9]}, "seeds": list(seeds)}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def tiny_run(tmp_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(TINY_BASE))
    return path


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*")}


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)


# ------------------------------------------------------------------ version, help
def test_version_prints_the_package_version():
    import identlab

    res = subprocess.run([sys.executable, "-m", "identlab", "--version"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0
    assert res.stdout.strip() == f"identlab {identlab.__version__}"


def test_help_imports_no_torch():
    """What keeps --help fast is structural: no heavy import (the time itself is in the
    benchmark, `make bench`: cli_help_s)."""
    code = """
import sys
from identlab.cli import main
rcs = [main(["--help"])] + [main([c, "--help"]) for c in
       ("world", "run", "sweep", "report", "sweep-all", "bench", "teach", "reproduce")]
heavy = [m for m in ("torch", "numpy", "pandas", "scipy") if m in sys.modules]
print("RESULT", rcs, heavy, file=sys.stderr)
"""
    res = _python(code)
    line = [ln for ln in res.stderr.splitlines() if ln.startswith("RESULT")]
    assert line, res.stderr
    assert "'torch'" not in line[0] and "[]" in line[0], line[0]
    assert line[0].split("] [")[0] == "RESULT [0, 0, 0, 0, 0, 0, 0, 0, 0"
    assert "register-python-argcomplete identlab" in res.stdout  # completion set-up


def test_import_identlab_is_lazy_and_dir_is_the_api():
    code = """
import sys
import identlab, identlab.cli
assert "torch" not in sys.modules, "torch imported"
assert dir(identlab) == sorted(identlab.__all__), dir(identlab)
assert "cli" not in dir(identlab)
print("OK")
"""
    res = _python(code)
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr


def test_parser_constants_match_their_modules():
    from identlab.cli import bench, reproduce, teach
    from identlab.studies import bench as sbench
    from identlab.studies import reproduce as sreproduce
    from identlab.studies.teach import walkthrough

    assert bench.SECTIONS == sbench.SECTIONS
    assert reproduce.PAPER_SWEEPS == sreproduce.PAPER_SWEEPS
    assert teach.DEFAULT_RUNS == walkthrough.DEFAULT_RUNS


# ------------------------------------------------------------------ overrides
def test_sweep_overrides_reach_the_records(tmp_path, capsys):
    spec = tiny_spec(tmp_path)
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--no-progress",
                 "train.steps=7"]) == 0
    recs = Store(out).records()
    assert len(recs) == 2
    assert all(r["config"]["train"]["steps"] == 7 for r in recs)


def test_override_of_a_grid_axis_is_noted_and_the_grid_wins(tmp_path, capsys):
    spec = tiny_spec(tmp_path, grid={"train.steps": [5, 6]})
    assert main(["sweep", str(spec), "--dry-run", "train.steps=300"]) == 0
    cap = capsys.readouterr()
    notes = [ln for ln in (cap.out + cap.err).splitlines() if ln.startswith("note:")]
    assert len(notes) == 1 and "train.steps=300" in notes[0] and "grid" in notes[0]
    loaded = load_spec(spec, overrides=["train.steps=300"])
    assert loaded.base["train"]["steps"] == 300 and loaded.grid["train.steps"] == [5, 6]


def test_bad_override_is_one_line_exit_2(tmp_path, capsys):
    assert main(["sweep", str(tiny_spec(tmp_path)), "--dry-run", "train.nope=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("identlab: error:") and err.count("\n") == 1


def test_spec_overrides_reach_the_base_and_clashes_are_named():
    spec = {"name": "t", "base": TINY_BASE, "grid": {"train.steps": [5]}, "seeds": [0]}
    overrides = ["train.batch=16", "train.steps=9"]
    loaded = load_spec(spec, overrides=overrides)
    assert loaded.base["train"]["batch"] == 16
    notes = grid_clashes(loaded, overrides)
    assert len(notes) == 1 and "train.steps=9" in notes[0]
    assert load_spec(spec).base["train"]["batch"] == 32  # nothing persists
    assert grid_clashes(loaded, ["world.dim=3"]) == []


def test_reproduce_takes_overrides_after_only(monkeypatch, tmp_path):
    import identlab.studies.reproduce as rep

    seen = {}

    def fake(out, reports, **kw):
        seen.update(kw)
        seen["steps"] = load_spec(ROOT / "sweeps" / "paper_grid.yaml",
                                  overrides=kw["overrides"]).base["train"]["steps"]
        return tmp_path / "page.md"

    monkeypatch.setattr(rep, "reproduce", fake)
    assert main(["reproduce", "--only", "paper_grid", "train.steps=11", "--no-progress"]) == 0
    assert seen["only"] == ["paper_grid"] and seen["steps"] == 11


# ------------------------------------------------------------------ dry run, print-config
def test_run_dry_run_writes_nothing(tmp_path, monkeypatch, capsys, no_training):
    cfg = tiny_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert main(["run", str(cfg), "seeds=[0,1]", "--out", "out", "--dry-run",
                 "train.steps=9"]) == 0
    out = capsys.readouterr().out
    assert snapshot(tmp_path) == before
    assert "steps: 9" in out and "members: 2" in out and "memory: about" in out
    assert "expected time: unknown (run make bench)" in out


def test_sweep_dry_run_writes_nothing_and_uses_the_bench(tmp_path, monkeypatch, capsys):
    spec = tiny_spec(tmp_path, seeds=(0, 1, 2))
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "bench.json").write_text(json.dumps(
        {"sweep_k1_ms": 4.0, "sweep_k16_ms": 20.0, "sweep_k64_ms": 90.0}))
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert main(["sweep", str(spec), "--dry-run", "--max-members", "4"]) == 0
    out = capsys.readouterr().out
    assert snapshot(tmp_path) == before and not (tmp_path / "runs").exists()
    assert "2 cell(s) x 3 seed(s) = 6 members" in out
    assert "batched groups: 2" in out  # 6 members cut at 4
    assert "expected time: about" in out and "bench.json" in out


def test_bench_markdown_is_read_when_there_is_no_json(tmp_path, monkeypatch):
    from identlab.cli.plan import read_bench

    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "bench.md").write_text(
        "| quantity | value |\n|---|---|\n| `sweep_k1_ms` | 3.5 |\n| `x` | None |\n")
    monkeypatch.chdir(tmp_path)
    data, path = read_bench()
    assert data == {"sweep_k1_ms": 3.5} and path.name == "bench.md"


def test_print_config_is_yaml_and_writes_nothing(tmp_path, monkeypatch, capsys):
    cfg = tiny_run(tmp_path)
    spec = tiny_spec(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert main(["run", str(cfg), "--print-config", "train.steps=13"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert data["train"]["steps"] == 13 and data["eval"]["n"] == 200
    assert main(["sweep", str(spec), "--print-config", "train.lr=0.01"]) == 0
    text = capsys.readouterr().out
    assert "2 cell(s)" in text and yaml.safe_load(text)["train"]["lr"] == 0.01
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------ progress
def test_progress_to_a_file_is_plain_lines(monkeypatch):
    monkeypatch.setenv("IDENTLAB_PROGRESS_SECONDS", "0.01")
    buf = io.StringIO()
    bar = progress_bar(total=5, desc="sweep", file=buf)
    assert isinstance(bar, LineProgress)
    for _ in range(5):
        inner = progress_bar(range(3), desc="train", leave=False, file=buf)
        for _ in inner:
            time.sleep(0.004)
        bar.update(1)
        time.sleep(0.015)
    bar.close()
    text = buf.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert len(lines) >= 2 and all(ln.strip() for ln in lines)
    assert "5/5" in lines[-1]


def test_progress_lines_are_rate_limited(monkeypatch):
    """set_postfix and refresh redraw a terminal bar; in a log they wait for the interval:
    one line when a kept bar starts, one when it closes, none for a short inner bar."""
    monkeypatch.setenv("IDENTLAB_PROGRESS_SECONDS", "100")
    buf = io.StringIO()
    bar = progress_bar(total=50, desc="sweep", file=buf)
    for i in range(50):
        for _ in progress_bar(range(4), leave=False, file=buf, desc="train"):
            pass
        bar.set_postfix(loss=i)
        bar.update(1)
    bar.close()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and "0/50" in lines[0] and "50/50" in lines[1]
    assert "train" not in buf.getvalue()


def test_progress_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("IDENTLAB_PROGRESS_SECONDS", "7")
    assert progress_seconds() == 7
    for bad in ("", "abc", "-1", "0", "nan"):
        monkeypatch.setenv("IDENTLAB_PROGRESS_SECONDS", bad)
        assert progress_seconds() == 30


def test_disabled_progress_writes_nothing():
    buf = io.StringIO()
    for _ in progress_bar(range(3), file=buf, disable=True):
        pass
    assert buf.getvalue() == ""


# ------------------------------------------------------------------ run table
@pytest.mark.parametrize("verdict, shown", [("recovered", "recovered"), (None, "n/a"),
                                            ("optimizer_gap+nonrotation",
                                             "optimizer_gap+nonrotation")])
def test_run_table_shows_the_verdict(verdict, shown):
    from tiny_config import whole_record

    recs = [whole_record({"seed": s}, f"h{s}") for s in (0, 1)]
    for r in recs:
        r["provenance"]["steps_per_s"] = 100.0
    recs[0]["metrics"]["verdict"] = "recovered"
    recs[1]["metrics"]["verdict"] = verdict
    table = format_records([Record.from_json(r) for r in recs]).splitlines()
    row = next(ln for ln in table if ln.startswith("verdict"))
    assert row.split() == ["verdict", "recovered", shown]
    assert len(row) == len(table[0])  # the columns line up


def test_run_prints_the_verdict_row(tmp_path, capsys):
    assert main(["run", str(tiny_run(tmp_path)), "--no-progress", "train.steps=3"]) == 0
    assert any(ln.startswith("verdict") for ln in capsys.readouterr().out.splitlines())
