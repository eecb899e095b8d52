"""A World composes latent law · dynamics · mixer and states its assumptions.

The theorem's hypotheses (Gaussian latents, stationary additive-noise dynamics) are
exposed as ``flags`` (of z itself) and ``theorem_target``: whether the theorem holds is
a property of the world up to a componentwise monotone reparametrization of the latent,
so a world whose flags fail in z may still meet the hypotheses in another variable. A
copula OU is Gaussian OU in u = Φ⁻¹(F(z)) seen through the invertible mixer g∘F⁻¹∘Φ: its
target is u, and LeJEPA should recover u up to a rotation (not z). Laplace AR, the
naive channel and drift have no such variable (target None): they are the worlds that
test the theorem's "only if". ``diagnostics`` checks the flags from samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from identlab.core import seeding
from identlab.core.registry import DYNAMICS, LATENTS, MIXERS
from identlab.core.schema import ConfigError
from identlab.world.config import WorldConfig

__all__ = ["World", "Flags", "TARGETS"]

# What ``theorem_target`` can be, and the variable it names.
TARGETS = {"z": "z itself (Gaussian, stationary, additive)",
           "u": "u = Φ⁻¹(F(z)) (the world is Gaussian OU in u, seen through g∘F⁻¹∘Φ)"}


@dataclass(frozen=True)
class Flags:
    """The world's three assumption flags; the theorem applies when all hold."""

    gaussian: bool
    stationary: bool
    additive: bool

    def as_dict(self) -> dict[str, bool]:
        return {"gaussian": self.gaussian, "stationary": self.stationary,
                "additive": self.additive}


