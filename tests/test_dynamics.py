"""Latent dynamics: one-step correlation, (non-)stationarity, drift, trajectories (design §3).

Tolerances are K_SE standard errors at the stated n. Correlation standard errors use the
delta method (influence function ab − r(a² + b²)/2 of the standardized pair); kurtosis
standard errors use exact moments of the law being tested. "A KS test does not reject"
means p > P_MIN; two-sample KS tests always compare *disjoint* trajectories.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st
from scipy import special, stats

from identlab.core.registry import DYNAMICS, LATENTS
from identlab.core.schema import ConfigError
from identlab.world.dynamics import Dynamics
from identlab.world.latents import LatentLaw

K_SE = 5.0
P_MIN = 1e-3
N = 40_000


def latent(kind: str, dim: int, **params) -> LatentLaw:
    cls = LATENTS.get(kind)
    return cls(cls.Params(**params), dim)


def dynamics(kind: str, law: LatentLaw, **params) -> Dynamics:
    cls = DYNAMICS.get(kind)
    return cls(cls.Params(**params), law, law.dim)


def corr_se(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Pearson correlation of two 1-D samples and its delta-method standard error."""
    a = (a - a.mean()) / a.std()
    b = (b - b.mean()) / b.std()
    r = float(np.mean(a * b))
    infl = a * b - r * (a**2 + b**2) / 2
    return r, float(infl.std() / math.sqrt(len(a)))


def kurtosis_se_from_moments(m: dict[int, float], n: int) -> float:
    """SE of the sample excess kurtosis of a symmetric law with standardized moments m."""
    m4, m6, m8 = m[4], m[6], m[8]
    return math.sqrt(m8 - 4 * m4 * m6 + 4 * m4**3 - m4**2) / math.sqrt(n)


LAPLACE_MOMENTS = {p: math.factorial(p) / 2 ** (p / 2) for p in (2, 4, 6, 8)}
GAUSS_MOMENTS = {2: 1.0, 4: 3.0, 6: 15.0, 8: 105.0}
UNIFORM_MOMENTS = {p: 3 ** (p / 2) / (p + 1) for p in (2, 4, 6, 8)}


def sum_moments(mx: dict[int, float], a: float, b: float,
                my: dict[int, float] | None = None) -> dict[int, float]:
    """Even moments of a·X + b·Y, X and Y independent and symmetric with even moments mx
    and my (my = mx by default)."""
    mx = {0: 1.0, **mx}
    my = mx if my is None else {0: 1.0, **my}
    return {p: sum(math.comb(p, j) * a**j * b ** (p - j) * mx[j] * my[p - j]
                   for j in range(0, p + 1, 2)) for p in (2, 4, 6, 8)}


# ---------------------------------------------------------------- one-step correlation
ONE_STEP = [  # (id, dynamics kind, latent kind, latent params)
    ("ou_gauss", "ou", "gaussian", {}),
    ("ou_gauss_aniso", "ou", "gaussian", {"variances": (0.5, 2.0, 1.0)}),
    ("laplace_ar", "laplace_ar", "laplace", {}),
    ("laplace_ar_gennorm1", "laplace_ar", "gennorm", {"alpha": 1.0}),
    ("naive_laplace", "naive_additive", "laplace", {}),
    ("naive_uniform", "naive_additive", "uniform", {}),
    ("naive_gauss", "naive_additive", "gaussian", {}),
]
RHOS = [0.9, (0.5, 0.8, 0.95)]


@pytest.mark.parametrize("rho", RHOS, ids=["scalar", "per_dim"])
@pytest.mark.parametrize("cid,dkind,lkind,lparams", ONE_STEP, ids=[c[0] for c in ONE_STEP])
def test_one_step_correlation_is_rho(cid, dkind, lkind, lparams, rho):
    """corr(z_t, z_{t+1}) = ρ_i per dimension (one transition apart), not ρ_i²."""
    dyn = dynamics(dkind, latent(lkind, 3, **lparams), rho=rho)
    z0, z1 = dyn.sample_pairs(N, np.random.default_rng(11))
    assert z0.shape == z1.shape == (N, 3)
    for i, r_true in enumerate(np.broadcast_to(rho, 3)):
        r, se = corr_se(z0[:, i], z1[:, i])
        assert abs(r - r_true) < K_SE * se, (i, r, r_true, se)
        assert abs(r - r_true**2) > K_SE * se


