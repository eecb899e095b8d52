"""Metrics (design §5): invariances, hand-computed values, Thm 3's bound, degenerate input."""

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from identlab.measure import metrics as M
from identlab.measure.config import EvalConfig
from identlab.measure.split import heldout_split, n_fit
from identlab.sigreg import gaussian_expectation, sigreg_direct

SEEDS = st.integers(0, 2**32 - 1)
DIMS = st.integers(1, 5)


# ------------------------------------------------------------------ helpers
def _ou_pairs(n, dim, rho, rng):
    """Stationary Gaussian OU pairs (z_t, z_t1), each (n, dim), Cov = I, lag corr rho."""
    z = rng.standard_normal((n, dim))
    return z, rho * z + math.sqrt(1 - rho**2) * rng.standard_normal((n, dim))


def _stay_or_resample_pairs(n, dim, rho, rng):
    """Stationary N(0, I) chain, z' = z w.p. rho else a fresh draw: lag corr rho, not OU."""
    z = rng.standard_normal((n, dim))
    stay = rng.random((n, 1)) < rho
    return z, np.where(stay, z, rng.standard_normal((n, dim)))


def _rotation(dim, rng):
    """(dim, dim) Haar-random orthogonal matrix."""
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


def _well_conditioned(dim, rng):
    """(dim, dim) U·diag(s)·V with singular values s in [0.5, 2]."""
    return _rotation(dim, rng) * rng.uniform(0.5, 2.0, dim) @ _rotation(dim, rng)


def _he2(z):
    """Unit-variance second Hermite polynomial (z² − 1)/√2, elementwise."""
    return (z**2 - 1) / math.sqrt(2)


def _spiral(z):
    """design §3 spiral: rotate each 2-D point by π‖z‖ (invertible, keeps N(0, I))."""
    th = math.pi * np.linalg.norm(z, axis=1)  # (n,)
    c, s = np.cos(th), np.sin(th)
    return np.stack([c * z[:, 0] - s * z[:, 1], s * z[:, 0] + c * z[:, 1]], axis=1)


def _split(a, b):
    """Fit/test halves of (a, b) by rows."""
    k = len(a) // 2
    return a[:k], b[:k], a[k:], b[k:]


# ------------------------------------------------------------------ R², CCA
@given(seed=SEEDS, dim=DIMS)
def test_r2_and_cca_are_one_under_invertible_affine_maps(seed, dim):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((400, dim))
    h = z @ _well_conditioned(dim, rng) + rng.normal(0, 5, dim)
    r2_hz, dims_hz = M.r2_linear(*_split(h, z))
    r2_zh, dims_zh = M.r2_linear(*_split(z, h))
    assert r2_hz == pytest.approx(1.0, abs=1e-9) and r2_zh == pytest.approx(1.0, abs=1e-9)
    assert np.allclose(dims_hz, 1.0, atol=1e-9) and np.allclose(dims_zh, 1.0, atol=1e-9)
    hf, zf, hs, zs = _split(h, z)
    assert np.allclose(M.cca(hf, zf, hs, zs), 1.0, atol=1e-9)
    assert np.allclose(M.cca(h, z), 1.0, atol=1e-9)


def test_r2_matches_noise_level_and_pools_by_variance():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20000, 2))
    y = x * [1.0, 3.0] + rng.standard_normal((20000, 2))  # R² per dim 1/2 and 9/10
    pooled, dims = M.r2_linear(*_split(x, y))
    assert dims == pytest.approx([0.5, 0.9], abs=0.02)
    assert pooled == pytest.approx(1 - 2 / 12, abs=0.02)  # (1 + 1) / (2 + 10) unexplained


def test_cca_recovers_known_canonical_correlations():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((20000, 2))
    c = 0.6
    h = np.stack([z[:, 0], c * z[:, 1] + math.sqrt(1 - c**2) * rng.standard_normal(20000)], 1)
    h = h @ _well_conditioned(2, rng)  # mixing h does not change canonical correlations
    assert M.cca(*_split(h, z)) == pytest.approx([1.0, c], abs=0.02)
    assert M.cca(h, z) == pytest.approx([1.0, c], abs=0.02)