class World:
    """One member's world. The mixer is drawn from the ``mixer`` stream of ``seed``."""

    def __init__(self, cfg: WorldConfig, seed: int) -> None:
        self.cfg = cfg
        self.seed = seed
        self.dim = cfg.dim
        self.latent = LATENTS.get(cfg.latent.kind)(cfg.latent, cfg.dim)
        self.dynamics = DYNAMICS.get(cfg.dynamics.kind)(cfg.dynamics, self.latent, cfg.dim)
        self.mixer = MIXERS.get(cfg.mixer.kind)(cfg.mixer, cfg.dim, seeding.rng(seed, "mixer"))

    # ---- assumptions -------------------------------------------------------
    @property
    def flags(self) -> Flags:
        return Flags(self.latent.gaussian, self.dynamics.stationary(), self.dynamics.additive())

    @property
    def theorem_target(self) -> str | None:
        """``"z"``, ``"u"`` (u = Φ⁻¹(F(z))) or None: the variable in which this world meets
        the theorem's hypotheses (module docstring)."""
        return self.dynamics.theorem_target()

    @property
    def theorem_applies(self) -> bool:
        """Some componentwise reparametrization of z (``theorem_target``) is Gaussian,
        stationary and additive."""
        return self.theorem_target is not None

    def target(self, z: np.ndarray) -> np.ndarray | None:
        """The theorem's target variable for latents z (n, N): z, Φ⁻¹(F(z)) or None."""
        if self.theorem_target == "z":
            return np.asarray(z, np.float64)
        if self.theorem_target == "u":
            return self.latent.gaussianize(z)
        return None

    def target_note(self) -> str:
        """One line: which variable the theorem is about here, and why."""
        t = self.theorem_target
        if t is None:
            return ("no componentwise reparametrization of z is Gaussian, stationary and "
                    "additive: this world tests the theorem's converse")
        return f"the theorem's target is {TARGETS[t]}"

    def reasons(self) -> list[str]:
        """Why the theorem does not apply (empty when it does, in z or in u)."""
        if self.theorem_applies:
            return []
        out = []
        if not self.latent.gaussian:
            out.append(f"latent law {self.cfg.latent.kind!r} is not Gaussian "
                       f"(excess kurtosis {self.latent.excess_kurtosis():.3g})")
        out.extend(self.dynamics.reasons())
        return out

    @property
    def rho(self) -> float | None:
        """Scalar ρ for the approximation bound (Thm 3): worlds where the theorem applies
        (Gaussian OU in the target, whichever dynamics kind realises it) with one ρ for
        all dims; for a ``u`` target it is u's one-step correlation."""
        return self.dynamics.scalar_rho if self.theorem_applies else None

    # ---- sampling ----------------------------------------------------------
    def sample_pairs(self, n: int, rng: np.random.Generator | None = None, *,
                     seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """n one-step pairs (z_t, z_t+1), each (n, N), from ``rng`` or, when none is
        given, from the ``samples`` stream of ``seed`` (default: the world's seed)."""
        if rng is None:
            rng = seeding.rng(self.seed if seed is None else seed, "samples")
        return self.dynamics.sample_pairs(n, rng)

    def eval_pairs(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The held-out evaluation pairs of this world, from its own ``eval`` stream."""
        return self.dynamics.sample_pairs(n, seeding.rng(self.seed, "eval"))

    def observe(self, z) -> np.ndarray | torch.Tensor:
        """x = g(z) for latents z (n, N)."""
        return self.mixer.forward(z)

    def train_frames(self, pairs: int, runs_of: int, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Latents of a training set of ``pairs`` pairs and where each pair's two views
        sit: (z (F, N), first (pairs,), second (pairs,)), pair i = (z[first[i]],
        z[second[i]]). ``runs_of`` = 1 draws independent pairs (F = 2·pairs, rows [0, P)
        then their successors); ``runs_of`` = T > 1 draws ⌈pairs/T⌉ runs of T
        transitions of the world's own dynamics, started from its law (a random time for
        a drifting world), and pairs consecutive states, so F = pairs + ⌈pairs/T⌉ and
        every inner state serves two pairs. Draws come from ``rng`` alone."""
        if runs_of == 1:
            z_t, z_t1 = self.sample_pairs(pairs, rng)
            first = np.arange(pairs)
            return np.concatenate([z_t, z_t1]), first, first + pairs
        runs = -(-pairs // runs_of)
        traj = self._trajectory(runs_of + 1, runs, rng)  # (T+1, runs, N)
        z = traj.transpose(1, 0, 2).reshape(runs * (runs_of + 1), self.dim)
        run, s = np.divmod(np.arange(pairs), runs_of)
        first = run * (runs_of + 1) + s
        frames = pairs + runs  # the last run's unused tail is dropped
        return z[:frames], first, first + 1

    def frame_set(self, split: str, z_t: np.ndarray, z_t1: np.ndarray, root):
        """Rendered worlds: the cached frames of pairs (z_t, z_t1) for one split (rows
        [0, n) are the frames of z_t, [n, 2n) those of z_t1); records the wrap-around
        fraction of the split."""
        return self.frames_of(split, np.concatenate([z_t, z_t1]), root)

    def frames_of(self, split: str, z: np.ndarray, root):
        """Rendered worlds: the cached frames of latents z (F, N), row i -> frame i, for
        one split; records the wrap-around fraction of the split."""
        from identlab.world.pixels import FrameSet

        self.mixer.wrap[split] = self.mixer.wrap_fraction(z)
        return FrameSet(self.cfg, self.seed, split, self.mixer.angles(z), root)

    def observe_pairs(self, z: np.ndarray, split: str) -> torch.Tensor:
        """Observations of stacked pairs z = [z_t; z_t1] (2n, N): the mixer in float32,
        or, for a rendered mixer, the cached frames of the split as uint8."""
        if not self.mixer.rendered:
            return self.mixer.forward(torch.from_numpy(z).float())
        from identlab.world.pixels import cache_root, ensure_frames

        n = len(z) // 2
        fs = self.frame_set(split, z[:n], z[n:], cache_root())
        ensure_frames([fs], progress=False)  # a no-op when training rendered them
        return torch.from_numpy(fs.load())

    # ---- empirical checks ----------------------------------------------------
    def diagnostics(self, n: int = 20000, k: int = 10, seed: int | None = None) -> dict:
        """Moments at t, t+1 and t+k, one-step correlation, round-trip error, a two-sample
        test of z_t against z_{t+k}. Needs n >= 2 and k >= 1; a statistic undefined on
        the sample (a constant coordinate's correlation) is NaN."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ConfigError("n", f"= {n!r}: the checks need an integer >= 2 samples")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError("k", f"= {k!r}: the horizon z_t+k needs an integer k >= 1")
        rng = seeding.rng(self.seed if seed is None else seed, "diagnostics")
        traj = self._trajectory(k + 1, n, rng)  # (k+1, n, N)
        z0, z1, zk = traj[0], traj[1], traj[k]
        corr = [float(np.corrcoef(z0[:, i], z1[:, i])[0, 1]) for i in range(self.dim)]
        ks = [float(stats.ks_2samp(z0[:, i], zk[:, i]).pvalue) for i in range(self.dim)]
        m = min(n, 2000)
        rt = float(np.max(np.abs(self.mixer.inverse(self.mixer.forward(z0[:m])) - z0[:m]))) \
            if self.mixer.has_inverse else None  # (rendered mixers have no inverse)
        return {
            "n": n, "k": k,
            "mean_t": _r(z0.mean(0)), "var_t": _r(z0.var(0)),
            "mean_tk": _r(zk.mean(0)), "var_tk": _r(zk.var(0)),
            "kurtosis_t": _r(stats.kurtosis(z0, axis=0)),
            "kurtosis_t1": _r(stats.kurtosis(z1, axis=0)),
            "kurtosis_tk": _r(stats.kurtosis(zk, axis=0)),
            "kurtosis_law": round(float(self.latent.excess_kurtosis()), 4),
            "one_step_corr": _r(corr),
            "rho": _r(self.dynamics.rho),
            "ks_pvalue_t_vs_tk": _r(ks),
            "roundtrip_err": rt,
            "mixer": self.mixer.info(),
        }

    def _trajectory(self, length, n, rng):
        # time-varying worlds start at a random time so the check sees pooled pairs
        z, t = self.dynamics.initial(n, rng)
        out = [z]
        for _ in range(length - 1):
            z = self.dynamics.step(z, t, rng)
            t = t + 1
            if hasattr(self.dynamics.params, "length"):
                t = np.minimum(t, self.dynamics.params.length - 2)
            out.append(z)
        return np.stack(out)


def _r(a) -> list[float]:
    return [round(float(v), 4) for v in np.atleast_1d(a)]
