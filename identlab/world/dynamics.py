"""Latent dynamics z_t -> z_{t+1} and their assumption flags (design §3).

Training pairs are exactly one transition apart: ``sample_pairs`` draws z_t from the
world's marginal at a (random, for time-varying worlds) time t and applies one step.
Each dynamics reports whether the world is *stationary* (the marginal of z_{t+1} equals
that of z_t and the transition does not change with t) and *additive* (z' = m(z) + η
with η independent of z).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from scipy import special

from identlab.core.registry import DYNAMICS, LATENTS
from identlab.core.schema import ConfigError, interval, param
from identlab.world.latents import LatentLaw

__all__ = ["Dynamics", "OU", "LaplaceAR", "CopulaOU", "NaiveAdditive", "Drift"]

RHO_DOC = "one-step correlation in (0, 1): a number, or one per dimension"


class Dynamics:
    """Base class. ``rho`` is resolved to a per-dimension array."""

    kind: ClassVar[str]

    def __init__(self, params, latent: LatentLaw, dim: int) -> None:
        self.params = params
        self.latent = latent
        self.dim = dim
        r = params.rho
        self.rho = np.full(dim, float(r)) if not isinstance(r, tuple) else np.asarray(r, float)

    @classmethod
    def check(cls, params, latent_params, dim: int, path: str) -> None:
        """Refuse params that do not fit the latent law or ``dim`` (ConfigError)."""
        check_rho(params, dim, path)

    # ---- assumption flags -------------------------------------------------
    def stationary(self) -> bool:
        raise NotImplementedError

    def additive(self) -> bool:
        raise NotImplementedError

    def reasons(self) -> list[str]:
        """Why this world breaks stationarity or additivity (empty when it does not)."""
        return []

    def theorem_target(self) -> str | None:
        """The latent the theorem is about, up to a componentwise monotone map (TARGETS):
        ``"z"`` when z itself is Gaussian, stationary and additive, ``"u"`` when
        u = Φ⁻¹(F(z)) is, None when no componentwise reparametrization makes the world
        Gaussian OU (there the theorem's converse is what the world tests)."""
        if self.latent.gaussian and self.stationary() and self.additive():
            return "z"
        return None

    @property
    def marginal_known(self) -> bool:
        """Whether z_t of a training pair has the latent law's marginal (False for worlds
        whose marginal moves along time: their pooled marginal is only known from
        samples)."""
        return True

    @property
    def scalar_rho(self) -> float | None:
        """The common ρ when all dimensions share it (used by the bound), else None."""
        return float(self.rho[0]) if np.all(self.rho == self.rho[0]) else None

    # ---- sampling ---------------------------------------------------------
    def initial(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(z_0, t_0): states drawn from the marginal at time 0."""
        return self.latent.sample(n, rng), np.zeros(n, dtype=np.int64)

    def step(self, z: np.ndarray, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def sample_pairs(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(z_t, z_{t+1}), each (n, dim), one transition apart."""
        z, t = self.initial(n, rng)
        return z, self.step(z, t, rng)

    def trajectory(self, length: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """(length, n, dim): n independent trajectories started at time 0."""
        z, t = self.initial(n, rng)
        out = np.empty((length, n, self.dim))
        out[0] = z
        for i in range(1, length):
            z = self.step(z, t, rng)
            t = t + 1
            out[i] = z
        return out


def _rho_check(v) -> str | None:
    return interval(0.0, 1.0, lo_open=True, hi_open=True)(v)


def check_rho(params, dim: int, path: str) -> None:
    rho = getattr(params, "rho", None)
    if isinstance(rho, tuple) and len(rho) != dim:
        raise ConfigError(f"{path}.rho",
                          f"= {list(rho)}: per-dimension rho needs world.dim = {dim} entries")


class _GaussianStationaryAR(Dynamics):
    """Additive AR(1) channels that are stationary exactly for Gaussian latents."""

    def stationary(self):
        return self.latent.gaussian

    def additive(self):
        return True

    def reasons(self):
        return [] if self.latent.gaussian else [self.non_gaussian_reason]

    non_gaussian_reason = ""


@DYNAMICS.register("ou")
class OU(_GaussianStationaryAR):
    """Ornstein–Uhlenbeck / AR(1): z' = ρ⊙z + sqrt(1−ρ²)⊙σ⊙η, η ~ N(0, I).

    Stationary exactly when the latent law is Gaussian (with variances σ²); with a
    non-Gaussian initial law the marginal drifts toward the Gaussian.
    """

    @dataclass(frozen=True)
    class Params:
        kind: str = "ou"
        rho: float | tuple[float, ...] = param(0.95, check=_rho_check, doc=RHO_DOC)

    non_gaussian_reason = ("Gaussian OU noise on a non-Gaussian latent law: the marginal "
                           "moves toward the Gaussian at every step (not stationary)")

    def step(self, z, t, rng):
        eta = rng.standard_normal(z.shape)
        return self.rho * z + np.sqrt(1 - self.rho**2) * self.latent.std * eta


def laplace_unit(shape, rng: np.random.Generator) -> np.ndarray:
    """Laplace(0, b = 1/√2): unit variance."""
    return rng.laplace(0.0, 1.0 / np.sqrt(2.0), size=shape)


@DYNAMICS.register("laplace_ar")
class LaplaceAR(Dynamics):
    """Exactly stationary Laplace AR(1): z' = ρz + ε, ε = 0 w.p. ρ², else Laplace.

    φ_ε(u) = φ_L(u)/φ_L(ρu) = ρ² + (1−ρ²)φ_L(u) (design §3), so Laplace(unit var) is the
    stationary law. Needs the Laplace latent (``laplace`` or ``gennorm`` with α = 1).
    """

    @dataclass(frozen=True)
    class Params:
        kind: str = "laplace_ar"
        rho: float | tuple[float, ...] = param(0.95, check=_rho_check, doc=RHO_DOC)

    @classmethod
    def check(cls, params, latent_params, dim, path):
        super().check(params, latent_params, dim, path)
        if not LATENTS.get(latent_params.kind).is_laplace(latent_params):
            raise ConfigError(f"{path}.kind", "= 'laplace_ar': needs world.latent "
                              "{kind: laplace} (or gennorm with alpha: 1), got "
                              f"{latent_params.kind}")

    def stationary(self):
        return True

    def additive(self):
        return True

    def step(self, z, t, rng):
        jump = rng.random(z.shape) >= self.rho**2
        return self.rho * z + np.where(jump, laplace_unit(z.shape, rng), 0.0)


@DYNAMICS.register("copula_ou")
class CopulaOU(Dynamics):
    """Gaussian OU u pushed through z = F⁻¹(Φ(u)) per dimension.

    Exact marginal F, stationary, but the noise enters non-additively (unless F is
    Gaussian, where this is plain OU). The one-step Pearson correlation of z is close to,
    not exactly, ρ (it is ρ for the Gaussian copula variable u).
    """

    @dataclass(frozen=True)
    class Params:
        kind: str = "copula_ou"
        rho: float | tuple[float, ...] = param(0.95, check=_rho_check, doc=RHO_DOC)

    def stationary(self):
        return True

    def additive(self):
        return self.latent.gaussian

    def reasons(self):
        if not self.latent.gaussian:
            return ["copula dynamics: z' = F⁻¹(Φ(ρΦ⁻¹(F(z)) + noise)) is not z' = m(z) + η "
                    "(noise is not additive in z)"]
        return []

    def theorem_target(self):
        """Gaussian OU in u = Φ⁻¹(F(z)) by construction: for a non-Gaussian F the world is
        that OU seen through the invertible mixer g∘F⁻¹∘Φ, so the theorem applies to u."""
        return "z" if self.latent.gaussian else "u"

    def _to_z(self, u):
        return self.latent.ppf(np.clip(special.ndtr(u), 1e-15, 1 - 1e-15))

    def initial(self, n, rng):
        u = rng.standard_normal((n, self.dim))
        return self._to_z(u), np.zeros(n, dtype=np.int64)

    def sample_pairs(self, n, rng):
        u = rng.standard_normal((n, self.dim))
        u1 = self.rho * u + np.sqrt(1 - self.rho**2) * rng.standard_normal(u.shape)
        return self._to_z(u), self._to_z(u1)

    def step(self, z, t, rng):
        u = special.ndtri(np.clip(self.latent.cdf(z), 1e-15, 1 - 1e-15))
        u1 = self.rho * u + np.sqrt(1 - self.rho**2) * rng.standard_normal(u.shape)
        return self._to_z(u1)


@DYNAMICS.register("naive_additive")
class NaiveAdditive(_GaussianStationaryAR):
    """The paper code's channel: z' = ρz + sqrt(1−ρ²)η with η from the latent law itself.

    Additive, but stationary only for the Gaussian. Fourth cumulants add, so one step maps
    the excess kurtosis κ to (ρ⁴ + (1−ρ²)²)·κ: for Laplace at ρ = 0.9, 3.0 → 2.077.


    Training pairs are one transition apart by default. ``views: anchored`` reproduces the
    paper code's gennorm experiment instead: both views are independent one-step
    perturbations of a common anchor a drawn from the law, (ρa + sη, ρa + sη'), so the
    views correlate at ρ² and each has the one-step law, not the latent law.
    """

    @dataclass(frozen=True)
    class Params:
        kind: str = "naive_additive"
        rho: float | tuple[float, ...] = param(0.95, check=_rho_check, doc=RHO_DOC)
        views: Literal["transition", "anchored"] = param(
            "transition", doc="training pairs: (z_t, z_t+1), or two perturbations of one "
                              "anchor (the paper code's gennorm experiment)")

    non_gaussian_reason = ("noise drawn from the non-Gaussian latent law: a sum of two "
                           "such variables has a different law (kurtosis drifts), so not "
                           "stationary")

    def step(self, z, t, rng):
        return self.rho * z + np.sqrt(1 - self.rho**2) * self.latent.sample(z.shape[0], rng)

    def sample_pairs(self, n, rng):
        if self.params.views == "transition":
            return super().sample_pairs(n, rng)
        a, t = self.initial(n, rng)
        return self.step(a, t, rng), self.step(a, t, rng)

    @property
    def scalar_rho(self):
        r = super().scalar_rho
        return r if r is None or self.params.views == "transition" else r * r


def _schedule(kind: str, tau: np.ndarray) -> np.ndarray:
    if kind == "linear":
        return tau
    if kind == "sine":
        return np.sin(2 * np.pi * tau)
    return (tau >= 0.5).astype(float)  # "step"


@DYNAMICS.register("drift")
class Drift(Dynamics):
    """OU whose mean, scale or ρ changes along time t ∈ {0..T−1} (non-stationary).

    With τ = t/(T−1) and s(τ) the schedule (linear τ, sine sin 2πτ, or a step at ½):
    - mean:  μ_t = strength·s(τ);  z_{t+1} = μ_{t+1} + ρ(z_t − μ_t) + sqrt(1−ρ²)η
    - scale: σ_t = exp(strength·s(τ)); z_{t+1} = σ_{t+1}(ρ z_t/σ_t + sqrt(1−ρ²)η)
    - rho:   ρ_t = ρ^{exp(strength·s(τ))}; the marginal stays put, the transition moves.
    Pairs are drawn at uniform random times t ∈ {0..T−2} (z_t from the exact marginal at
    t), which is the law of a random time of a random trajectory. strength = 0 is OU.
    """

    @dataclass(frozen=True)
    class Params:
        kind: str = "drift"
        rho: float = param(0.95, check=_rho_check, doc="base one-step correlation")
        target: Literal["mean", "scale", "rho"] = param("mean", doc="what drifts")
        schedule: Literal["linear", "sine", "step"] = param("linear", doc="shape s(τ)")
        strength: float = param(1.0, check=interval(0.0), doc="drift amplitude (0 = OU)")
        length: int = param(1000, check=interval(2), doc="trajectory length T")

    def stationary(self):
        return self.params.strength == 0 and self.latent.gaussian

    def additive(self):
        return True

    @property
    def marginal_known(self):
        return self.params.strength == 0

    def reasons(self):
        out = []
        if self.params.strength > 0:
            out.append(f"the {self.params.target} drifts along time (strength "
                       f"{self.params.strength:g}, {self.params.schedule} schedule): the "
                       "transition depends on t (not stationary)")
        if not self.latent.gaussian:
            out.append("Gaussian OU noise on a non-Gaussian latent law (not stationary)")
        return out

    def _s(self, t):
        tau = np.asarray(t, float) / max(self.params.length - 1, 1)
        return self.params.strength * _schedule(self.params.schedule, tau)[:, None]

    def _mean_scale_rho(self, t):
        s = self._s(t)  # (n, 1)
        zero = np.zeros_like(s)
        target = self.params.target
        mu = s if target == "mean" else zero
        sigma = np.exp(s) if target == "scale" else np.ones_like(s)
        rho = self.rho ** np.exp(s) if target == "rho" else self.rho + zero
        return mu, sigma, rho

    def initial(self, n, rng):
        t = rng.integers(0, self.params.length - 1, size=n)
        mu, sigma, _ = self._mean_scale_rho(t)
        return mu + sigma * self.latent.sample(n, rng), t

    def sample_pairs(self, n, rng):
        z, t = self.initial(n, rng)
        return z, self.step(z, t, rng)

    def trajectory(self, length, n, rng):
        if length > self.params.length:
            raise ConfigError("length", f"= {length}: at most the drift length "
                              f"T = {self.params.length}")
        z = self.latent.sample(n, rng)
        mu, sigma, _ = self._mean_scale_rho(np.zeros(n))
        z = mu + sigma * z
        out = np.empty((length, n, self.dim))
        out[0] = z
        for i in range(1, length):
            z = self.step(z, np.full(n, i - 1), rng)
            out[i] = z
        return out

    def step(self, z, t, rng):
        mu, sigma, _ = self._mean_scale_rho(t)
        mu1, sigma1, rho = self._mean_scale_rho(t + 1)
        zhat = (z - mu) / sigma
        eta = rng.standard_normal(z.shape) * self.latent.std  # keeps anisotropic variances
        return mu1 + sigma1 * (rho * zhat + np.sqrt(1 - rho**2) * eta)


def check_compat(dyn_params, latent_params, dim: int, path: str) -> None:
    """Cross-field checks of a dynamics section against the latent law and dim (the
    dynamics class's own ``check``)."""
    DYNAMICS.get(dyn_params.kind).check(dyn_params, latent_params, dim, path)
