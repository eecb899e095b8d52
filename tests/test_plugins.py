"""Plugins: the example plugin (examples/plugins) through every way of loading it and
every executor, the refusals, and the generic expected-loss estimator its verdicts use."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from tiny_config import TINY_SPIRAL

from identlab.cli import main
from identlab.config import load_run
from identlab.core.schema import to_dict
from identlab.sweep.store import Store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "plugins"
SPEC = EXAMPLES / "cvm.yaml"
MODULE = "sliced_cvm"
TINY = ["--preset", "tiny", "--no-progress"]


@pytest.fixture(autouse=True)
def _restore_plugin_state():
    """Each test's plugins stay its own: the registries, the loaded-plugin list (which
    records' provenance reads) and the imported modules are put back afterwards."""
    from identlab.core import plugins
    from identlab.core.registry import GAUSSIANITY, REGISTRIES

    registries = [*REGISTRIES.values(), GAUSSIANITY]
    entries = [dict(r._entries) for r in registries]
    loaded, modules = dict(plugins._LOADED), set(sys.modules)
    yield
    for r, e in zip(registries, entries):
        r._entries = e
    plugins._LOADED.clear()
    plugins._LOADED.update(loaded)
    for name in set(sys.modules) - modules:
        if name in (MODULE, "badmod"):
            del sys.modules[name]


