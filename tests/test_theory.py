"""Tests for identlab.theory: the spectral facts behind the theorem, plus negative controls.

Each fact must hold at its stated setting *and* the same check must reject a wrong claim
(wrong OU eigenvalue, wrong noise covariance, wrong innovation law, ...), so a check that
always says "holds" would fail here.
"""

import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from numpy.polynomial import hermite_e

from identlab.measure import theory as T
from identlab.sigreg import gaussian_expectation, sigreg_direct

MAX_DEGREE = 8


# ---------------------------------------------------------------------------------------
# Exact Gaussian calculus
# ---------------------------------------------------------------------------------------

def test_gaussian_moments_are_double_factorials():
    assert [T.gaussian_moment(m) for m in range(9)] == [1, 0, 1, 0, 3, 0, 15, 0, 105]
    z = T.Z
    assert T.gaussian_expect((z**2 - 1) ** 2, z) == 2
    a = sp.Symbol("a")
    assert T.gaussian_expect((a * z + T.ETA) ** 2, z, T.ETA) == sp.expand(a**2 + 1)


@pytest.mark.parametrize("k", range(MAX_DEGREE + 1))
def test_hermite_poly_matches_numpy_and_sympy(k):
    ours = sp.Poly(T.hermite_poly(k), T.Z).all_coeffs()[::-1]
    basis = np.zeros(k + 1)
    basis[k] = 1.0
    np.testing.assert_allclose(np.array(ours, dtype=float), hermite_e.herme2poly(basis))
    assert sp.expand(T.hermite_poly(k) - sp.hermite_prob(k, T.Z)) == 0


# ---------------------------------------------------------------------------------------
# 1–3. Hermite spectrum of the OU operator
# ---------------------------------------------------------------------------------------

def test_hermite_orthogonality_holds():
    fact = T.hermite_orthogonality(MAX_DEGREE)
    assert fact.holds
    assert fact.evidence["gram"] == sp.diag(*[sp.factorial(k) for k in range(MAX_DEGREE + 1)])


def test_monomials_and_physicists_hermite_are_not_orthonormal_like_he():
    assert not T.hermite_orthogonality(4, basis=lambda k: T.Z**k).holds
    assert not T.hermite_orthogonality(4, basis=lambda k: sp.hermite(k, T.Z)).holds


def test_mehler_eigenrelation_holds():
    fact = T.mehler_eigenrelation(MAX_DEGREE)
    assert fact.holds
    assert all(r == 0 for r in fact.evidence["residuals"].values())


def test_mehler_rejects_wrong_eigenvalue():
    fact = T.mehler_eigenrelation(MAX_DEGREE, eigenvalue=lambda k: T.RHO ** (k + 1))
    assert not fact.holds
    assert fact.evidence["failing_degrees"] == list(range(MAX_DEGREE + 1))
    # ρ^{2k} is the eigenvalue of *two* OU steps, not one.
    assert not T.mehler_eigenrelation(3, eigenvalue=lambda k: T.RHO ** (2 * k)).holds


def test_ou_conditional_expectation_is_not_the_identity():
    # T_ρ z² = ρ² z² + (1 − ρ²): the constant is what keeps E[z'²] = 1 (stationarity).
    got = T.ou_conditional_expectation(T.Z**2)
    assert sp.expand(got - (T.RHO**2 * T.Z**2 + 1 - T.RHO**2)) == 0


@pytest.mark.parametrize("k", range(1, MAX_DEGREE + 1))
def test_alignment_cost_is_2_one_minus_rho_k(k):
    fact = T.alignment_cost(k)
    assert fact.holds
    assert fact.evidence["residual"] == 0


@pytest.mark.parametrize("k", [1, 2, 5])
def test_alignment_cost_rejects_wrong_claim(k):
    assert not T.alignment_cost(k, claimed=2 * (1 - T.RHO ** (k + 1))).holds
    assert not T.alignment_cost(k, claimed=1 - T.RHO**k).holds


def test_spectral_gap():
    fact = T.spectral_gap()
    assert fact.holds
    assert fact.evidence["critical_points"] == [sp.Rational(1, 2)]
    assert fact.evidence["peak_value"] == sp.Rational(1, 2)
    gap = sp.lambdify(T.RHO, fact.evidence["gap"])
    grid = np.linspace(0.01, 0.99, 99)
    assert np.argmax(gap(grid)) == 49  # ρ = 0.5 on the grid


# ---------------------------------------------------------------------------------------
# 4. Stationarity of linear-Gaussian dynamics
# ---------------------------------------------------------------------------------------

