"""Latent laws p(z): standardized moments, known kurtosis, cdf/ppf, bimodality (design §3).

Sampling tolerances are K_SE standard errors of the estimator at the stated sample size,
with the standard error computed from the law's *exact* moments (closed forms below,
written independently of ``identlab.latents``), not from the sample itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special, stats

from identlab.core.registry import LATENTS
from identlab.world.latents import Gennorm, LatentLaw

K_SE = 5.0       # tolerance in standard errors
N = 50_000       # samples per dimension
DIM = 2
P_MIN = 1e-3     # a goodness-of-fit test "rejects" below this p-value

# (id, kind, params, dim)
LAWS = [
    ("gaussian", "gaussian", {}, DIM),
    ("gaussian_aniso", "gaussian", {"variances": (0.25, 1.0, 4.0)}, 3),
    ("gennorm_0.5", "gennorm", {"alpha": 0.5}, DIM),
    ("gennorm_1", "gennorm", {"alpha": 1.0}, DIM),
    ("gennorm_2", "gennorm", {"alpha": 2.0}, DIM),
    ("gennorm_4", "gennorm", {"alpha": 4.0}, DIM),
    ("laplace", "laplace", {}, DIM),
    ("student_t_5", "student_t", {"nu": 5.0}, DIM),
    ("student_t_10", "student_t", {"nu": 10.0}, DIM),
    ("uniform", "uniform", {}, DIM),
    ("mixture", "mixture", {}, DIM),
    ("mixture_0.5", "mixture", {"separation": 0.5}, DIM),
]
LAW_IDS = [law[0] for law in LAWS]


def make(kind: str, params: dict, dim: int) -> LatentLaw:
    cls = LATENTS.get(kind)
    return cls(cls.Params(**params), dim)


def variances(law: LatentLaw) -> np.ndarray:
    v = getattr(law.params, "variances", None)
    return np.ones(law.dim) if v is None else np.asarray(v, float)


# ---------------------------------------------------------------- exact reference
def double_factorial(k: int) -> int:
    return 1 if k <= 0 else k * double_factorial(k - 2)


def std_moment(kind: str, params: dict, p: int) -> float:
    """E[z^p] for the *standardized* (unit-variance) component, p even; inf if infinite."""
    if kind == "gaussian" or (kind == "gennorm" and params.get("alpha") == 2.0):
        return float(double_factorial(p - 1))
    if kind == "gennorm":
        a = params["alpha"]
        # |z/s|^a ~ Gamma(1/a): E|z|^p = s^p Γ((p+1)/a)/Γ(1/a), s² = Γ(1/a)/Γ(3/a)
        log_s2 = special.gammaln(1 / a) - special.gammaln(3 / a)
        return float(np.exp(p / 2 * log_s2 + special.gammaln((p + 1) / a)
                            - special.gammaln(1 / a)))
    if kind == "laplace":
        return math.factorial(p) * (1 / math.sqrt(2)) ** p
    if kind == "student_t":
        nu, k = params["nu"], p // 2
        if p >= nu:
            return math.inf
        raw = nu**k * math.gamma(k + 0.5) * math.gamma(nu / 2 - k) / (
            math.sqrt(math.pi) * math.gamma(nu / 2))
        return raw * ((nu - 2) / nu) ** k
    if kind == "uniform":
        return 3 ** (p / 2) / (p + 1)
    if kind == "mixture":
        mu = params.get("separation", 0.9)
        sig = math.sqrt(1 - mu**2)
        return sum(math.comb(p, j) * mu ** (p - j) * sig**j * double_factorial(j - 1)
                   for j in range(0, p + 1, 2))
    raise KeyError(kind)


def reference_cdf(kind: str, params: dict, z: np.ndarray, std: float = 1.0) -> np.ndarray:
    """An independent CDF of one component (scipy, or the closed form for the mixture)."""
    if kind == "gaussian":
        return stats.norm.cdf(z, scale=std)
    if kind in ("gennorm", "laplace"):
        a = params.get("alpha", 1.0)
        return stats.gennorm.cdf(z, a, scale=math.sqrt(math.gamma(1 / a) / math.gamma(3 / a)))
    if kind == "student_t":
        nu = params["nu"]
        return stats.t.cdf(z, nu, scale=math.sqrt((nu - 2) / nu))
    if kind == "uniform":
        return stats.uniform.cdf(z, loc=-math.sqrt(3), scale=2 * math.sqrt(3))
    if kind == "mixture":
        mu = params.get("separation", 0.9)
        sig = math.sqrt(1 - mu**2)
        return 0.5 * (stats.norm.cdf(z, mu, sig) + stats.norm.cdf(z, -mu, sig))
    raise KeyError(kind)


def kurtosis_se(kind: str, params: dict, n: int) -> float:
    """Asymptotic standard error of the sample excess kurtosis of a symmetric law.

    Influence function (z⁴ − μ4) − 2μ4(z² − 1), so Var = μ8 − 4μ4μ6 + 4μ4³ − μ4².
    """
    m4, m6, m8 = (std_moment(kind, params, p) for p in (4, 6, 8))
    return math.sqrt(m8 - 4 * m4 * m6 + 4 * m4**3 - m4**2) / math.sqrt(n)


@pytest.fixture(scope="module")
def samples() -> dict[str, np.ndarray]:
    """One (N, dim) sample per law, each from its own explicit seed."""
    return {lid: make(kind, p, dim).sample(N, np.random.default_rng(100 + i))
            for i, (lid, kind, p, dim) in enumerate(LAWS)}


# ---------------------------------------------------------------- known values
SCIPY_KURTOSIS = [
    ("gennorm_0.5", lambda: stats.gennorm.stats(0.5, moments="k")),
    ("gennorm_1", lambda: stats.gennorm.stats(1.0, moments="k")),
    ("gennorm_2", lambda: stats.gennorm.stats(2.0, moments="k")),
    ("gennorm_4", lambda: stats.gennorm.stats(4.0, moments="k")),
    ("laplace", lambda: stats.laplace.stats(moments="k")),
    ("student_t_5", lambda: stats.t.stats(5.0, moments="k")),
    ("student_t_10", lambda: stats.t.stats(10.0, moments="k")),
    ("uniform", lambda: stats.uniform.stats(moments="k")),
    ("gaussian", lambda: stats.norm.stats(moments="k")),
    ("gaussian_aniso", lambda: stats.norm.stats(moments="k")),
]


@pytest.mark.parametrize("lid,ref", SCIPY_KURTOSIS, ids=[r[0] for r in SCIPY_KURTOSIS])
def test_excess_kurtosis_matches_scipy(lid, ref):
    """``excess_kurtosis()`` equals scipy's value for the same family."""
    _, kind, p, dim = LAWS[LAW_IDS.index(lid)]
    assert make(kind, p, dim).excess_kurtosis() == pytest.approx(float(ref()), rel=1e-9,
                                                                  abs=1e-12)