@pytest.fixture
def example(monkeypatch):
    """The example plugin importable here and in every process started from here."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(EXAMPLES), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.chdir(ROOT)
    return importlib.import_module(MODULE)


def _env(*paths) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([*map(str, paths), str(ROOT)])}


def _cli(*args, env=None, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "identlab", *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=cwd,
                          env=env or _env(EXAMPLES))


def _records(out) -> list[dict]:
    recs = list(Store(out).records())
    assert recs and all(r["status"] == "ok" for r in recs)
    return recs


def _check_plugin_records(out, names=(MODULE,)) -> list[dict]:
    """Every record trained the plugin objective, names the plugin in its config and its
    provenance (with the module's version) and carries an attribution verdict."""
    recs = _records(out)
    for r in recs:
        assert r["config"]["learner"]["objective"]["kind"] == "lejepa_cvm"
        assert r["config"]["plugins"] == list(names)
        assert f"{MODULE}==0.1" in r["provenance"]["plugins"]
        assert r["metrics"]["verdict"] is not None
    return recs


def _spec_without_plugins(tmp_path) -> Path:
    data = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    del data["plugins"]
    path = tmp_path / "cvm-noplugins.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _one_line_error(capsys, *words) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, err
    return err


# ------------------------------------------------------------------ the example itself
def test_example_is_short_and_shown_in_the_docs():
    text = (EXAMPLES / f"{MODULE}.py").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 40
    docs = (ROOT / "docs" / "extending.md").read_text(encoding="utf-8")
    assert text.strip() in docs  # the page shows the file as it is


def test_cvm_term_is_the_cramer_von_mises_statistic(example):
    stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(0).standard_normal((3, 50)) * [[1.0], [1.3], [0.7]]
    term = example.CramerVonMises(example.CramerVonMises.Params())
    p = torch.tensor(x.T[None], dtype=torch.float64, requires_grad=True)  # (1, M, S)
    got = term.slice_stat(p)
    want = [stats.cramervonmises(row, "norm").statistic for row in x]
    np.testing.assert_allclose(got.detach().numpy()[0], want, rtol=1e-10)
    got.sum().backward()  # differentiable in p (through Φ)
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_example_passes_the_conformance_checks(example):
    testing = pytest.importorskip("identlab.testing")
    testing.check_objective(example.LeJEPACvM, example.LeJEPACvM.Params(slices=8))
    testing.check_kind("objective", "lejepa_cvm", batch=16)


# ------------------------------------------------------------------ loading it
def test_spec_plugins_process_executor(example, tmp_path):
    out = tmp_path / "proc"
    assert main(["sweep", str(SPEC), *TINY, "--out", str(out), "--executor", "process",
                 "--workers", "2", "--max-members", "2"]) == 0
    assert len(_check_plugin_records(out)) == 4


def test_submitit_local_executor(example, tmp_path, monkeypatch):
    """Each job is a fresh interpreter: it rebuilds its configs with from_dict, which
    imports the plugin the configs name."""
    submitit = pytest.importorskip("submitit")
    auto = submitit.AutoExecutor
    monkeypatch.setattr(submitit, "AutoExecutor",
                        lambda folder, cluster=None, **kw: auto(folder=folder,
                                                                cluster="local", **kw))
    out = tmp_path / "slurm"
    assert main(["sweep", str(SPEC), *TINY, "--out", str(out), "--executor", "slurm",
                 "--time-min", "5", "--max-members", "2"]) == 0
    assert len(_check_plugin_records(out)) == 4
    assert (out / "slurm").is_dir()


def test_plugin_option_in_a_fresh_interpreter(tmp_path):
    spec = _spec_without_plugins(tmp_path)
    res = _cli("sweep", spec, *TINY, "--out", tmp_path / "none")
    assert res.returncode == 2 and "lejepa_cvm" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    for where, args in (("after", ["sweep", spec, "--plugin", MODULE]),
                        ("before", ["--plugin", MODULE, "sweep", spec])):
        out = tmp_path / where
        res = _cli(*args, *TINY, "--out", out)
        assert res.returncode == 0, res.stderr[-2000:]
        _check_plugin_records(out)


def test_plugin_option_and_spec_plugins_do_not_repeat(example, tmp_path):
    out = tmp_path / "both"
    assert main(["--plugin", MODULE, "sweep", str(SPEC), *TINY, "--out", str(out),
                 "--plugin", MODULE]) == 0
    _check_plugin_records(out)


FAKE_MODULE = '''"""A fake installed plugin: an objective, loaded from its entry point."""
from dataclasses import dataclass

from identlab.core.registry import OBJECTIVES
from identlab.learn.objectives import Whiten


@OBJECTIVES.register("fake_whiten")
class FakeWhiten(Whiten):
    @dataclass(frozen=True)
    class Params:
        kind: str = "fake_whiten"
        lam: float = 0.5
'''


def test_entry_point_of_an_installed_package(tmp_path):
    site = tmp_path / "site"
    dist = site / "fake_identlab_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "fake_identlab_plugin.py").write_text(FAKE_MODULE, encoding="utf-8")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-identlab-plugin\n"
                                   "Version: 0.1\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text("[identlab.plugins]\nfake = fake_identlab_plugin\n",
                                           encoding="utf-8")
    cfg = {**TINY_SPIRAL, "learner": {**TINY_SPIRAL["learner"],
                                      "objective": {"kind": "fake_whiten"}}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    out = tmp_path / "run"
    res = _cli("run", path, "--out", out, "--no-progress", env=_env(site))  # no --plugin
    assert res.returncode == 0, res.stderr[-2000:]
    rec = json.loads((out / "record.json").read_text(encoding="utf-8"))
    assert rec["status"] == "ok"
    assert "fake_identlab_plugin==0.1" in rec["provenance"]["plugins"]
    assert rec["config"]["learner"]["objective"]["kind"] == "fake_whiten"
    assert "plugins" not in rec["config"]  # installed plugins load everywhere anyway


# ------------------------------------------------------------------ refusals
def test_default_configs_do_not_name_plugins():
    assert "plugins" not in to_dict(load_run(ROOT / "configs" / "first.yaml"))


BAD_MODULE = '''from dataclasses import dataclass

from identlab.core.registry import OBJECTIVES
from identlab.learn.objectives import AlignOnly


@OBJECTIVES.register("lejepa")
class NotLeJEPA(AlignOnly):
    @dataclass(frozen=True)
    class Params:
        kind: str = "lejepa"
'''


def test_a_different_class_under_a_taken_kind(tmp_path, monkeypatch, capsys, no_training):
    (tmp_path / "badmod.py").write_text(BAD_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(ROOT)
    assert main(["run", "configs/first.yaml", "--plugin", "badmod",
                 "--out", str(tmp_path / "out")]) == 2
    _one_line_error(capsys, "badmod", "'lejepa'", "taken")
    assert not (tmp_path / "out").exists()
    from identlab.core.registry import OBJECTIVES
    from identlab.learn.objectives import LeJEPA
    assert OBJECTIVES.get("lejepa") is LeJEPA  # the refused class replaced nothing


def test_the_same_class_again_is_not_an_error(example):
    from identlab.core.registry import GAUSSIANITY, OBJECTIVES

    again = importlib.reload(example)  # a new class object, same module and qualname
    assert OBJECTIVES.get("lejepa_cvm") is again.LeJEPACvM
    assert GAUSSIANITY.get("cramer_von_mises") is again.CramerVonMises
    assert load_run({"plugins": [MODULE], "learner": {"objective": {"kind": "lejepa_cvm"}}})


def test_missing_module_and_bad_plugins_field(tmp_path, capsys, no_training, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "out"
    assert main(["run", "configs/first.yaml", "--plugin", "no_such_module",
                 "--out", str(out)]) == 2
    _one_line_error(capsys, "no_such_module", "--plugin")
    assert not out.exists()
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("plugins: [123]\n", encoding="utf-8")
    assert main(["run", str(cfg), "--out", str(out)]) == 2
    _one_line_error(capsys, "plugins")
    assert not out.exists()


def test_kind_override_refuses_stale_fields(example, tmp_path, capsys, no_training):
    data = {**TINY_SPIRAL, "learner": {**TINY_SPIRAL["learner"], "objective": {
        "kind": "lejepa", "lam": 0.01, "slices": 16}}}
    cfg = tmp_path / "lejepa.yaml"
    cfg.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["run", str(cfg), "learner.objective.kind=vicreg", "--print-config"]) == 2
    err = _one_line_error(capsys, "learner.objective.kind", "lam, slices")
    assert "learner.objective={kind: vicreg" in err
    assert main(["run", str(cfg), "learner.objective={kind: vicreg}", "--print-config"]) == 0
    assert re.search(r"objective: \{kind: vicreg, sim", capsys.readouterr().out)
    # a plugin kind with the same fields takes them over
    assert main(["run", str(cfg), "learner.objective.kind=lejepa_cvm", "--plugin", MODULE,
                 "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "objective: {kind: lejepa_cvm, lam: 0.01, slices: 16}" in out
    assert "plugins: [sliced_cvm]" in out


# ------------------------------------------------------------------ the estimator
def _gaussian_pairs(n, dim, rho, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, dim))
    return z, rho * z + np.sqrt(1 - rho**2) * rng.standard_normal((n, dim))


def _generic_epps_pulley(setting):
    from identlab.sigreg.terms import EppsPulley

    class Generic(EppsPulley):  # Epps–Pulley through the generic (batched) estimator
        closed_form = False

    return Generic(EppsPulley.Params(knots=setting.knots, t_max=setting.t_max))


@pytest.mark.parametrize("views,scale,batch", [("pooled", "batch", 32),
                                               ("per_view", "sample", 128)])
def test_generic_expected_loss_matches_the_closed_form(views, scale, batch):
    from dataclasses import replace

    from identlab.measure.attribution import LossSetting, directions_for, expected_loss

    closed = LossSetting(0.5, batch, views=views, scale=scale)
    generic = replace(closed, term=_generic_epps_pulley(closed))
    dirs = directions_for(3, 32, 7)
    for seed in range(3):
        z_t, z_t1 = _gaussian_pairs(4096, 3, 0.9, seed)
        a, b = (expected_loss(z_t, z_t1, s, dirs) for s in (closed, generic))
        assert a.align == b.align
        se = np.hypot(a.se(1.0), b.se(1.0))
        assert abs(a.sig - b.sig) < 4 * se, (a.sig, b.sig, se)
        assert b.se(1.0) > 0 and len(b.sig_i) == 4096


def test_generic_fit_scale_matches_the_closed_form():
    from dataclasses import replace

    from identlab.measure.attribution import LossSetting, directions_for, fit_scale

    z_t, z_t1 = _gaussian_pairs(4096, 2, 0.9, 11)
    dirs = directions_for(2, 32, 3)
    for lam, batch in ((0.01, 32), (0.003, 256)):
        closed = LossSetting(lam, batch)
        generic = replace(closed, term=_generic_epps_pulley(closed))
        a = fit_scale(z_t, z_t1, closed, dirs)
        b = fit_scale(z_t, z_t1, generic, dirs)
        assert abs(np.log(b[0] / a[0])) < 0.01, (a, b)
        assert abs(np.log(a[0])) > 0.05  # the scale moved off 1: the test can see a fit
    a = fit_scale(z_t, z_t1, closed, dirs, per_dim=True, start=a)  # one scale per dim
    b = fit_scale(z_t, z_t1, generic, dirs, per_dim=True, start=b)
    np.testing.assert_allclose(np.log(b), np.log(a), atol=0.02)


# ------------------------------------------------------------------ CI runs the example
def test_example_tiny_preset_with_report(example, tmp_path, capsys):
    out, reports = tmp_path / "runs", tmp_path / "reports"
    assert main(["sweep", str(SPEC), *TINY, "--out", str(out), "--report",
                 "--reports", str(reports)]) == 0
    _check_plugin_records(out)
    readme = reports / "cvm-tiny" / "README.md"
    assert readme.is_file()
    text = readme.read_text(encoding="utf-8")
    header = next(ln for ln in text.splitlines() if ln.startswith("| ") and "runs ok" in ln)
    assert "verdict" in header.split("|")[-2]
    assert "Attribution (majority verdict" in text