def test_fitted_metrics_are_held_out():
    """Independent noise: in-sample fits look good on few rows, held-out ones must not."""
    rng = np.random.default_rng(3)
    z, z1 = _ou_pairs(40, 8, 0.9, rng)
    h, h1 = rng.standard_normal((40, 8)), rng.standard_normal((40, 8))
    assert M.cca(np.vstack([h[:20], h1[:20]]), np.vstack([z[:20], z1[:20]])).mean() > 0.3
    out = M.evaluate(h, h1, z, z1, EvalConfig(sigreg_slices=8), rho=None)
    assert out["r2_hz"] < 0.05 and out["r2_zh"] < 0.05
    assert out["cca_mean"] < 0.3 and out["nl_r2_hz"] < 0.1


# ------------------------------------------------------------------ MCC
@given(seed=SEEDS, dim=DIMS)
def test_mcc_is_one_under_permutation_sign_and_scale(seed, dim):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((300, dim))
    perm, sign = rng.permutation(dim), rng.choice([-1.0, 1.0], dim)
    h = z[:, perm] * sign * rng.uniform(0.2, 5.0, dim) + rng.normal(0, 3, dim)
    assert M.mcc(h, z) == pytest.approx(1.0, abs=1e-9)
    assert M.mcc(h, z, "spearman") == pytest.approx(1.0, abs=1e-9)


@given(seed=SEEDS, dim=st.integers(2, 5))
def test_spearman_mcc_is_one_under_monotone_maps(seed, dim):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((300, dim))
    maps = [lambda v: np.exp(3 * v), lambda v: -(v**3), np.tanh, lambda v: np.arcsinh(5 * v)]
    cols = rng.permutation(dim)
    h = np.stack([maps[i % 4](z[:, c]) for i, c in enumerate(cols)], axis=1)
    assert M.mcc(h, z, "spearman") == pytest.approx(1.0, abs=1e-9)
    assert M.mcc(h, z) < 0.99  # exp(3z) is far from linear


def test_mcc_of_a_45_degree_rotation():
    rng = np.random.default_rng(4)
    z = rng.standard_normal((20000, 2))
    c = math.sqrt(0.5)
    h = z @ np.array([[c, -c], [c, c]])
    assert M.mcc(h, z) == pytest.approx(c, abs=0.02)


# ------------------------------------------------------------------ orthogonality, Procrustes
@given(seed=SEEDS, dim=DIMS)
def test_orth_err_and_procrustes_vanish_for_rotations(seed, dim):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((300, dim))
    h = z @ _rotation(dim, rng) + rng.normal(0, 10, dim)
    assert M.orth_err(h, z) == pytest.approx(0.0, abs=1e-9)
    assert M.procrustes(h, z) == pytest.approx(0.0, abs=1e-9)