@pytest.mark.parametrize("lid,kind,params,dim", LAWS, ids=LAW_IDS)
def test_excess_kurtosis_matches_moments(lid, kind, params, dim):
    """``excess_kurtosis()`` equals μ4 − 3 from the closed-form moments (mixture included)."""
    assert make(kind, params, dim).excess_kurtosis() == pytest.approx(
        std_moment(kind, params, 4) - 3.0, rel=1e-9, abs=1e-12)


@given(alpha=st.floats(0.3, 12.0))
def test_gennorm_formulae_any_alpha(alpha):
    """For any α the gennorm scale gives unit variance and the kurtosis matches scipy."""
    law = Gennorm(Gennorm.Params(alpha=alpha), 1)
    assert stats.gennorm.var(alpha, scale=law.scale) == pytest.approx(1.0, rel=1e-9)
    assert law.excess_kurtosis() == pytest.approx(
        float(stats.gennorm.stats(alpha, moments="k")), rel=1e-7, abs=1e-9)


# ---------------------------------------------------------------- sample moments
@pytest.mark.parametrize("lid,kind,params,dim", LAWS, ids=LAW_IDS)
def test_shape_and_mean_zero(samples, lid, kind, params, dim):
    """Samples are (n, dim) and each component has mean 0 (SE = σ/√n)."""
    z = samples[lid]
    assert z.shape == (N, dim)
    sd = np.sqrt(variances(make(kind, params, dim)))
    assert np.all(np.abs(z.mean(0)) < K_SE * sd / math.sqrt(N))


@pytest.mark.parametrize("lid,kind,params,dim", LAWS, ids=LAW_IDS)
def test_variance(samples, lid, kind, params, dim):
    """Each component has variance 1 (or its given variance); SE = σ²·sqrt((μ4 − 1)/n)."""
    law = make(kind, params, dim)
    v = variances(law)
    se = v * math.sqrt((std_moment(kind, params, 4) - 1) / N)
    assert np.all(np.abs(samples[lid].var(0) - v) < K_SE * se)
    np.testing.assert_allclose(law.std, np.sqrt(v))


FINITE_8TH = [law for law in LAWS if math.isfinite(std_moment(law[1], law[2], 8))]


@pytest.mark.parametrize("lid,kind,params,dim", FINITE_8TH, ids=[x[0] for x in FINITE_8TH])
def test_sample_kurtosis(samples, lid, kind, params, dim):
    """Sample excess kurtosis equals the law's value within K_SE exact standard errors.

    (Student-t with ν = 5 is left out: its kurtosis estimator has infinite variance; its
    distribution is checked by the KS test below instead.)
    """
    law = make(kind, params, dim)
    k_hat = stats.kurtosis(samples[lid], axis=0)
    se = kurtosis_se(kind, params, N)
    assert np.all(np.abs(k_hat - law.excess_kurtosis()) < K_SE * se), (k_hat, se)


