"""Warm starts, trajectory metrics and the stability verdict of a rotation start.

The science: a supervised warm start puts the encoder at its target (bulk R² ≥ 0.99);
LeJEPA keeps a rotation start in a Gaussian OU world (the theorem's world, where the
rotation is the optimum) and leaves it in a Laplace AR world (where Φ⁻¹(F(z)) is cheaper:
its J falls far below the rotation oracle's). Tiny sizes on the identity mixer.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from identlab.cli import main
from identlab.config import config_hash, load_run
from identlab.core.schema import ConfigError, to_dict
from identlab.learn.train import resolve_device
from identlab.measure.metrics import bulk_rows, r2_linear_bulk
from identlab.measure.stats import departure_step, trajectory_stats
from identlab.measure.thresholds import BULK_QUANTILE, STABLE_R2_TOL
from identlab.run.program import build_program, run_group
from identlab.show.report import records_frame

BASE = "sweeps/base_cpu.yaml"
TINY_WARM = ["world.mixer.kind=identity", "learner.init.kind=supervised",
             "learner.init.steps=600", "learner.init.pool=5000"]
WORLDS = {"gaussian": ["world.latent.kind=gaussian", "world.dynamics.kind=ou"],
          "laplace": ["world.latent.kind=laplace", "world.dynamics.kind=laplace_ar"]}
AT = [0, 100, 300]


def _cfg(*over):
    return load_run(BASE, [*over])


@pytest.mark.parametrize("target", ["latent", "gaussianized"])
def test_warm_start_reaches_its_target(target):
    """600 regression steps on the identity mixer: held-out bulk R² to the target ≥ 0.99
    for Gaussian and Laplace latents (measured: ≥ 0.9999)."""
    cfgs = [_cfg(*TINY_WARM, *w, f"learner.init.target={target}") for w in WORLDS.values()]
    prog = build_program(cfgs, resolve_device("cpu"))
    for s in prog.init_scores:
        assert s["init_r2_bulk"] >= 0.99 and s["init_r2"] >= 0.99, s


def test_warm_start_uses_the_member_own_stream():
    """A member's warm start does not depend on which other members share its program."""
    a = _cfg(*TINY_WARM, *WORLDS["laplace"], "learner.init.steps=50")
    b = _cfg(*TINY_WARM, *WORLDS["gaussian"], "learner.init.steps=50", "seed=3")
    alone = build_program([a], resolve_device("cpu"))
    pair = build_program([a, b], resolve_device("cpu"))
    for name, v in alone.params.items():
        assert np.allclose(v[0].numpy(), pair.params[name][0].numpy(), atol=1e-6), name


@pytest.fixture(scope="module")
def stability_records():
    """Rotation starts, LeJEPA at λ 1e-2, lr 1e-3, 300 steps (cosine over the second
    half), trajectory at steps 0, 100, 300 (≈ 5 s)."""
    common = [*TINY_WARM, "train.steps=300", "eval.n=2000", "learner.objective.lam=0.01",
              "train.lr=1e-3", f"eval.at_steps={AT}", "eval.traj_pairs=400"]
    cfgs = [_cfg(*common, *w) for w in WORLDS.values()]
    return dict(zip(WORLDS, run_group(cfgs, device="cpu", progress=False)))


def test_gaussian_rotation_start_is_kept(stability_records):
    """Measured: bulk R² 0.99999 → 0.9995, J 0.049 against the rotation oracle's 0.044
    with SE 0.005 (1 SE)."""
    m = stability_records["gaussian"]["metrics"]
    assert m["rotation_stable"] is True
    assert m["r2_hz_bulk"] >= m["init_r2_bulk"] - STABLE_R2_TOL
    assert abs(m["loss_learned"] - m["loss_rotation"]) <= 3 * m["loss_se"]


def test_laplace_rotation_start_is_left(stability_records):
    """Measured: bulk R² 0.99999 → 0.956 (R² to Φ⁻¹(F(z)) 0.997), J 0.047 against the
    rotation oracle's 0.074 (−6 SE) and the Gaussianized oracle's 0.045."""
    m = stability_records["laplace"]["metrics"]
    assert m["rotation_stable"] is False
    assert m["r2_hz_bulk"] < m["init_r2_bulk"] - STABLE_R2_TOL
    assert m["loss_learned"] < m["loss_rotation"] - 3 * m["loss_se"]
    assert m["r2_hz_gauss"] > m["r2_hz"]


def test_trajectory_metrics_at_the_configured_steps(stability_records):
    """Every record carries the trajectory at exactly eval.at_steps; step 0 is the warm
    start itself (R² ≥ 0.99 against z); the Laplace J falls along training, towards the
    Gaussianized oracle and below the rotation oracle."""
    for rec in stability_records.values():
        m = rec["metrics"]
        assert m["traj_steps"] == AT
        for key in ("traj_r2_hz", "traj_r2_hz_gauss", "traj_loss"):
            assert len(m[key]) == len(AT) and all(np.isfinite(m[key])), key
        assert m["traj_r2_hz"][0] >= 0.99
    lap = stability_records["laplace"]["metrics"]
    assert lap["traj_loss"][-1] < lap["traj_loss"][0]
    assert lap["traj_loss"][-1] < lap["traj_loss_rotation"]
    df = records_frame(list(stability_records.values()))
    st_ = trajectory_stats(df, "traj_r2_hz")
    assert list(st_["step"]) == AT and (st_["n"] == 2).all()


def test_default_hashes_unchanged():
    """Defaults of the new sections are left out of the config dict, so every existing
    config keeps its hash."""
    plain = _cfg()
    explicit = _cfg("learner.init.kind=random", "eval.at_steps=[]", "eval.traj_pairs=1000")
    assert config_hash(plain) == config_hash(explicit)
    d = to_dict(plain)
    assert "init" not in d["learner"] and "at_steps" not in d["eval"]
    assert "init" in to_dict(_cfg("learner.init.kind=supervised"))["learner"]


@pytest.mark.parametrize("override,field", [
    ("learner.init.target=pixels", "learner.init.target"),
    ("learner.init.steps=0", "learner.init.steps"),
    ("learner.init.kind=pretrained", "learner.init.kind"),
    ("eval.at_steps=[0,5000]", "eval.at_steps"),
])
def test_bad_init_settings_exit_2_naming_the_field(override, field, capsys):
    with pytest.raises(ConfigError, match=field):
        _cfg(override)
    rc = main(["run", BASE, override, "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and field in err and err.count("\n") == 1, err


@given(st.integers(0, 2**31 - 1), st.floats(0.2, 5.0))
def test_bulk_r2_of_an_affine_map_is_one(seed, scale):
    """h an invertible affine map of z (heavy-tailed z): the bulk R² is 1, and the bulk
    keeps the BULK_QUANTILE share of the rows."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(3, size=(400, 2))
    h = z @ np.array([[scale, 0.3], [-0.2, 1.0]]) + 0.5
    assert abs(bulk_rows(z, BULK_QUANTILE).mean() - BULK_QUANTILE) <= 1 / 400 + 1e-12
    assert r2_linear_bulk(h[:200], z[:200], h[200:], z[200:], BULK_QUANTILE) > 1 - 1e-9


def test_departure_step_is_the_first_step_below_the_tolerance():
    steps = np.array([100, 250, 500])
    assert departure_step(steps, np.array([0.995, 0.97, 0.9]), 0.999, 0.02) == 250
    assert departure_step(steps, np.array([0.995, 0.99, 0.985]), 0.999, 0.02) is None