@given(seed=SEEDS, dim=st.integers(2, 5))
def test_procrustes_and_orth_err_of_a_stretched_rotation(seed, dim):
    """h = z·diag(3, 1, …)·Q: the best Q leaves E(3z₀ − z₀)² = 4·Var z₀ (up to O(1/n) from
    the sample cross-covariances); A = diag(3, 1, …)·Q exactly, so ‖AᵀA − I‖_F = 8."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((1000, dim))
    s = np.ones(dim)
    s[0] = 3.0
    h = z * s @ _rotation(dim, rng)
    assert M.procrustes(h, z) == pytest.approx(4 * M.covariance(z)[0, 0], rel=0.05)
    assert M.orth_err(h, z) == pytest.approx(8 / math.sqrt(dim), rel=1e-9)


# ------------------------------------------------------------------ nonlinear maps
def test_linear_r2_low_for_noninvertible_square_and_knn_agrees():
    rng = np.random.default_rng(5)
    z = rng.standard_normal((4000, 3))
    h = z**2  # sign lost: E[z | z²] = 0
    assert M.r2_linear(*_split(h, z))[0] < 0.05
    assert M.r2_knn(*_split(h, z))[0] < 0.1


def test_knn_r2_high_for_invertible_nonlinear_map():
    rng = np.random.default_rng(6)
    z = rng.standard_normal((6000, 2))
    h = _spiral(z)  # kNN (k=10) is biased in the sparse tails, hence 0.8, not ~1
    assert M.r2_linear(*_split(h, z))[0] < 0.1
    assert M.r2_knn(*_split(h, z))[0] > 0.8
    cube = z**3  # monotone per dim: partly linear, fully recoverable
    assert M.r2_linear(*_split(cube, z))[0] < 0.75
    assert M.r2_knn(*_split(cube, z))[0] > 0.93


# ------------------------------------------------------------------ Thm 3 terms
def test_bound_terms_by_hand():
    # ρ = 0.5: 2ρ(1−ρ) = 0.5, D = 0.02/0.5 = 0.04, ε + D = 0.14,
    # bound = 0.04 + 0.0196 = 0.0596; s = SE(D) = 0.01/0.5 = 0.02, ∂bound/∂D = 1.28,
    # delta method 1.28·0.02 = 0.0256, second order 2·0.02⁴ = 3.2e-7.
    t = M.bound_terms(epsilon=0.1, delta=0.02, delta_se=0.01, rho=0.5)
    assert t["D"] == pytest.approx(0.04, rel=1e-12)
    assert t["bound"] == pytest.approx(0.0596, rel=1e-12)
    assert t["bound_se"] == pytest.approx(math.sqrt(0.0256**2 + 3.2e-7), rel=1e-12)
    assert t["bound_se"] == pytest.approx(0.0256, rel=1e-3)  # first order dominates
    # ρ = 0.9: gap 0.18, δ = −0.09 gives D = −0.5, ε + D = −0.3, bound = −0.41;
    # s = 0.02/0.18, ∂bound/∂D = 1 − 0.6 = 0.4.
    t = M.bound_terms(epsilon=0.2, delta=-0.09, delta_se=0.02, rho=0.9)
    s = 0.02 / 0.18
    assert t["bound"] == pytest.approx(-0.41, rel=1e-12)
    assert t["bound_se"] == pytest.approx(math.sqrt((0.4 * s) ** 2 + 2 * s**4), rel=1e-12)
    # at the parabola's vertex (ε + D = −½) only the second-order term remains
    t = M.bound_terms(epsilon=0.0, delta=-0.25, delta_se=0.025, rho=0.5)  # D = −½
    assert t["bound"] == pytest.approx(-0.25) and t["bound_se"] == pytest.approx(
        math.sqrt(2) * 0.05**2)


def test_bound_se_matches_monte_carlo():
    """bound_se is the exact SD of D + (ε + D)² when D is Gaussian."""
    rng = np.random.default_rng(21)
    eps, delta, se, rho = 0.3, 0.01, 0.02, 0.8
    draws = delta + se * rng.standard_normal(200000)
    gap = 2 * rho * (1 - rho)
    b = draws / gap + (eps + draws / gap) ** 2
    assert M.bound_terms(eps, delta, se, rho)["bound_se"] == pytest.approx(b.std(), rel=0.01)


def test_epsilon_and_delta_by_hand():
    h_t = np.array([[1.0, 0.0], [-1.0, 2.0]])
    h_t1 = np.array([[1.0, 1.0], [-1.0, -3.0]])
    # pooled rows: mean (0, 0); Cov = [[1, 0.5], [0.5, 3.5]] → ε = √(0.5² · 2 + 2.5²)
    assert M.epsilon(np.vstack([h_t, h_t1])) == pytest.approx(math.sqrt(6.75))
    # steps ‖Δ‖² = 1, 25; spreads = 1 + 2, 5 + 10; ρ = 0.5 → u = 1 − 1.5, 25 − 7.5
    d, se = M.delta(h_t, h_t1, 0.5)
    assert d == pytest.approx((-0.5 + 17.5) / 2)
    assert se == pytest.approx(np.std([-0.5, 17.5], ddof=1) / math.sqrt(2))
    # same δ from the definition: E‖h'−h‖² − 2(1−ρ) tr Cov = 13 − 1·4.5
    assert d == pytest.approx(13 - 4.5)


@given(seed=SEEDS, dim=st.integers(1, 4), rho=st.sampled_from([0.5, 0.9]))
def test_delta_is_unbiased_for_exact_rotations(seed, dim, rho):
    rng = np.random.default_rng(seed)
    z, z1 = _ou_pairs(2000, dim, rho, rng)
    q = _rotation(dim, rng)
    d, se = M.delta(z @ q, z1 @ q, rho)
    assert se > 0 and abs(d) < 4 * se


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_delta_standard_error_is_calibrated(rho):
    rng = np.random.default_rng(7)
    reps = [M.delta(*_ou_pairs(400, 2, rho, rng), rho) for _ in range(400)]
    d, se = np.array(reps).T
    assert abs(d.mean()) < 4 * d.std() / math.sqrt(len(d))  # unbiased across replicates
    assert d.std() / se.mean() == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_bound_is_tight_for_a_hermite_two_encoder(rho):
    """h = He₂(z)/√2 in 1-D OU: ε = 0, δ = 2ρ(1−ρ), D = 1, bound = 2 = procrustes."""
    rng = np.random.default_rng(8)
    z, z1 = _ou_pairs(40000, 1, rho, rng)
    h, h1 = _he2(z), _he2(z1)
    d, se = M.delta(h, h1, rho)
    assert abs(d - 2 * rho * (1 - rho)) < 4 * se
    eps = M.epsilon(np.vstack([h, h1]))
    t = M.bound_terms(eps, d, se, rho)
    assert t["D"] == pytest.approx(1.0, abs=0.15)
    assert t["bound"] == pytest.approx(2.0, abs=0.3)
    assert M.procrustes(np.vstack([h, h1]), np.vstack([z, z1])) == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_bound_holds_for_an_exact_rotation(rho):
    rng = np.random.default_rng(9)
    z, z1 = _ou_pairs(3000, 3, rho, rng)
    q = _rotation(3, rng)
    out = M.evaluate(z @ q, z1 @ q, z, z1, EvalConfig(sigreg_slices=16), rho=rho)
    assert out["bound_holds"] is True
    assert out["procrustes"] < 1e-20 and out["epsilon"] < 0.2
    assert abs(out["delta"]) < 4 * out["delta_se"]
    assert abs(out["bound"]) < 4 * out["bound_se"] + 0.05


def test_linear_distortion_cannot_break_the_bound():
    """A linear h in an OU world has δ = 0 exactly in expectation, so the bound is ε² ≥
    procrustes (here 64 vs 4): the theorem forbids a violation, and the metric agrees."""
    rng = np.random.default_rng(10)
    z, z1 = _ou_pairs(3000, 3, 0.9, rng)
    s = np.array([3.0, 1.0, 1.0])
    out = M.evaluate(z * s, z1 * s, z, z1, EvalConfig(sigreg_slices=16), rho=0.9)
    assert out["procrustes"] == pytest.approx(4.0, rel=0.1)
    assert out["epsilon"] == pytest.approx(8.0, rel=0.1)
    assert abs(out["D"]) < 4 * out["delta_se"] / (2 * 0.9 * 0.1)
    assert out["bound"] == pytest.approx(64.0, rel=0.2)
    assert out["bound_holds"] is True


def test_bound_fails_outside_the_theorem():
    """Stay-or-resample chain (stationary, Gaussian marginal, not OU): δ = 0 for every h,
    so a white nonlinear h = He₂(z)/√2 has bound ≈ 0 but procrustes ≈ 2N."""
    rng = np.random.default_rng(11)
    z, z1 = _stay_or_resample_pairs(3000, 2, 0.9, rng)
    out = M.evaluate(_he2(z), _he2(z1), z, z1, EvalConfig(sigreg_slices=16), rho=0.9)
    assert out["procrustes"] == pytest.approx(4.0, rel=0.1)
    assert out["bound"] + 3 * out["bound_se"] < 0.5 * out["procrustes"]
    assert out["bound_holds"] is False


# ------------------------------------------------------------------ SIGReg, alignment
def test_sigreg_stat_gaussian_baseline_and_laplace():
    rng = np.random.default_rng(12)
    # 16 dims: 64 slices are nearly independent, so each draw is already a good average
    gauss = [M.sigreg_stat(rng.standard_normal((1000, 16)), 64, seed=s) for s in range(6)]
    assert np.mean(gauss) == pytest.approx(gaussian_expectation(), abs=0.35)
    lap = rng.laplace(scale=1 / math.sqrt(2), size=(1000, 2))  # unit variance, kurtosis 6
    assert M.sigreg_stat(lap, 32, seed=0) > 5 * gaussian_expectation()


def test_sigreg_pairs_expectation_for_correlated_views():
    rng = np.random.default_rng(13)
    assert M.sigreg_pairs_expectation(0.0) == pytest.approx(gaussian_expectation())
    assert M.sigreg_pairs_expectation(1.0) == pytest.approx(2 * gaussian_expectation())
    # 300 replicates of 500 pooled 1-D OU pairs in one batched call (K members, 1 slice)
    z = np.stack([np.vstack(_ou_pairs(500, 1, 0.9, rng)) for _ in range(300)])  # (K, M, 1)
    stats = sigreg_direct(torch.from_numpy(z), torch.ones(300, 1, 1, dtype=torch.float64))
    assert stats.mean().item() == pytest.approx(M.sigreg_pairs_expectation(0.9), rel=0.15)
    # ... and sigreg_stat on one replicate agrees with the batched reference
    assert M.sigreg_stat(z[0], 1, seed=0) == pytest.approx(stats[0].item(), rel=1e-9)


def test_sigreg_stat_matches_the_direct_reference_and_is_seeded():
    rng = np.random.default_rng(14)
    h = rng.standard_t(5, size=(300, 3))
    direct = M.sigreg_stat(h, 40, seed=3, impl="direct", chunk_elems=300 * 17 * 7)
    assert M.sigreg_stat(h, 40, seed=3) == pytest.approx(direct, rel=1e-9)
    assert M.sigreg_stat(h, 40, seed=3) == M.sigreg_stat(h, 40, seed=3)
    assert M.sigreg_stat(h, 40, seed=4) != direct


def test_alignment_is_a_quarter_of_the_mean_squared_step():
    rng = np.random.default_rng(15)
    z, z1 = _ou_pairs(20000, 3, 0.8, rng)
    assert M.alignment(z, z1) == pytest.approx(0.25 * np.mean((z - z1) ** 2), rel=1e-12)
    assert M.alignment(z, z1) == pytest.approx((1 - 0.8) / 2, rel=0.03)  # E(z'−z)² = 2(1−ρ)


# ------------------------------------------------------------------ evaluate: output contract
def _assert_json_clean(out):
    json.dumps(out, allow_nan=False)
    for v in out.values():
        for x in v if isinstance(v, list) else [v]:
            assert x is None or type(x) in (float, bool), (v, type(x))


def test_evaluate_keys_types_and_rho_none():
    rng = np.random.default_rng(16)
    z, z1 = _ou_pairs(500, 2, 0.9, rng)
    q = _rotation(2, rng)
    out = M.evaluate(z @ q, z1 @ q, z, z1, EvalConfig(sigreg_slices=8), rho=None)
    assert set(M.METRIC_KEYS) | {"h_finite"} == set(out)
    _assert_json_clean(out)
    assert all(out[k] is None for k in M.BOUND_KEYS) and out["sigreg_stat_expected_pairs"] is None
    assert out["r2_hz"] == pytest.approx(1.0) and out["procrustes"] == pytest.approx(0.0)
    assert len(out["r2_hz_dims"]) == len(out["r2_zh_dims"]) == len(out["cca_corrs"]) == 2
    with_rho = M.evaluate(z @ q, z1 @ q, z, z1, EvalConfig(sigreg_slices=8), rho=0.9)
    _assert_json_clean(with_rho)
    assert all(with_rho[k] is not None for k in M.BOUND_KEYS)


@pytest.mark.parametrize("collapse", ["all", "one_dim"])
def test_collapsed_embedding_gives_no_nan(collapse):
    rng = np.random.default_rng(17)
    z, z1 = _ou_pairs(400, 3, 0.9, rng)
    h, h1 = z.copy(), z1.copy()
    cols = slice(None) if collapse == "all" else slice(0, 1)
    h[:, cols] = h1[:, cols] = 0.1  # (n, 3): dead units
    out = M.evaluate(h, h1, z, z1, EvalConfig(sigreg_slices=8), rho=0.9)
    _assert_json_clean(out)
    assert out["h_std_min"] == 0.0 and out["cca_min"] == 0.0
    if collapse == "all":
        assert out["r2_zh"] is None and out["r2_zh_dims"] == [None] * 3
        assert out["mcc"] == 0.0 and out["h_var"] == 0.0 and out["delta"] == 0.0
        assert out["epsilon"] == pytest.approx(math.sqrt(3))
        assert abs(out["r2_hz"]) < 0.05 and out["orth_err"] == pytest.approx(1.0)
    else:
        assert out["r2_zh_dims"][0] is None and out["r2_zh"] == pytest.approx(1.0)
        assert out["mcc"] == pytest.approx(2 / 3)


def test_nonfinite_embedding_is_flagged_not_scored():
    rng = np.random.default_rng(18)
    z, z1 = _ou_pairs(100, 2, 0.9, rng)
    h = z.copy()
    h[5, 1] = np.nan
    out = M.evaluate(h, z1, z, z1, rho=0.9)
    assert out["h_finite"] is False and all(out[k] is None for k in M.METRIC_KEYS)
    json.dumps(out, allow_nan=False)


@pytest.mark.parametrize("kwargs", [
    {"rho": 1.0}, {"rho": 0.0}, {"rho": [0.5, 0.9]}, {"rho": None, "cfg": {"fit_fraction": 0.99}},
    {"rho": None, "cfg": {"fit_fraction": 0.01}},
])
def test_evaluate_rejects_bad_arguments(kwargs):
    z = np.random.default_rng(19).standard_normal((50, 2))
    with pytest.raises(ValueError):
        if "cfg" in kwargs:
            kwargs = {**kwargs, "cfg": EvalConfig(**kwargs["cfg"])}
        M.evaluate(z, z, z, z, **kwargs)


def test_evaluate_rejects_mismatched_shapes():
    z = np.random.default_rng(20).standard_normal((50, 2))
    with pytest.raises(ValueError):
        M.evaluate(z[:, :1], z[:, :1], z, z, rho=None)


def test_collapsed_embedding_meets_the_bound_within_mc_error():
    """A collapsed h (constant) has ε = √N and D = 0, so the bound is exactly N; the
    measured error is the sample mean of ‖z − z̄‖², N up to Monte-Carlo error. The verdict
    counts that error (procrustes_se), so sampling noise alone never breaks the bound."""
    rng = np.random.default_rng(13)
    fails = 0
    for _ in range(20):
        z, z1 = _ou_pairs(2000, 2, 0.9, rng)
        h = np.full_like(z, 0.3)
        out = M.evaluate(h, h, z, z1, EvalConfig(sigreg_slices=8), rho=0.9)
        assert out["bound"] == pytest.approx(2.0, abs=1e-9)
        assert out["procrustes_se"] == pytest.approx(2.0 / np.sqrt(2000), rel=0.25)
        fails += not out["bound_holds"]
    assert fails == 0


# ------------------------------------------------------------------ the held-out split
def test_heldout_split_keeps_both_views_of_a_pair_on_one_side():
    fit, test = heldout_split(5, 0.6)  # 3 fit pairs of the stacked rows [z_t; z_t1]
    assert fit.tolist() == [0, 1, 2, 5, 6, 7] and test.tolist() == [3, 4, 8, 9]
    fit, test = heldout_split(5, 0.6, views=1)
    assert fit.tolist() == [0, 1, 2] and test.tolist() == [3, 4]
    with pytest.raises(ValueError, match="views"):
        heldout_split(5, 0.6, views=3)


def test_n_fit_rounds_to_the_nearest_pair():
    assert n_fit(100, 0.29) == 29  # 0.29 · 100 = 28.999…: flooring would lose a pair
    assert (n_fit(4000, 0.5), n_fit(50000, 0.8), n_fit(303, 0.5)) == (2000, 40000, 152)
    # at 0.5 an odd grid of p² points rounds its half down, as flooring does
    assert all(n_fit(p * p, 0.5) == p * p // 2 for p in range(9, 201, 2))


def test_evaluate_fits_on_the_heldout_split():
    rng = np.random.default_rng(3)
    z_t, z_t1 = _ou_pairs(303, 2, 0.9, rng)  # an odd n: 152 fit pairs, 151 scored
    h_t, h_t1 = np.tanh(z_t), np.tanh(z_t1)
    out = M.evaluate(h_t, h_t1, z_t, z_t1, EvalConfig(sigreg_slices=8), rho=None)
    fit, test = heldout_split(303, 0.5)
    h, z = np.concatenate([h_t, h_t1]), np.concatenate([z_t, z_t1])
    assert out["r2_hz"] == M.r2_linear(h[fit], z[fit], h[test], z[test])[0]