@pytest.mark.parametrize("lid,kind,params,dim", LAWS, ids=LAW_IDS)
def test_goodness_of_fit(samples, lid, kind, params, dim):
    """Each component passes a one-sample KS test against an independent reference CDF."""
    law = make(kind, params, dim)
    for i in range(dim):
        cdf = lambda x, s=float(law.std[i]): reference_cdf(kind, params, x, s)  # noqa: B023
        assert stats.kstest(samples[lid][:, i], cdf).pvalue > P_MIN


def test_kurtosis_check_can_fail(samples):
    """Control: the kurtosis tolerance separates Laplace (3) from gennorm α = 0.5 (22.2)."""
    k_hat = stats.kurtosis(samples["laplace"], axis=0)
    se = kurtosis_se("laplace", {}, N)
    assert np.all(np.abs(k_hat - 22.2) > K_SE * se)


# ---------------------------------------------------------------- cdf / ppf
@pytest.mark.parametrize("lid,kind,params,dim", LAWS, ids=LAW_IDS)
@given(u=st.floats(1e-9, 1 - 1e-9))
def test_cdf_of_ppf(lid, kind, params, dim, u):
    """cdf(ppf(u)) = u for u in (0, 1), every component."""
    law = make(kind, params, dim)
    uu = np.full((3, dim), u)
    np.testing.assert_allclose(law.cdf(law.ppf(uu)), uu, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("lid,kind,params,dim", LAWS, ids=LAW_IDS)
def test_ppf_of_cdf_and_reference(samples, lid, kind, params, dim):
    """ppf(cdf(z)) = z on samples (away from saturated tails); cdf matches the reference."""
    law = make(kind, params, dim)
    z = samples[lid][:2000]
    u = law.cdf(z)
    ok = (u > 1e-10) & (u < 1 - 1e-10)
    back = law.ppf(u)
    np.testing.assert_allclose(back[ok], z[ok], rtol=1e-6, atol=1e-8)
    for i in range(dim):
        np.testing.assert_allclose(u[:, i], reference_cdf(kind, params, z[:, i],
                                                          float(law.std[i])), atol=1e-10)


@pytest.mark.parametrize("lid,kind,params,dim", LAWS, ids=LAW_IDS)
def test_cdf_monotone_and_bounded(lid, kind, params, dim):
    """The cdf is non-decreasing from ~0 to ~1 and equals ½ at 0 (symmetric laws)."""
    law = make(kind, params, dim)
    grid = np.linspace(-8, 8, 801)[:, None] * np.ones(dim)
    c = law.cdf(grid)
    assert np.all(np.diff(c, axis=0) >= 0)
    assert np.all(c[0] < 1e-3) and np.all(c[-1] > 1 - 1e-3)
    np.testing.assert_allclose(law.cdf(np.zeros((1, dim))), 0.5, atol=1e-12)


# ---------------------------------------------------------------- mixture shape
def density(law: LatentLaw, x: np.ndarray) -> np.ndarray:
    h = 1e-5
    return (law.cdf(x + h) - law.cdf(x - h)) / (2 * h)


def test_mixture_default_is_bimodal(samples):
    """At the default separation the density dips at 0: analytically, and in the sample
    (bin counts at 0 vs at ±μ differ by more than K_SE Poisson standard errors)."""
    law = make("mixture", {}, DIM)
    mu = law.params.separation
    assert mu > 1 / math.sqrt(2)
    d0, dmu = density(law, np.array([[0.0]])), density(law, np.array([[mu]]))
    assert d0 < 0.8 * dmu
    z = samples["mixture"].ravel()
    c0 = np.sum(np.abs(z) < 0.1)
    cmu = np.sum(np.abs(np.abs(z) - mu) < 0.1) / 2  # per mode
    assert cmu - c0 > K_SE * math.sqrt(cmu / 2 + c0)


def test_mixture_unimodal_below_threshold():
    """Below separation 1/√2 the mixture density is maximal at 0 (unimodal)."""
    law = make("mixture", {"separation": 0.5}, 1)
    x = np.linspace(-3, 3, 601)[:, None]
    d = density(law, x).ravel()
    assert abs(x[np.argmax(d), 0]) < 1e-9


# ---------------------------------------------------------------- flags and seeding
@pytest.mark.parametrize("lid,kind,params,dim", LAWS, ids=LAW_IDS)
def test_gaussian_flag(lid, kind, params, dim):
    """Only the Gaussian and gennorm with α = 2 are flagged Gaussian."""
    expected = kind == "gaussian" or (kind == "gennorm" and params["alpha"] == 2.0)
    assert make(kind, params, dim).gaussian is expected


@pytest.mark.parametrize("lid,kind,params,dim", LAWS, ids=LAW_IDS)
def test_sampling_uses_only_the_given_generator(lid, kind, params, dim):
    """Same seed -> same sample, different seed -> different, global RNG untouched."""
    law = make(kind, params, dim)
    state = np.random.get_state()[1].copy()
    a = law.sample(100, np.random.default_rng(7))
    b = law.sample(100, np.random.default_rng(7))
    c = law.sample(100, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(np.random.get_state()[1], state)
