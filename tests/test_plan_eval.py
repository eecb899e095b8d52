"""The planning evaluation inside a run (design §8): the ``eval.plan`` config section,
its bad input, the protocol's planning metrics, the pinned default record and a tiny
end-to-end sweep whose report shows the regret."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pins import assert_record_matches_pin

from identlab.cli import main
from identlab.config import config_hash, load_run
from identlab.core.schema import ConfigError, build, param, to_dict
from identlab.measure.attribution import ATTRIBUTION_KEYS
from identlab.measure.config import PlanConfig
from identlab.measure.planning import PLAN_KEYS
from identlab.run.program import run_configs
from identlab.run.score import TARGET_KEYS, TIMING_KEYS
from identlab.show.report import write_report
from identlab.sweep.run import run_sweep
from identlab.sweep.spec import load_spec

PIN = Path(__file__).parent / "data" / "pin_spiral.json"
SPIRAL_HASH = "3c67158715c3888d"  # configs/spiral.yaml before eval.plan existed
TINY = ["learner.encoder.hidden=16", "learner.encoder.depth=2",
        "learner.objective.slices=16", "train.steps=40", "train.batch=64", "eval.n=400",
        "eval.sigreg_slices=16", "eval.knn=5"]
TINY_PLAN = ["eval.plan.pairs=20", "eval.plan.transitions=400"]


# ------------------------------------------------------------------ omit_default
@dataclass(frozen=True)
class _Inner:
    a: int = param(1)


@dataclass(frozen=True)
class _Outer:
    kept: int = param(0)
    opt: _Inner = param(factory=_Inner, omit_default=True)
    flag: bool = param(False, omit_default=True)


def test_omit_default_drops_fields_only_at_their_default():
    assert to_dict(_Outer()) == {"kept": 0}
    assert to_dict(_Outer(flag=True)) == {"kept": 0, "flag": True}
    assert to_dict(_Outer(opt=_Inner(2))) == {"kept": 0, "opt": {"a": 2}}
    # what to_dict leaves out rebuilds to the same config
    for obj in (_Outer(), _Outer(opt=_Inner(3), flag=True)):
        assert build(_Outer, to_dict(obj)) == obj


def test_default_plan_section_keeps_existing_hashes():
    cfg = load_run("configs/spiral.yaml")
    assert config_hash(cfg) == SPIRAL_HASH
    assert "plan" not in to_dict(cfg)["eval"]
    on = load_run("configs/spiral.yaml", ["eval.plan.enabled=true"])
    assert config_hash(on) != SPIRAL_HASH and to_dict(on)["eval"]["plan"]["enabled"]
    # a value equal to the default is the same config
    same = load_run("configs/spiral.yaml", ["eval.plan.horizon=15"])
    assert config_hash(same) == SPIRAL_HASH


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("override, field", [
    ("eval.plan.horizon=0", "eval.plan.horizon"),
    ("eval.plan.r=0", "eval.plan.r"),
    ("eval.plan.r=-1", "eval.plan.r"),
    ("eval.plan.pairs=0", "eval.plan.pairs"),
    ("eval.plan.bogus=1", "eval.plan.bogus"),
])
def test_bad_plan_input_names_the_field(override, field, tmp_path, capsys):
    with pytest.raises(ConfigError) as e:
        load_run("configs/spiral.yaml", [override])
    assert e.value.field == field
    out = tmp_path / "o"
    assert main(["run", "configs/spiral.yaml", *TINY, override, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err
    assert not out.exists() or not any(out.iterdir())


def test_planning_on_a_mixer_without_control_is_refused(monkeypatch, tmp_path, capsys):
    """Every rendered mixer today (reacher) knows its actions; a rendered mixer whose
    class declares no ``control`` is refused at config time, by name."""
    pixels = ["world.mixer.kind=reacher", "learner.encoder.kind=cnn",
              "eval.plan.enabled=true"]
    assert load_run("configs/spiral.yaml", pixels).eval.plan.enabled
    from identlab.core.registry import MIXERS

    monkeypatch.setattr(MIXERS.get("reacher"), "control", None)
    with pytest.raises(ConfigError) as e:
        load_run("configs/spiral.yaml", pixels)
    assert e.value.field == "eval.plan.enabled" and "'reacher'" in str(e.value)
    out = tmp_path / "o"
    assert main(["run", "configs/spiral.yaml", *pixels, "--out", str(out)]) == 2
    assert "'reacher'" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_planning_with_noise_on_a_drifting_world_is_refused():
    drift = ["world.dynamics.kind=drift", "world.dynamics.strength=1.0",
             "eval.plan.enabled=true"]
    assert load_run("configs/spiral.yaml", drift).eval.plan.enabled  # noise off: fine
    with pytest.raises(ConfigError) as e:
        load_run("configs/spiral.yaml", [*drift, "eval.plan.noise=true"])
    assert e.value.field == "eval.plan.noise" and "drift" in str(e.value)


def test_rendered_worlds_take_the_rendered_budget():
    cfg = PlanConfig(pairs=200, transitions=20000)
    assert cfg.for_world(False) is cfg
    small = cfg.for_world(True)
    assert (small.transitions, small.pairs) == (cfg.rendered_transitions, cfg.rendered_pairs)


# ------------------------------------------------------------------ protocol
def test_protocol_adds_plan_keys_only_when_enabled():
    """Same training, planning on or off: the learned encoder and every other metric are
    identical (planning draws only from its own stream); the plan keys appear only when
    enabled, finite, with the timing moved to the provenance."""
    off = load_run("configs/spiral.yaml", TINY + TINY_PLAN)
    on = load_run("configs/spiral.yaml", TINY + TINY_PLAN + ["eval.plan.enabled=true"])
    r_off, r_on = run_configs([off, on], progress=False)
    assert not set(PLAN_KEYS) & set(r_off["metrics"])
    assert set(PLAN_KEYS) <= set(r_on["metrics"])
    assert all(np.isfinite(r_on["metrics"][k]) for k in PLAN_KEYS)
    assert r_on["metrics"]["plan_regret_p90"] >= r_on["metrics"]["plan_regret"] >= 0
    assert not set(TIMING_KEYS) & set(r_on["metrics"]) and "plan_s" in r_on["provenance"]
    shared = {k: v for k, v in r_on["metrics"].items() if k not in PLAN_KEYS}
    assert shared == r_off["metrics"]


def test_default_record_matches_the_pin(capsys):
    """The record of a default-config run (planning off) is unchanged, number for number:
    hash, strings and integers exactly, floats within the tolerance of tests/pins.py."""
    pin = json.loads(PIN.read_text())
    args = ["run", "configs/spiral.yaml", "train.steps=60", "learner.encoder.hidden=32",
            "learner.encoder.depth=2", "learner.objective.slices=32", "eval.n=1000",
            "--json", "--no-progress"]
    assert main(args) == 0
    rec = json.loads(capsys.readouterr().out)
    rec = rec[0] if isinstance(rec, list) else rec
    rec.pop("provenance")
    pin.pop("provenance", None)
    # the attribution keys (design §7) and the bulk R² are new; every pinned value stays
    # (within the tolerance of tests/pins.py)
    assert set(rec["metrics"]) - set(pin["metrics"]) == {*ATTRIBUTION_KEYS, *TARGET_KEYS,
                                                         "r2_hz_bulk"}
    assert_record_matches_pin(rec, pin)


# ------------------------------------------------------------------ end to end
def test_tiny_sweep_reports_the_regret(tmp_path):
    base = load_run("configs/spiral.yaml", TINY + TINY_PLAN)
    spec = load_spec({
        "name": "plan-tiny", "base": to_dict(base), "seeds": 1,
        "grid": {"world.dynamics.rho": [0.8, 0.9, 0.95], "eval.plan.enabled": [True]},
        "plots": [{"kind": "heatmap", "x": "world.dynamics.rho", "y": "eval.plan.enabled",
                   "metric": "plan_regret"},
                  {"kind": "versus", "x": "r2_hz", "metric": "plan_regret"},
                  {"kind": "versus", "x": "orth_err", "metric": "plan_regret"}]})
    run_sweep(spec, tmp_path / "runs", progress=False)
    readme = write_report(tmp_path / "runs", tmp_path / "reports")
    text = readme.read_text()
    assert "plan_regret" in text and "Spearman ρ(plan_regret, orth_err)" in text
    assert "Recovered runs (r2_hz ≥" in text
    assert (readme.parent / "02-versus-plan_regret.png").is_file()
    csv = (readme.parent / "results.csv").read_text().splitlines()[0]
    assert "plan_regret" in csv and "plan_interp_ratio" in csv


def test_versus_plot_spec_validation():
    base = to_dict(load_run("configs/spiral.yaml", TINY))
    good = {"name": "v", "base": base, "grid": {"world.dynamics.rho": [0.8]},
            "plots": [{"kind": "versus", "x": "orth_err", "metric": "plan_regret",
                       "group": "world.dynamics.rho"}]}
    assert load_spec(good).plots[0].x == "orth_err"
    with pytest.raises(ConfigError, match="versus plot needs x"):
        load_spec({**good, "plots": [{"kind": "versus", "metric": "plan_regret"}]})
