"""Latent laws p(z): independent, standardized components (mean 0, variance 1).

design §3. Each law samples from an explicit ``numpy.random.Generator`` and knows its
own moments, CDF and quantile function (the latter used by ``copula_ou``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import special, stats

from identlab.core.registry import LATENTS
from identlab.core.schema import ConfigError, interval, param

# F(z) is floored here before Φ⁻¹ (LatentLaw.gaussianize).
CDF_FLOOR = 1e-300

__all__ = ["CDF_FLOOR", "LatentLaw", "Gaussian", "Gennorm", "Laplace", "StudentT", "Uniform",
           "Mixture"]


class LatentLaw:
    """Base class: a product law of ``dim`` standardized components."""

    kind: ClassVar[str]
    gaussian: bool = False

    def __init__(self, params, dim: int) -> None:
        self.params = params
        self.dim = dim

    @classmethod
    def is_laplace(cls, params) -> bool:
        """Whether these params give the unit-variance Laplace law (what exactly
        stationary Laplace dynamics need)."""
        return False

    @property
    def std(self) -> np.ndarray:
        """Per-dimension standard deviation (1 unless a Gaussian is anisotropic)."""
        return np.ones(self.dim)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:  # (n, dim)
        raise NotImplementedError

    def excess_kurtosis(self) -> float:
        raise NotImplementedError

    def cdf(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def ppf(self, u: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def gaussianize(self, z) -> np.ndarray:
        """u = Φ⁻¹(F(z)) per dimension: the componentwise map that makes this law N(0, 1).

        Every law here is symmetric about 0, so u = sign(z)·(−Φ⁻¹(F(−|z|))) is evaluated
        on the lower tail, where F keeps full relative precision (F near 1 would round to
        1 and Φ⁻¹ to ∞). F is floored at CDF_FLOOR: Φ⁻¹(1e-300) ≈ −37, finite for any
        sample.
        """
        z = np.asarray(z, dtype=np.float64)
        lower = np.maximum(np.asarray(self.cdf(-np.abs(z)), dtype=np.float64), CDF_FLOOR)
        return np.sign(z) * -special.ndtri(lower)


@LATENTS.register("gaussian")
class Gaussian(LatentLaw):
    """N(0, diag(variances)); isotropic N(0, I) by default."""

    @dataclass(frozen=True)
    class Params:
        kind: str = "gaussian"
        variances: tuple[float, ...] | None = param(
            None, check=interval(0.0, lo_open=True),
            doc="per-dimension variances (anisotropic); null = all 1")

    gaussian = True

    @property
    def std(self) -> np.ndarray:
        v = self.params.variances
        return np.ones(self.dim) if v is None else np.sqrt(np.asarray(v, dtype=float))

    def sample(self, n, rng):
        return rng.standard_normal((n, self.dim)) * self.std

    def excess_kurtosis(self):
        return 0.0

    def cdf(self, z):
        return special.ndtr(z / self.std)

    def ppf(self, u):
        return special.ndtri(u) * self.std


def _gennorm_scale(alpha: float) -> float:
    # s = sqrt(Γ(1/α)/Γ(3/α)) gives unit variance; computed in log space for small α
    return float(np.exp(0.5 * (special.gammaln(1 / alpha) - special.gammaln(3 / alpha))))


@LATENTS.register("gennorm")
class Gennorm(LatentLaw):
    """Generalized normal: z = s·sign·G^{1/α}, G ~ Gamma(1/α, 1) (design §3).

    α = 2 is the Gaussian, α = 1 the Laplace, α → ∞ approaches the uniform, α < 1 has
    heavy tails.
    """

    @dataclass(frozen=True)
    class Params:
        kind: str = "gennorm"
        alpha: float = param(2.0, check=interval(0.0, lo_open=True), doc="shape α > 0")

    def __init__(self, params, dim):
        super().__init__(params, dim)
        self.alpha = float(params.alpha)
        self.scale = _gennorm_scale(self.alpha)
        self.gaussian = self.alpha == 2.0

    def sample(self, n, rng):
        g = rng.gamma(1.0 / self.alpha, 1.0, size=(n, self.dim))
        sign = np.where(rng.random((n, self.dim)) < 0.5, -1.0, 1.0)
        return self.scale * sign * g ** (1.0 / self.alpha)

    def excess_kurtosis(self):
        a = self.alpha
        return float(np.exp(special.gammaln(5 / a) + special.gammaln(1 / a)
                            - 2 * special.gammaln(3 / a)) - 3.0)

    @classmethod
    def is_laplace(cls, params):
        return getattr(params, "alpha", 1.0) == 1.0

    def cdf(self, z):
        return stats.gennorm.cdf(z, self.alpha, scale=self.scale)

    def ppf(self, u):
        return stats.gennorm.ppf(u, self.alpha, scale=self.scale)


@LATENTS.register("laplace")
class Laplace(Gennorm):
    """Unit-variance Laplace: the α = 1 case of ``gennorm``."""

    @dataclass(frozen=True)
    class Params:
        kind: str = "laplace"

    def __init__(self, params, dim):
        LatentLaw.__init__(self, params, dim)
        self.alpha = 1.0
        self.scale = _gennorm_scale(1.0)  # = 1/sqrt(2)
        self.gaussian = False


@LATENTS.register("student_t")
class StudentT(LatentLaw):
    """Student-t with ν > 2 degrees of freedom, scaled to unit variance."""

    @dataclass(frozen=True)
    class Params:
        kind: str = "student_t"
        nu: float = param(5.0, check=interval(2.0, lo_open=True), doc="degrees of freedom ν > 2")

    def __init__(self, params, dim):
        super().__init__(params, dim)
        self.nu = float(params.nu)
        self.scale = np.sqrt((self.nu - 2.0) / self.nu)

    def sample(self, n, rng):
        return self.scale * rng.standard_t(self.nu, size=(n, self.dim))

    def excess_kurtosis(self):
        return 6.0 / (self.nu - 4.0) if self.nu > 4 else float("inf")

    def cdf(self, z):
        return stats.t.cdf(z, self.nu, scale=self.scale)

    def ppf(self, u):
        return stats.t.ppf(u, self.nu, scale=self.scale)


@LATENTS.register("uniform")
class Uniform(LatentLaw):
    """Uniform on [-√3, √3] (unit variance)."""

    @dataclass(frozen=True)
    class Params:
        kind: str = "uniform"

    half = float(np.sqrt(3.0))

    def sample(self, n, rng):
        return rng.uniform(-self.half, self.half, size=(n, self.dim))

    def excess_kurtosis(self):
        return -1.2

    def cdf(self, z):
        return np.clip((z + self.half) / (2 * self.half), 0.0, 1.0)

    def ppf(self, u):
        return -self.half + 2 * self.half * u


@LATENTS.register("mixture")
class Mixture(LatentLaw):
    """Symmetric two-component mixture ½N(−μ, σ²) + ½N(μ, σ²), μ² + σ² = 1.

    Bimodal when μ > σ, i.e. ``separation`` > 1/√2.
    """

    @dataclass(frozen=True)
    class Params:
        kind: str = "mixture"
        separation: float = param(0.9, check=interval(0.0, 1.0, lo_open=True, hi_open=True),
                                  doc="component mean μ in (0, 1); σ = sqrt(1 − μ²)")

    def __init__(self, params, dim):
        super().__init__(params, dim)
        self.mu = float(params.separation)
        self.sigma = float(np.sqrt(1.0 - self.mu**2))

    def sample(self, n, rng):
        sign = np.where(rng.random((n, self.dim)) < 0.5, -1.0, 1.0)
        return sign * self.mu + self.sigma * rng.standard_normal((n, self.dim))

    def excess_kurtosis(self):
        m, s = self.mu, self.sigma
        return m**4 + 6 * m**2 * s**2 + 3 * s**4 - 3.0

    def cdf(self, z):
        return 0.5 * (special.ndtr((z - self.mu) / self.sigma)
                      + special.ndtr((z + self.mu) / self.sigma))

    def ppf(self, u):
        # vectorised bisection: the CDF is monotone, bracketed by μ ± 10σ
        u = np.asarray(u, dtype=float)
        lo = np.full_like(u, -self.mu - 12 * self.sigma)
        hi = np.full_like(u, self.mu + 12 * self.sigma)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            below = self.cdf(mid) < u
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        return 0.5 * (lo + hi)


def check_dim(law_params, dim: int, path: str) -> None:
    """Cross-field checks of a latent section against ``world.dim``."""
    v = getattr(law_params, "variances", None)
    if v is not None and len(v) != dim:
        raise ConfigError(f"{path}.variances",
                          f"has {len(v)} entries: must have world.dim = {dim}")
