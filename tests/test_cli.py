"""The command line: `identlab world` and `identlab run`, good and bad input."""

import json

import pytest

from identlab.cli import main

TINY = ["world.mixer.kind=spiral", "learner.encoder.hidden=8", "learner.encoder.depth=1",
        "learner.objective.slices=8", "train.steps=5", "train.batch=32", "eval.n=300",
        "eval.sigreg_slices=8", "eval.knn=5"]


def test_world_json_keys(capsys):
    assert main(["world", "configs/spiral.yaml", "--json", "-n", "3000"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["flags"]) == {"gaussian", "stationary", "additive"}
    assert out["theorem_applies"] is True
    for key in ("one_step_corr", "kurtosis_t", "kurtosis_tk", "roundtrip_err"):
        assert key in out["checks"]
    assert out["checks"]["roundtrip_err"] < 1e-9


def test_world_verdict_names_the_reason(capsys):
    assert main(["world", "world.latent.kind=laplace", "world.dynamics.kind=naive_additive",
                 "-n", "2000"]) == 0
    text = capsys.readouterr().out
    assert "does not apply" in text and "not Gaussian" in text and "not stationary" in text


def test_world_names_the_copula_target(capsys):
    """A copula OU fails 'additive' in z, yet the theorem applies to u = Φ⁻¹(F(z))."""
    assert main(["world", "world.latent.kind=laplace", "world.dynamics.kind=copula_ou",
                 "-n", "2000"]) == 0
    text = capsys.readouterr().out
    assert "additive=no" in text and "theorem applies to u = Φ⁻¹(F(z))" in text
    assert main(["world", "world.latent.kind=laplace", "world.dynamics.kind=copula_ou",
                 "-n", "2000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["theorem_target"] == "u" and out["theorem_applies"] and out["reasons"] == []


@pytest.mark.parametrize("kinds", [
    ("gaussian", "ou", "mlp"), ("laplace", "laplace_ar", "coupling"),
    ("uniform", "copula_ou", "spiral"), ("student_t", "naive_additive", "banana"),
    ("mixture", "drift", "sinusoid"), ("gennorm", "ou", "identity"),
    ("gaussian", "ou", "linear")])
def test_world_every_kind(kinds, capsys):
    lat, dyn, mix = kinds
    assert main(["world", f"world.latent.kind={lat}", f"world.dynamics.kind={dyn}",
                 f"world.mixer.kind={mix}", "--json", "-n", "1000", "-k", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["checks"]["n"] == 1000


def _strict_json(text: str):
    def refuse(name):
        raise AssertionError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_world_json_is_strict_at_the_smallest_sample(capsys):
    """-n 2 is the least the checks accept; what it prints is valid JSON."""
    assert main(["world", "--json", "-n", "2", "-k", "1"]) == 0
    assert _strict_json(capsys.readouterr().out)["checks"]["n"] == 2


def test_world_undefined_statistic_is_null_not_nan(monkeypatch, capsys):
    """A statistic undefined on the sample (a constant coordinate has no correlation)
    prints as JSON null and as n/a in the table, never as NaN."""
    from identlab.world.world import World

    real = World.diagnostics

    def with_nan(self, **kw):
        out = real(self, **kw)
        out["one_step_corr"] = [float("nan"), *out["one_step_corr"][1:]]
        out["kurtosis_law"] = float("inf")
        return out

    monkeypatch.setattr(World, "diagnostics", with_nan)
    assert main(["world", "--json", "-n", "50"]) == 0
    checks = _strict_json(capsys.readouterr().out)["checks"]
    assert checks["one_step_corr"][0] is None and checks["kurtosis_law"] is None
    assert isinstance(checks["one_step_corr"][1], float)
    assert main(["world", "-n", "50"]) == 0
    text = capsys.readouterr().out
    assert "nan" not in text.lower() and "n/a" in text


def test_run_writes_record(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "configs/spiral.yaml", *TINY, "--out", str(out), "--no-progress"]) == 0
    rec = json.loads((out / "record.json").read_text())
    for key in ("config", "seed", "metrics", "status", "flags", "provenance"):
        assert key in rec
    for key in ("identlab", "git_sha", "torch", "device", "wall_s", "steps_per_s"):
        assert key in rec["provenance"]
    assert rec["status"] == "ok" and rec["config"]["train"]["steps"] == 5
    assert "r2_hz" in capsys.readouterr().out


def test_run_seeds_as_one_batch_json(capsys):
    assert main(["run", "configs/spiral.yaml", *TINY, "seeds=[0,1,2]", "--json",
                 "--no-progress"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert [r["seed"] for r in recs] == [0, 1, 2]
    assert all(r["provenance"]["group_size"] == 3 for r in recs)


@pytest.mark.parametrize("override, field", [
    ("learner.objective.kind=nope", "learner.objective.kind"),
    ("learner.encoder.kind=nope", "learner.encoder.kind"),
    ("learner.objective.lam=1.5", "learner.objective.lam"),
    ("learner.objective.lam=-0.1", "learner.objective.lam"),
    ("learner.objective.slices=0", "learner.objective.slices"),
    ("learner.objective.knots=16", "learner.objective.knots"),
    ("learner.objective.knots=1", "learner.objective.knots"),
    ("train.steps=0", "train.steps"),
    ("train.batch=1", "train.batch"),
    ("eval.n=10", "eval.n"),
    ("seeds=[a]", "seeds"),
    ("train.lr=fast", "train.lr"),
])
def test_run_bad_input_exit_2(override, field, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "configs/spiral.yaml", *TINY, override, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err
    assert not (out / "record.json").exists()


def test_run_out_not_writable(tmp_path, capsys):
    from test_hostile import read_only  # a read-only bind mount as root, chmod otherwise

    ro = tmp_path / "ro"
    ro.mkdir()
    with read_only(ro):
        assert main(["run", "configs/spiral.yaml", *TINY, "--out", str(ro / "x")]) == 2
    assert "not writable" in capsys.readouterr().err


def test_run_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["run", "configs/spiral.yaml", *TINY, "--out", str(f)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_missing_config_and_bad_yaml(tmp_path, capsys):
    assert main(["run", str(tmp_path / "none.yaml")]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("world: [unclosed\n")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "not valid YAML" in err


def test_unknown_command_exit_2(capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("identlab: error: ") and err.count("\n") == 1


def test_bench_quick_writes_report(tmp_path, capsys):
    out = tmp_path / "bench.md"
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    text = out.read_text()
    assert "spiral_k1_ms" in text and "sweep_k4_per_member_ratio" in text
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["spiral_k1_ms"] > 0 and data["matmul_gflops"] > 0


@pytest.mark.parametrize("device", ["gpu0", "cuda:0"] if not __import__("torch").cuda.is_available()
                         else ["gpu0"])
def test_bad_device_exit_2(device, tmp_path, capsys):
    assert main(["run", "configs/spiral.yaml", *TINY, "--device", device,
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--device" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o" / "record.json").exists()