def test_one_step_means_and_variances_kept():
    """OU on an anisotropic Gaussian keeps each variance after one step (SE σ²·√(2/n))."""
    v = np.array([0.5, 2.0, 1.0])
    dyn = dynamics("ou", latent("gaussian", 3, variances=tuple(v)), rho=(0.5, 0.8, 0.95))
    _, z1 = dyn.sample_pairs(N, np.random.default_rng(12))
    assert np.all(np.abs(z1.var(0) - v) < K_SE * v * math.sqrt(2 / N))
    assert np.all(np.abs(z1.mean(0)) < K_SE * np.sqrt(v / N))


# ---------------------------------------------------------------- copula OU
def copula_correlation(law: LatentLaw, rho: float, kmax: int = 120) -> float:
    """corr(g(U), g(U')) for (U, U') standard bivariate normal with corr ρ, g = F⁻¹∘Φ.

    Mehler: Σ_k ρ^k a_k², a_k = E[g(U) h_k(U)] with h_k the orthonormal Hermite
    polynomials, integrated by the trapezoid rule on [−12, 12]. Var g(U) = 1.
    """
    u = np.linspace(-12.0, 12.0, 48_001)
    w = np.exp(-u**2 / 2) / math.sqrt(2 * math.pi) * (u[1] - u[0])
    w[[0, -1]] *= 0.5
    # F⁻¹(Φ(u)) is odd; evaluate it in the lower tail, where Φ is accurate
    g = -np.sign(u) * law.ppf(special.ndtr(-np.abs(u))[:, None])[:, 0]
    h_prev, h = np.ones_like(u), u.copy()
    total = 0.0
    for k in range(1, kmax):
        total += rho**k * np.sum(w * g * h) ** 2
        h_prev, h = h, (u * h - math.sqrt(k) * h_prev) / math.sqrt(k + 1)
    return total / np.sum(w * g * g)


def test_copula_correlation_quadrature_is_exact_where_known():
    """The numerical expectation reproduces two closed forms: ρ for a Gaussian marginal,
    (6/π)·arcsin(ρ/2) for a uniform marginal (Spearman's ρ of the Gaussian copula)."""
    for rho in (0.5, 0.9):
        assert copula_correlation(latent("gaussian", 1), rho) == pytest.approx(rho, abs=1e-8)
        assert copula_correlation(latent("uniform", 1), rho) == pytest.approx(
            6 / math.pi * math.asin(rho / 2), abs=1e-8)


COPULA = [("laplace", {}), ("uniform", {}), ("student_t", {"nu": 5.0}),
          ("student_t", {"nu": 10.0}), ("mixture", {}), ("gaussian", {})]
COPULA_IDS = ["laplace", "uniform", "t5", "t10", "mixture", "gaussian"]


@pytest.mark.parametrize("lkind,lparams", COPULA, ids=COPULA_IDS)
def test_copula_gaussian_variable_has_corr_rho(lkind, lparams):
    """The copula variable u = Φ⁻¹(F(z)) is an exact Gaussian OU pair: corr ρ per dim."""
    law = latent(lkind, 2, **lparams)
    rho = (0.6, 0.9)
    z0, z1 = dynamics("copula_ou", law, rho=rho).sample_pairs(N, np.random.default_rng(21))
    u0, u1 = special.ndtri(law.cdf(z0)), special.ndtri(law.cdf(z1))
    for i in range(2):
        r, se = corr_se(u0[:, i], u1[:, i])
        assert abs(r - rho[i]) < K_SE * se
        assert stats.kstest(u1[:, i], "norm").pvalue > P_MIN


@pytest.mark.parametrize("lkind,lparams", COPULA, ids=COPULA_IDS)
def test_copula_z_correlation(lkind, lparams):
    """z's one-step Pearson correlation equals the Mehler-series expectation (≤ ρ, with
    equality only for the Gaussian marginal) within K_SE standard errors."""
    law = latent(lkind, 2, **lparams)
    rho = (0.6, 0.9)
    z0, z1 = dynamics("copula_ou", law, rho=rho).sample_pairs(2 * N, np.random.default_rng(22))
    for i in range(2):
        expected = copula_correlation(law, rho[i])
        assert expected <= rho[i] + 1e-9
        r, se = corr_se(z0[:, i], z1[:, i])
        assert abs(r - expected) < K_SE * se, (i, r, expected, se)