def _contraction(seed, dim=3, norm=0.9):
    a = np.random.default_rng(seed).standard_normal((dim, dim))
    return a * norm / np.linalg.norm(a, 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matched_noise_is_stationary(seed):
    a = _contraction(seed)
    fact = T.linear_gaussian_stationarity(a, np.eye(3) - a @ a.T)
    assert fact.holds
    assert fact.evidence["Q_psd"] and fact.evidence["iff_consistent"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mismatched_noise_is_not_stationary(seed):
    a = _contraction(seed)  # non-normal: AᵀA ≠ AAᵀ
    wrong = [np.eye(3) - a.T @ a, 0.5 * (np.eye(3) - a @ a.T), np.eye(3)]
    for q in wrong:
        fact = T.linear_gaussian_stationarity(a, q)
        assert not fact.holds
        assert fact.evidence["iff_consistent"]


def test_unstable_dynamics_has_no_stationary_law():
    fact = T.linear_gaussian_stationarity(np.diag([1.0, 0.5]), np.diag([0.0, 0.75]))
    assert not fact.holds and fact.evidence["sigma"] is None


def test_ou_special_case_and_wrong_noise():
    assert T.ou_stationarity([0.99, 0.9, 0.3]).holds
    assert T.ou_stationarity(0.5).holds
    bad = T.ou_wrong_noise([0.9, 0.3])
    assert bad.holds  # the mis-scaled world is (correctly) found non-stationary
    np.testing.assert_allclose(bad.evidence["stationary_variances"], 1 / (1 + np.array([.9, .3])))


# ---------------------------------------------------------------------------------------
# 5. Laplace AR innovation
# ---------------------------------------------------------------------------------------

def test_laplace_ar_innovation_identity():
    fact = T.laplace_ar_innovation()
    assert fact.holds
    assert sp.simplify(fact.evidence["innovation_variance"] - (1 - T.RHO**2)) == 0


@pytest.mark.parametrize("cf", [
    lambda u: sp.exp(-u**2 / 2),                           # Gaussian: innovation is Gaussian
    lambda u: sp.sin(sp.sqrt(3) * u) / (sp.sqrt(3) * u),   # uniform: no such mixture
    lambda u: 1 / (1 + u**2 / 2) ** 2,                     # sum of two Laplaces (rescaled)
])
def test_innovation_identity_fails_for_other_laws(cf):
    fact = T.laplace_ar_innovation(cf)
    assert not fact.holds
    assert fact.evidence["max_abs_numeric_residual"] > 1e-3


# ---------------------------------------------------------------------------------------
# 6. Cramér
# ---------------------------------------------------------------------------------------

def test_sigreg_null_quantile_matches_finite_sample_gaussians():
    gen = torch.Generator().manual_seed(11)
    h = torch.randn(400, 4000, 1, generator=gen, dtype=torch.float64)
    stats = sigreg_direct(h, torch.ones(400, 1, 1, dtype=torch.float64)).numpy()
    assert abs(stats.mean() - gaussian_expectation()) < 0.15
    q90 = T.sigreg_null_quantile(0.9)
    assert abs(np.mean(stats > q90) - 0.1) < 0.05
    assert T.sigreg_null_quantile(0.5) < gaussian_expectation() < T.sigreg_null_quantile(0.99)


_angles = st.floats(0.15, math.pi / 2 - 0.15)
_seeds = st.integers(0, 2**31 - 1)


@given(law=st.sampled_from(["laplace", "uniform"]), theta=_angles, seed=_seeds)
def test_cramer_non_gaussian_mix_is_rejected(law, theta, seed):
    fact = T.cramer_demo(law, seed=seed, weights=(math.cos(theta), math.sin(theta)))
    assert fact.holds
    ev = fact.evidence
    assert ev["sigreg_rejects"] and ev["normaltest_rejects"]
    assert ev["sigreg_stat"] > 10 * ev["sigreg_gaussian_expectation"]


@given(theta=_angles, seed=_seeds)
def test_cramer_gaussian_mix_passes(theta, seed):
    fact = T.cramer_demo("gaussian", seed=seed, weights=(math.cos(theta), math.sin(theta)))
    assert fact.holds
    assert not fact.evidence["sigreg_rejects"] and not fact.evidence["normaltest_rejects"]


def test_cramer_kurtosis_follows_cumulant_additivity():
    fact = T.cramer_demo("laplace", n=200_000, seed=3, weights=(1.0, 1.0, 1.0))
    assert fact.evidence["excess_kurtosis_theory"] == pytest.approx(1.0)
    assert fact.evidence["excess_kurtosis_sample"] == pytest.approx(1.0, abs=0.15)


def test_cramer_rejects_trivial_mix_and_unknown_law():
    with pytest.raises(ValueError):
        T.cramer_demo("laplace", weights=(1.0, 0.0))
    with pytest.raises(ValueError):
        T.cramer_demo("cauchy")


# ---------------------------------------------------------------------------------------
# 7. Thm 3 bound
# ---------------------------------------------------------------------------------------

def test_approx_bound_values():
    assert T.approx_bound(0.1, 0.05) == pytest.approx(0.05 + 0.15**2)
    np.testing.assert_allclose(T.approx_bound_small(np.array([0.1, 0.2]), 0.05), [0.05, 0.05])


@given(eps=st.floats(0.0, 2.0), D=st.floats(1e-3, 2.0))
def test_first_order_bound_is_relatively_exact_as_eps_plus_D_vanishes(eps, D):
    fact = T.approx_bound_comparison(eps, D)
    assert fact.holds
    rel = [r["relative_gap"] for r in fact.evidence["rows"]]
    assert all(b <= a for a, b in zip(rel, rel[1:]))


def test_first_order_bound_fails_without_D():
    fact = T.approx_bound_comparison(0.1, 0.0)
    assert not fact.holds  # bound ε², first-order form 0: relative gap stays 1
    assert fact.evidence["relative_gap_limit"] == 1
    assert fact.evidence["gap_over_s_limit"] == 0  # still second order in absolute terms
    with pytest.raises(ValueError):
        T.approx_bound_comparison(-0.1, 0.1)


# ---------------------------------------------------------------------------------------
# 8. Monte-Carlo Hermite alignment
# ---------------------------------------------------------------------------------------

@given(rho=st.floats(0.05, 0.95),
       weights=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=5),
       seed=_seeds)
def test_hermite_alignment_mc_matches_analytic(rho, weights, seed):
    assume(sum(weights) > 1e-3)
    w = np.asarray(weights) / sum(weights)  # unit-variance h
    mc = T.hermite_alignment_mc(w, rho, 400_000, seed)
    exact = T.hermite_alignment_analytic(w, rho)
    assert abs(mc.mean - exact) <= 5 * mc.se


def test_hermite_alignment_mc_rejects_wrong_spectrum():
    # Degree 1 at ρ = 0.5: true cost 1.0; the claim 2(1 − ρ²) = 1.5 must be far off.
    mc = T.hermite_alignment_mc([1.0], 0.5, 100_000, seed=0)
    assert abs(mc.mean - 1.0) <= 5 * mc.se
    assert abs(mc.mean - 1.5) > 20 * mc.se
    # Ignoring orthogonality (treating h as its top degree only) is also rejected.
    mc = T.hermite_alignment_mc([0.5, 0.0, 0.5], 0.5, 400_000, seed=1)
    assert abs(mc.mean - T.hermite_alignment_analytic([0.0, 0.0, 1.0], 0.5)) > 5 * mc.se


def test_hermite_alignment_fact_and_input_checks():
    assert T.hermite_alignment((0.2, 0.3, 0.5), 0.8, seed=4).holds
    with pytest.raises(ValueError):
        T.hermite_alignment_mc([-0.1, 1.1], 0.5, 10, seed=0)


# ---------------------------------------------------------------------------------------
# 9. Timescales: whitening prefers He₂ of the slow dimension
# ---------------------------------------------------------------------------------------

def test_whitening_prefers_he2_examples():
    yes = T.whitening_prefers_he2(0.95, 0.8)
    assert yes.holds
    assert yes.evidence["cost_he2"] == pytest.approx(2 * (1 - 0.95**2))
    assert yes.evidence["cost_z2"] == pytest.approx(2 * (1 - 0.8))
    assert yes.evidence["he2_variance"] == 1 and yes.evidence["he2_corr_with_z1"] == 0
    assert yes.evidence["he2_excess_kurtosis"] == 12
    assert not T.whitening_prefers_he2(0.8, 0.7).holds
    assert T.timescale_boundary(0.81) == pytest.approx(0.9)


@given(rho1=st.floats(0.05, 0.99), rho2=st.floats(0.05, 0.99))
def test_whitening_flip_is_at_rho1_squared_equals_rho2(rho1, rho2):
    assume(abs(rho1**2 - rho2) > 1e-9)
    fact = T.whitening_prefers_he2(rho1, rho2)
    assert fact.holds == (rho1**2 > rho2)
    assert fact.holds == (rho1 > T.timescale_boundary(rho2))


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

def test_all_facts_hold_and_print():
    facts = T.all_facts()
    assert len(facts) >= 15
    bad = [f.summary() for f in facts if not f.holds]
    assert not bad, bad
    assert all(f.summary().startswith("[holds]") for f in facts)
    with pytest.raises(TypeError):
        facts[0].evidence["gram"] = None  # evidence is read-only
