"""End to end: LeJEPA recovers a Gaussian world and fails where the theorem says it must.

The default (fast) tests run real but tiny versions; the `slow` ones are the acceptance
runs at the sizes of configs/*.yaml (`make test-all`).
"""

import pytest

from identlab.config import load_run
from identlab.run.program import run_group

SPIRAL_TINY = ["learner.encoder.hidden=64", "learner.encoder.depth=3",
               "learner.objective.slices=32", "train.steps=600", "train.lr=1.0e-2",
               "eval.n=2000", "eval.sigreg_slices=64"]
SMALL = ["learner.encoder.hidden=32", "learner.encoder.depth=2", "learner.objective.slices=32",
         "train.steps=400", "train.batch=128", "eval.n=2000", "eval.sigreg_slices=64"]


def _run(source, overrides, seeds=(0,)):
    cfg = load_run(source, overrides)
    return [r["metrics"] for r in run_group([cfg.with_seed(s) for s in seeds], progress=False)]


def test_lejepa_unmixes_the_spiral_tiny():
    """The spiral hides z from any linear read-out of x (R²(x→z) ≈ 0); a short LeJEPA run
    recovers it linearly."""
    (m,) = _run("configs/spiral.yaml", SPIRAL_TINY)
    assert m["r2_xz"] < 0.1
    assert m["r2_hz"] > 0.9 and m["cca_min"] > 0.9


def test_heavy_tailed_latents_break_linear_recovery_tiny():
    """Converse direction: with exactly stationary dynamics and even an identity mixer,
    heavy-tailed latents (gennorm α = 0.25) are not recovered linearly — SIGReg pulls h
    toward a Gaussian, which no rotation of such z is — while Gaussian latents are."""
    common = SMALL + ["world.mixer.kind=identity", "world.dynamics.kind=copula_ou",
                      "learner.objective.lam=0.01"]
    (gauss,) = _run(None, common + ["world.latent.kind=gaussian"])
    (heavy,) = _run(None, common + ["world.latent.kind=gennorm", "world.latent.alpha=0.25"])
    assert gauss["r2_hz"] > 0.95
    assert heavy["r2_hz"] < 0.6
    assert heavy["r2_xz"] > 0.99  # the observations themselves were linear in z


def test_align_only_collapses_tiny():
    no_slices = [o for o in SMALL if not o.startswith("learner.objective.slices")]
    (m,) = _run(None, no_slices + ["world.mixer.kind=identity",
                                   "learner.objective.kind=align_only"])
    (lejepa,) = _run(None, SMALL + ["world.mixer.kind=identity"])
    assert m["h_var"] < 0.1 * lejepa["h_var"]


def test_sigreg_only_cannot_undo_the_spiral_tiny():
    """SIGReg alone has no temporal signal: the spiral's output is already N(0, I)."""
    (m,) = _run("configs/spiral.yaml", SPIRAL_TINY + ["learner.objective.kind=sigreg_only"])
    assert m["r2_hz"] < 0.5


def test_bound_holds_on_trained_gaussian_ou_runs_tiny():
    """Theorem 3 on trained encoders: in Gaussian OU worlds the measured recovery error
    stays below D + (ε + D)² within its Monte-Carlo error, whatever the training reached."""
    cfgs = [load_run("configs/spiral.yaml", SPIRAL_TINY + [f"world.dynamics.rho={rho}",
                                                           f"learner.objective.lam={lam}"])
            for rho, lam in [(0.5, 1e-3), (0.9, 1e-3), (0.95, 1e-2)]]
    recs = run_group([c.with_seed(i) for i, c in enumerate(cfgs)], progress=False)
    for r in recs:
        m = r["metrics"]
        assert r["theorem_applies"] and m["bound"] is not None
        assert m["bound_holds"], (m["procrustes"], m["bound"], m["bound_se"])
    non_ou = run_group([load_run("configs/spiral.yaml", SPIRAL_TINY + [
        "world.latent.kind=laplace", "world.dynamics.kind=laplace_ar"])], progress=False)
    assert non_ou[0]["metrics"]["bound"] is None  # the bound is stated for OU worlds only


# ------------------------------------------------------------------ acceptance (slow)
@pytest.mark.slow
def test_spiral_acceptance():
    """configs/spiral.yaml at 3000 steps: R² ≥ 0.98 and CCA min ≥ 0.98."""
    (m,) = _run("configs/spiral.yaml", [])
    assert m["r2_hz"] >= 0.98 and m["cca_min"] >= 0.98


@pytest.mark.slow
def test_spiral_gennorm_half_naive_channel_is_worse():
    """The paper code's world: gennorm α = 0.5 with noise from the same law."""
    (g,) = _run("configs/spiral.yaml", [])
    (m,) = _run("configs/spiral.yaml", ["world.latent.kind=gennorm", "world.latent.alpha=0.5",
                                        "world.dynamics.kind=naive_additive"])
    assert m["r2_hz"] < g["r2_hz"] - 0.2


@pytest.mark.slow
# strict: 0.743 is far below 0.95, so a pass is news (the budget, the method or the world
# changed) and is reported as a failure, to be turned into a plain assertion
@pytest.mark.xfail(strict=True, reason="measured on a 2-core CPU: r2_hz 0.743 at 3000 steps "
                   "(0.82 at 6000; larger lam is worse), cca_min ~ 0: one of the 8 latent "
                   "directions is not recovered by configs/mlp8.yaml")
def test_mlp8_recovers():
    (m,) = _run("configs/mlp8.yaml", [])
    assert m["r2_hz"] >= 0.95


@pytest.mark.slow
def test_mlp8_baselines_fail():
    (m,) = _run("configs/mlp8.yaml", [])
    (a,) = _run("configs/mlp8.yaml", ["learner.objective.kind=align_only"])
    assert a["h_var"] < 0.05
    (s,) = _run("configs/mlp8.yaml", ["learner.objective.kind=sigreg_only"])
    assert s["r2_hz"] < m["r2_hz"] - 0.1
    assert m["r2_hz"] > m["r2_xz"] + 0.1  # LeJEPA still beats reading z off x linearly