# ---------------------------------------------------------------- stationarity
STATIONARY = [  # (id, dynamics kind, latent kind, latent params, check kurtosis)
    ("ou_gauss", "ou", "gaussian", {}, True),
    ("ou_gauss_aniso", "ou", "gaussian", {"variances": (0.5, 2.0)}, True),
    ("laplace_ar", "laplace_ar", "laplace", {}, True),
    ("copula_laplace", "copula_ou", "laplace", {}, True),
    ("copula_uniform", "copula_ou", "uniform", {}, True),
    ("copula_t5", "copula_ou", "student_t", {"nu": 5.0}, False),  # kurtosis SE infinite
    ("copula_t10", "copula_ou", "student_t", {"nu": 10.0}, True),
]
STEPS = 10


def law_moments(law: LatentLaw) -> dict[int, float]:
    """Exact standardized even moments (for the kurtosis SE) of the laws used here."""
    if law.kind == "gaussian":
        return GAUSS_MOMENTS
    if law.kind in ("laplace", "gennorm") and law.alpha == 1.0:
        return LAPLACE_MOMENTS
    if law.kind == "uniform":
        return UNIFORM_MOMENTS
    if law.kind == "student_t":
        nu = law.nu
        return {p: nu ** (p // 2) * math.gamma(p // 2 + 0.5) * math.gamma(nu / 2 - p // 2)
                / (math.sqrt(math.pi) * math.gamma(nu / 2)) * ((nu - 2) / nu) ** (p // 2)
                for p in (2, 4, 6, 8)}
    raise KeyError(law.kind)


@pytest.mark.parametrize("sid,dkind,lkind,lparams,kurt", STATIONARY,
                         ids=[s[0] for s in STATIONARY])
def test_stationary_marginal(sid, dkind, lkind, lparams, kurt):
    """Flagged stationary, and z_{t+k} (k = 10) has z_t's law: two-sample KS on disjoint
    trajectories and a KS test against the law's cdf do not reject, and z_{t+k}'s mean,
    variance and kurtosis are the law's within K_SE standard errors."""
    law = latent(lkind, 2, **lparams)
    dyn = dynamics(dkind, law, rho=0.9)
    assert dyn.stationary()
    traj = dyn.trajectory(STEPS + 1, 2 * N, np.random.default_rng(31))
    z0, zk = traj[0, :N], traj[STEPS, N:]
    for i in range(2):
        assert stats.ks_2samp(z0[:, i], zk[:, i]).pvalue > P_MIN
        assert stats.kstest(zk[:, i] / law.std[i], lambda x: law.cdf(x[:, None])[:, 0]
                            if law.kind != "gaussian" else stats.norm.cdf(x)).pvalue > P_MIN
    m = law_moments(law)
    v = law.std**2
    assert np.all(np.abs(zk.var(0) - v) < K_SE * v * math.sqrt((m[4] - 1) / N))
    assert np.all(np.abs(zk.mean(0)) < K_SE * np.sqrt(v / N))
    if kurt:
        se = kurtosis_se_from_moments(m, N)
        assert np.all(np.abs(stats.kurtosis(zk, axis=0) - law.excess_kurtosis()) < K_SE * se)


def test_ou_on_non_gaussian_law_is_not_stationary():
    """Control: Gaussian OU noise on Laplace latents is flagged non-stationary, and the
    tests above detect it: κ_k = ρ^{4k}·κ (fourth cumulants), and KS rejects."""
    law = latent("laplace", 1)
    dyn = dynamics("ou", law, rho=0.9)
    assert not dyn.stationary() and dyn.additive() and dyn.reasons()
    traj = dyn.trajectory(STEPS + 1, 2 * N, np.random.default_rng(32))
    z0, zk = traj[0, :N, 0], traj[STEPS, N:, 0]
    assert stats.ks_2samp(z0, zk).pvalue < P_MIN
    a = 0.9**STEPS  # z_k = a·z_0 + √(1−a²)·Gaussian
    m = sum_moments(LAPLACE_MOMENTS, a, math.sqrt(1 - a**2), GAUSS_MOMENTS)
    assert m[4] - 3 == pytest.approx(a**4 * 3.0)
    se = kurtosis_se_from_moments(m, N)
    assert abs(stats.kurtosis(zk) - a**4 * 3.0) < K_SE * se
    assert abs(stats.kurtosis(zk) - 3.0) > K_SE * se


# ---------------------------------------------------------------- naive additive
def test_naive_additive_kurtosis_formula_symbolic():
    """For z' = ρz + √(1−ρ²)η with z, η iid, mean 0, variance 1, excess kurtosis κ:
    κ' = (ρ⁴ + (1−ρ²)²)·κ. At ρ = 0.9 and κ = 3 (Laplace): 2.0766 (not 2.15)."""
    rho, kappa = sp.symbols("rho kappa", positive=True)
    c = sp.sqrt(1 - rho**2)
    m4 = 3 + kappa  # E z⁴ = E η⁴
    fourth = rho**4 * m4 + 6 * rho**2 * c**2 + c**4 * m4  # odd terms vanish
    variance = rho**2 + c**2
    excess = sp.simplify(fourth / variance**2 - 3)
    assert sp.simplify(excess - (rho**4 + (1 - rho**2) ** 2) * kappa) == 0
    value = float(excess.subs({rho: sp.Rational(9, 10), kappa: 3}))
    assert value == pytest.approx(2.0766, abs=1e-4)


@pytest.mark.parametrize("lkind,moments,kappa", [("laplace", LAPLACE_MOMENTS, 3.0),
                                                 ("uniform", UNIFORM_MOMENTS, -1.2)],
                         ids=["laplace", "uniform"])
def test_naive_additive_kurtosis_after_one_step(lkind, moments, kappa):
    """naive_additive at ρ = 0.9: z_t has the law's kurtosis κ, z_{t+1} has
    (ρ⁴ + (1−ρ²)²)·κ (SE from the exact moments of z_{t+1}); flagged non-stationary."""
    rho, n = 0.9, 200_000
    dyn = dynamics("naive_additive", latent(lkind, 1), rho=rho)
    assert not dyn.stationary() and dyn.additive() and dyn.reasons()
    z0, z1 = dyn.sample_pairs(n, np.random.default_rng(41))
    expected = (rho**4 + (1 - rho**2) ** 2) * kappa
    m1 = sum_moments(moments, rho, math.sqrt(1 - rho**2))
    assert m1[2] == pytest.approx(1.0) and m1[4] - 3 == pytest.approx(expected)
    se1 = kurtosis_se_from_moments(m1, n)
    se0 = kurtosis_se_from_moments(moments, n)
    assert abs(stats.kurtosis(z1[:, 0]) - expected) < K_SE * se1
    assert abs(stats.kurtosis(z0[:, 0]) - kappa) < K_SE * se0
    assert abs(stats.kurtosis(z1[:, 0]) - kappa) > K_SE * se1  # the drift is detectable


@given(rho=st.floats(0.05, 0.95), seed=st.integers(0, 2**32 - 1))
def test_naive_additive_gaussian_is_stationary(rho, seed):
    """With Gaussian latents the naive channel is OU: flagged stationary, variance kept."""
    dyn = dynamics("naive_additive", latent("gaussian", 2), rho=rho)
    assert dyn.stationary() and dyn.additive() and not dyn.reasons()
    n = 5000
    _, z1 = dyn.sample_pairs(n, np.random.default_rng(seed))
    assert np.all(np.abs(z1.var(0) - 1) < K_SE * math.sqrt(2 / n))


# ---------------------------------------------------------------- drift
T = 20


def drift(target: str, strength: float = 1.0, schedule: str = "linear", law=None,
          rho: float = 0.9) -> Dynamics:
    law = latent("gaussian", 2) if law is None else law
    return dynamics("drift", law, rho=rho, target=target, schedule=schedule,
                    strength=strength, length=T)


@pytest.mark.parametrize("schedule", ["linear", "sine", "step"])
def test_drift_scale_moves_variance(schedule):
    """target=scale: Var z_t = exp(2·strength·s(t/(T−1))) along a trajectory."""
    s = {"linear": lambda x: x, "sine": lambda x: math.sin(2 * math.pi * x),
         "step": lambda x: float(x >= 0.5)}[schedule]
    dyn = drift("scale", strength=0.5, schedule=schedule)
    assert not dyn.stationary() and dyn.reasons()
    traj = dyn.trajectory(T, N, np.random.default_rng(51))
    assert traj.shape == (T, N, 2)
    for t in range(T):
        v = math.exp(2 * 0.5 * s(t / (T - 1)))
        assert np.all(np.abs(traj[t].var(0) - v) < K_SE * v * math.sqrt(2 / N)), t
        assert np.all(np.abs(traj[t].mean(0)) < K_SE * math.sqrt(v / N)), t


def test_drift_mean_moves_mean():
    """target=mean: E z_t = strength·t/(T−1) (linear), variance stays 1."""
    dyn = drift("mean", strength=2.0)
    traj = dyn.trajectory(T, N, np.random.default_rng(52))
    for t in range(T):
        assert np.all(np.abs(traj[t].mean(0) - 2.0 * t / (T - 1)) < K_SE / math.sqrt(N)), t
        assert np.all(np.abs(traj[t].var(0) - 1) < K_SE * math.sqrt(2 / N)), t


def test_drift_rho_keeps_marginal_changes_correlation():
    """target=rho: the marginal stays N(0, 1) at every t, but the one-step correlation
    follows ρ_t = ρ^{exp(strength·t/(T−1))} (between ρ_t and ρ_{t+1}) and so moves."""
    rho = 0.9
    dyn = drift("rho", strength=1.0, rho=rho)
    traj = dyn.trajectory(T, N, np.random.default_rng(53))
    rho_t = [rho ** math.exp(t / (T - 1)) for t in range(T)]
    rs = []
    for t in (0, T // 2, T - 2):
        assert stats.kstest(traj[t + 1, :, 0], "norm").pvalue > P_MIN
        r, se = corr_se(traj[t, :, 0], traj[t + 1, :, 0])
        lo, hi = min(rho_t[t], rho_t[t + 1]), max(rho_t[t], rho_t[t + 1])
        assert lo - K_SE * se < r < hi + K_SE * se, (t, r, lo, hi)
        rs.append((r, se))
    (r0, se0), (r1, se1) = rs[0], rs[-1]
    assert r0 - r1 > K_SE * math.hypot(se0, se1)


def test_drift_pooled_pairs_are_a_scale_mixture():
    """sample_pairs draws t uniformly in {0..T−2}: for target=scale the pooled marginal is
    a Gaussian scale mixture with excess kurtosis 3·E[σ⁴]/E[σ²]² − 3 > 0."""
    strength, n = 1.0, 100_000
    dyn = drift("scale", strength=strength)
    z0, _ = dyn.sample_pairs(n, np.random.default_rng(54))
    sig2 = np.exp(2 * strength * np.arange(T - 1) / (T - 1))
    m = {p: GAUSS_MOMENTS[p] * np.mean(sig2 ** (p / 2)) / np.mean(sig2) ** (p / 2)
         for p in (2, 4, 6, 8)}
    expected = m[4] - 3
    assert expected > 0.3
    se = kurtosis_se_from_moments(m, n)
    assert np.all(np.abs(stats.kurtosis(z0, axis=0) - expected) < K_SE * se)


@pytest.mark.parametrize("target", ["mean", "scale", "rho"])
def test_drift_strength_zero_is_ou(target):
    """strength = 0 is flagged stationary (Gaussian latents) and behaves like OU: corr ρ,
    marginal N(0, diag σ²) at the start and at the end of a trajectory."""
    v = np.array([0.5, 2.0])
    dyn = drift(target, strength=0.0, law=latent("gaussian", 2, variances=tuple(v)))
    assert dyn.stationary() and dyn.additive() and not dyn.reasons()
    z0, z1 = dyn.sample_pairs(N, np.random.default_rng(55))
    traj = dyn.trajectory(T, N, np.random.default_rng(56))
    for i in range(2):
        r, se = corr_se(z0[:, i], z1[:, i])
        assert abs(r - 0.9) < K_SE * se
        for z in (z0[:, i], z1[:, i], traj[-1, :, i]):
            assert stats.kstest(z / math.sqrt(v[i]), "norm").pvalue > P_MIN


def test_drift_non_gaussian_latent_not_stationary():
    """Drift on a non-Gaussian law is flagged non-stationary even at strength 0."""
    dyn = drift("mean", strength=0.0, law=latent("laplace", 2))
    assert not dyn.stationary() and dyn.reasons()


def test_drift_trajectory_longer_than_schedule_raises():
    """A trajectory longer than the drift length T is refused with a ConfigError."""
    with pytest.raises(ConfigError, match="length"):
        drift("mean").trajectory(T + 1, 10, np.random.default_rng(0))


# ---------------------------------------------------------------- trajectories
TRAJ = [("ou", "gaussian", {}, {}), ("laplace_ar", "laplace", {}, {}),
        ("copula_ou", "uniform", {}, {}), ("naive_additive", "laplace", {}, {}),
        ("drift", "gaussian", {}, {"strength": 0.0, "length": 50})]


@pytest.mark.parametrize("dkind,lkind,lparams,dparams", TRAJ, ids=[t[0] for t in TRAJ])
def test_trajectory_matches_sample_pairs(dkind, lkind, lparams, dparams):
    """trajectory(L, n) is (L, n, dim); its first step has sample_pairs' law: same
    one-step correlation (ρ, or the copula expectation) within K_SE combined SE, and KS
    tests of z_0 and z_1 against sample_pairs' do not reject."""
    law = latent(lkind, 2, **lparams)
    dyn = dynamics(dkind, law, rho=0.8, **dparams)
    expected = copula_correlation(law, 0.8) if dkind == "copula_ou" else 0.8
    traj = dyn.trajectory(4, N, np.random.default_rng(61))
    assert traj.shape == (4, N, 2)
    z0, z1 = dyn.sample_pairs(N, np.random.default_rng(62))
    for i in range(2):
        r_t, se_t = corr_se(traj[0, :, i], traj[1, :, i])
        r_p, se_p = corr_se(z0[:, i], z1[:, i])
        assert abs(r_t - r_p) < K_SE * math.hypot(se_t, se_p)
        assert abs(r_t - expected) < K_SE * se_t
        assert stats.ks_2samp(traj[1, :, i], z1[:, i]).pvalue > P_MIN
        assert stats.ks_2samp(traj[0, :, i], z0[:, i]).pvalue > P_MIN


@pytest.mark.parametrize("dkind,lkind,lparams,dparams", TRAJ, ids=[t[0] for t in TRAJ])
def test_sampling_is_seeded(dkind, lkind, lparams, dparams):
    """Same generator seed -> identical pairs and trajectories; global RNG untouched."""
    dyn = dynamics(dkind, latent(lkind, 2, **lparams), rho=0.8, **dparams)
    state = np.random.get_state()[1].copy()
    a = dyn.sample_pairs(50, np.random.default_rng(3))
    b = dyn.sample_pairs(50, np.random.default_rng(3))
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(dyn.trajectory(3, 20, np.random.default_rng(4)),
                                  dyn.trajectory(3, 20, np.random.default_rng(4)))
    assert not np.array_equal(a[1], dyn.sample_pairs(50, np.random.default_rng(5))[1])
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_naive_additive_anchored_views():
    """views = anchored: both views are one-step perturbations of a common anchor, so
    they share the one-step law (kurtosis (ρ⁴ + (1−ρ²)²)·κ, not κ) and correlate at ρ²;
    the bound's ρ is ρ²."""
    rho, n = 0.9, 200_000
    dyn = dynamics("naive_additive", latent("laplace", 1), rho=rho, views="anchored")
    v1, v2 = dyn.sample_pairs(n, np.random.default_rng(43))
    expected = (rho**4 + (1 - rho**2) ** 2) * 3.0
    se = kurtosis_se_from_moments(sum_moments(LAPLACE_MOMENTS, rho, math.sqrt(1 - rho**2)), n)
    for v in (v1, v2):
        assert abs(stats.kurtosis(v[:, 0]) - expected) < K_SE * se
    r = np.corrcoef(v1[:, 0], v2[:, 0])[0, 1]
    assert abs(r - rho**2) < 5 * (1 - rho**4) / math.sqrt(n)
    assert dyn.scalar_rho == pytest.approx(rho**2)
    assert dynamics("naive_additive", latent("laplace", 1), rho=rho).scalar_rho == rho
    # transition pairs correlate at ρ, and the default is unchanged
    z0, z1 = dynamics("naive_additive", latent("laplace", 1), rho=rho).sample_pairs(
        n, np.random.default_rng(43))
    assert abs(np.corrcoef(z0[:, 0], z1[:, 0])[0, 1] - rho) < 5 * (1 - rho**2) / math.sqrt(n)
