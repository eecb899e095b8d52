"""Sweep specs, grid expansion, hashing, the resumable store and the executors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from tiny_config import TINY_SPIRAL as TINY_BASE
from tiny_config import whole_record

from identlab.cli import main
from identlab.config import config_hash
from identlab.core.io import read_json, write_json_atomic
from identlab.core.schema import ConfigError
from identlab.sweep.run import run_sweep
from identlab.sweep.spec import expand, load_spec, plan
from identlab.sweep.store import Store, config_digest


def tiny_spec(name="tiny", **extra):
    spec = {"name": name, "description": "tiny test sweep", "base": TINY_BASE,
            "grid": {"world.dynamics.rho": [0.5, 0.9],
                     "world.latent": [{"kind": "gaussian"}, {"kind": "laplace"}]},
            "seeds": [0, 1]}
    spec.update(extra)
    return spec


# ------------------------------------------------------------------ specs
def test_expand_counts_and_labels():
    spec = load_spec(tiny_spec())
    cells = expand(spec)
    assert len(cells) == 4 and len(plan(spec)) == 8
    assert {c.labels["world.latent"] for c in cells} == {"gaussian", "laplace"}


def test_zip_axes_move_together():
    spec = load_spec(tiny_spec(grid={"world.dynamics.rho": [0.5, 0.9],
                                     "learner.objective.lam": [0.1, 0.2]},
                               zip=[["world.dynamics.rho", "learner.objective.lam"]]))
    pairs = [(c.values["world.dynamics.rho"], c.values["learner.objective.lam"])
             for c in expand(spec)]
    assert pairs == [(0.5, 0.1), (0.9, 0.2)]


def test_hashes_stable_across_key_order_and_runs():
    a = tiny_spec()
    b = json.loads(json.dumps(a))
    b["base"] = dict(reversed(list(b["base"].items())))
    b["base"]["world"] = dict(reversed(list(b["base"]["world"].items())))
    ha = sorted(config_hash(c) for c, _ in plan(load_spec(a)))
    hb = sorted(config_hash(c) for c, _ in plan(load_spec(b)))
    assert ha == hb and len(set(ha)) == 8
    # a value change changes the hash
    a2 = tiny_spec()
    a2["base"] = json.loads(json.dumps(TINY_BASE))
    a2["base"]["train"]["steps"] = 7
    assert set(config_hash(c) for c, _ in plan(load_spec(a2))).isdisjoint(ha)


def test_grid_value_can_be_a_whole_section():
    spec = load_spec(tiny_spec(grid={"world.latent": [{"kind": "student_t", "nu": 5}]}))
    cfg = plan(spec)[0][0]
    assert cfg.world.latent.kind == "student_t" and cfg.world.latent.nu == 5


def test_list_valued_axis_entries_in_plots():
    spec = load_spec(tiny_spec(
        grid={"world.dynamics.rho": [[0.5, 0.9], [0.9, 0.5]]},
        plots=[{"kind": "heatmap", "x": "world.dynamics.rho[0]",
                "y": "world.dynamics.rho[1]"}]))
    assert spec.plots[0].x == "world.dynamics.rho[0]"


@pytest.mark.parametrize("change, field", [
    ({"bogus": 1}, "spec.bogus"),
    ({"grid": {}}, "spec.grid"),
    ({"grid": {"world.dynamics.rho": []}}, "spec.grid.world.dynamics.rho"),
    ({"grid": {"world.nonexistent": [1]}}, "world.nonexistent"),
    ({"grid": {"world.dynamics.rho": [0.5, 1.5]}}, "world.dynamics.rho"),
    ({"name": "../evil"}, "spec.name"),
    ({"seeds": 0}, "spec.seeds"),
    ({"plots": [{"kind": "heatmap", "x": "world.dim", "y": "world.latent"}]}, "spec.plots[0].x"),
    ({"plots": [{"kind": "pie"}]}, "spec.plots[0].kind"),
    ({"zip": [["world.dynamics.rho", "train.lr"]]}, "spec.zip[0]"),
    ({"grid": {"world.dynamics.rho": [0.5], "train.lr": [0.1, 0.2]},
      "zip": [["world.dynamics.rho", "train.lr"]]}, "spec.zip[0]"),
])
def test_bad_specs_name_the_field(change, field):
    with pytest.raises(ConfigError) as err:
        load_spec(tiny_spec(**change))
    assert err.value.field == field, str(err.value)


def test_bad_spec_exit_code_two(tmp_path, capsys):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(tiny_spec(grid={"world.nonexistent": [1]})))
    assert main(["sweep", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "world.nonexistent" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "records").exists()


def test_preset_overrides(tmp_path):
    spec = tiny_spec(presets={"paper": {"set": {"train.steps": 9}, "seeds": 3}})
    s = load_spec(spec, "paper")
    assert len(s.seeds) == 3 and plan(s)[0][0].train.steps == 9
    with pytest.raises(ConfigError, match="presets"):
        load_spec(spec, "nope")


def test_preset_plots_and_report_folder(tmp_path):
    """A preset may replace the plots (validated against its own grid) and its report
    goes to <name>-<preset>, never over the default-size report."""
    from identlab.show.report import write_report

    size_plot = {"kind": "line", "x": "train.steps", "metric": "r2_hz"}
    spec = tiny_spec(presets={"size": {"grid": {"train.steps": [2, 3]},
                                       "plots": [size_plot]}},
                     plots=[{"kind": "line", "x": "world.dynamics.rho"}], seeds=[0])
    assert load_spec(spec).report_name == "tiny"
    s = load_spec(spec, "size")
    assert s.report_name == "tiny-size" and [p.x for p in s.plots] == ["train.steps"]
    bad = tiny_spec(presets={"size": {"plots": [{"kind": "line", "x": "train.steps"}]}})
    with pytest.raises(ConfigError, match=r"spec.plots\[0\].x"):
        load_spec(bad, "size")  # train.steps is not a grid key of that preset
    run_sweep(s, tmp_path / "run", progress=False)
    readme = write_report(tmp_path / "run", tmp_path / "reports")
    assert readme.parent.name == "tiny-size"
    assert readme.read_text().startswith("# tiny (preset `size`)")
    assert (readme.parent / "01-line-r2_hz.png").is_file()
    assert not (tmp_path / "reports" / "tiny").exists()


# ------------------------------------------------------------------ store
def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(ValueError):
        write_json_atomic(path, {"a": float("nan")})  # allow_nan=False -> fails mid-write
    assert read_json(path) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left


def test_store_ignores_corrupt_records(tmp_path):
    """Trusted: parses, its hash is its file name, its config hashes to it and its body is
    whole. A record without a config, with a config of another key, cut short, or with
    a section missing is not done."""
    store = Store(tmp_path)
    config = {"seed": 3, "train": {"lr": 0.01}}
    good = config_digest(config)
    store.put(whole_record(config, good))
    thin = {"seed": 5, "train": {"lr": 0.01}}
    store.put({"hash": config_digest(thin), "config": thin, "x": 1})
    assert "misses the key" in store.problem(config_digest(thin))
    store.put({"hash": "noconfig", "x": 1})
    other = {"seed": 4, "train": {"lr": 0.01}}
    store.put({"hash": "wrongkey", "config": other})
    (tmp_path / "records" / "bad.json").write_text('{"hash": "bad", "x": ')
    assert store.has(good)
    assert not any(store.has(k) for k in ("noconfig", "wrongkey", "bad"))
    assert [r["hash"] for r in store.records()] == [good] and store.keys() == {good}
    assert "no config" in store.problem("noconfig")


# ------------------------------------------------------------------ running
def test_local_sweep_then_rerun_skips_everything(tmp_path):
    spec = load_spec(tiny_spec())
    first = run_sweep(spec, tmp_path, progress=False)
    assert first["trained"] == 8 and first["skipped"] == 0
    recs = Store(tmp_path).records()
    assert len(recs) == 8 and all(r["sweep"]["name"] == "tiny" for r in recs)
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "records").iterdir()}
    again = run_sweep(spec, tmp_path, progress=False)
    assert again["trained"] == 0 and again["skipped"] == 8
    assert mtimes == {p: p.stat().st_mtime_ns for p in (tmp_path / "records").iterdir()}


def test_other_spec_in_same_dir_is_refused(tmp_path):
    run_sweep(load_spec(tiny_spec(seeds=[0], grid={"world.dynamics.rho": [0.5]})), tmp_path,
              progress=False)
    other = load_spec(tiny_spec(name="other", seeds=[0], grid={"world.dynamics.rho": [0.7]}))
    with pytest.raises(ConfigError, match="--resume"):
        run_sweep(other, tmp_path, progress=False)
    assert run_sweep(other, tmp_path, progress=False, resume=True)["trained"] == 1


def test_process_executor(tmp_path):
    spec = load_spec(tiny_spec(seeds=[0]))
    out = run_sweep(spec, tmp_path, executor="process", workers=2, max_members=1,
                    progress=False)
    assert out["trained"] == 4 and len(Store(tmp_path).records()) == 4


def test_submitit_local_executor(tmp_path):
    pytest.importorskip("submitit")
    spec = load_spec(tiny_spec(seeds=[0], grid={"world.dynamics.rho": [0.5, 0.9]}))
    out = run_sweep(spec, tmp_path, executor="slurm", max_members=1, progress=False,
                    slurm={"cluster": "local", "time_min": 5})
    assert out["trained"] == 2
    assert all(r["status"] == "ok" for r in Store(tmp_path).records())
    assert (tmp_path / "slurm").is_dir()


def test_slurm_without_submitit_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import fails
    with pytest.raises(ConfigError, match=r"identlab\[slurm\]"):
        run_sweep(load_spec(tiny_spec(seeds=[0])), tmp_path, executor="slurm",
                  progress=False)


def test_kill_mid_sweep_then_resume(tmp_path):
    """kill -9 a sweep after its first records land; the rerun finishes the rest, and
    every record file parses."""
    spec_path = tmp_path / "spec.yaml"
    grid = {"world.dynamics.rho": [0.3, 0.5, 0.7, 0.9], "learner.objective.lam": [0.1, 0.2]}
    spec = tiny_spec(grid=grid, seeds=[0])
    spec["base"] = json.loads(json.dumps(TINY_BASE))
    spec["base"]["train"]["steps"] = 60
    spec_path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "identlab", "sweep", str(spec_path), "--out", str(out),
           "--max-members", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "records").glob("*.json"))
                                         if (out / "records").is_dir() else []) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len(list((out / "records").glob("*.json")))
    assert 2 <= n_before < 8, "the kill should land mid-sweep"
    assert main(["sweep", str(spec_path), "--out", str(out), "--no-progress"]) == 0
    files = list((out / "records").glob("*.json"))
    assert len(files) == 8
    assert all(json.loads(p.read_text())["status"] == "ok" for p in files)
    assert not list((out / "records").glob(".*.tmp"))


def test_changed_spec_resumes_and_report_keeps_to_the_plan(tmp_path):
    """After a spec edit, reused records still count, dropped ones leave the report."""
    from identlab.show.report import load_records

    run_sweep(load_spec(tiny_spec(seeds=[0], grid={"world.dynamics.rho": [0.5, 0.9]})),
              tmp_path, progress=False)
    edited = load_spec(tiny_spec(seeds=[0], grid={"world.dynamics.rho": [0.9, 0.7]}))
    out = run_sweep(edited, tmp_path, progress=False, resume=True)
    assert out["skipped"] == 1 and out["trained"] == 1
    df = load_records(tmp_path)
    assert sorted(df["world.dynamics.rho"].astype(float)) == [0.7, 0.9]


@pytest.mark.parametrize("path", sorted((Path(__file__).parent.parent / "sweeps").glob("*.yaml"),
                                        key=str), ids=lambda p: p.stem)
def test_every_shipped_spec_loads_with_each_preset(path):
    """Every spec in sweeps/ (bases excluded) validates, as do all of its presets."""
    data = yaml.safe_load(path.read_text())
    if "grid" not in data:  # a run-config base such as base_cpu.yaml
        return
    for preset in [None, *(data.get("presets") or {})]:
        spec = load_spec(path, preset)
        assert spec.name == path.stem and len(expand(spec)) >= 1
