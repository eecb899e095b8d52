"""Where a run went, not only where it ended: metrics at logged steps, and the stability
verdict of a rotation start.

**Trajectory.** With ``eval.at_steps`` a member keeps a small held-out set of
``eval.traj_pairs`` pairs from its own ``trajectory`` stream (disjoint from the training
and evaluation draws) and, at each listed step s (the encoder after s updates), records

* ``traj_r2_hz``: held-out linear R²(h → z) (fit on the first ``fit_fraction`` of the
  pairs, both views, scored on the rest — :func:`identlab.measure.split.heldout_split`,
  the split of :func:`identlab.measure.metrics.evaluate`);
* ``traj_r2_hz_gauss``: the same against Φ⁻¹(F(z));
* ``traj_loss``: the expected training loss J (design §7) of the best-rescaled h,
  min_a J(a·h), at the run's final λ, so that a mere scale drift does not read as a
  departure; beside it the same set's best-scaled rotation and Gaussianized oracles
  (``traj_loss_rotation``, ``traj_loss_gaussianized``, computed once).

J is averaged over ``eval.attribution.directions`` directions of the ``trajectory``
stream. Objectives without SIGReg get None for the loss keys.

**Stability.** A rotation start (``learner.init``: supervised, target latent) is
``rotation_stable`` when the run ends with its bulk R²(h→z) at most STABLE_R2_TOL below
the warm start's bulk R² and its J within STABLE_SE_MULTIPLE of its SE of the rotation
oracle's J (``|loss_learned − loss_z| ≤ STABLE_SE_MULTIPLE · loss_se``, the best scaled
rotation of z whatever the world's target); other
runs get None.
"""

from __future__ import annotations

import numpy as np
import torch

from identlab.core import seeding
from identlab.measure.attribution import (
    LossSetting,
    OracleLatents,
    directions_for,
    oracle_losses,
    r2_hz_gauss,
    scaled_loss,
)
from identlab.measure.metrics import r2_linear
from identlab.measure.split import heldout_split
from identlab.measure.thresholds import STABLE_R2_TOL, STABLE_SE_MULTIPLE

__all__ = ["TrajectoryProbe", "rotation_stable", "TRAJ_KEYS"]

TRAJ_KEYS = ("traj_steps", "traj_r2_hz", "traj_r2_hz_gauss", "traj_loss",
             "traj_loss_rotation", "traj_loss_gaussianized")


def _finite(v) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


class TrajectoryProbe:
    """One member's trajectory set and the metrics recorded on it (module docstring)."""

    def __init__(self, cfg, world, setting: dict | None) -> None:
        n = cfg.eval.traj_pairs
        self.steps = tuple(cfg.eval.at_steps)
        rng = seeding.rng(cfg.seed, "trajectory")
        self.z_t, self.z_t1 = world.dynamics.sample_pairs(n, rng)
        self.x = world.observe(torch.from_numpy(np.concatenate([self.z_t, self.z_t1]))
                               .float())
        self.law, self.fit_fraction = world.latent, cfg.eval.fit_fraction
        self.setting = None if setting is None else LossSetting.of(setting)
        self.fixed_scale = bool(setting and setting.get("fixed_scale"))
        self.dirs = directions_for(cfg.world.dim, cfg.eval.attribution.directions,
                                   int(rng.integers(2**31 - 1)))
        self.rows: dict[str, list] = {k: [] for k in ("traj_steps", "traj_r2_hz",
                                                      "traj_r2_hz_gauss", "traj_loss")}
        self.oracles = self._oracles()

    def _oracles(self) -> dict:
        if self.setting is None:
            return {"traj_loss_rotation": None, "traj_loss_gaussianized": None}
        # z and Φ⁻¹(F(z)) whatever the world's target: the trajectory follows both starts
        # (scales fitted on the scored pairs and directions, as for the learned h's
        # best rescaling on the same set: a trajectory compares like with like)
        lat = OracleLatents("z", "gaussianized", _full(self.z_t, self.z_t1, self.law), None)
        o = oracle_losses(lat, self.setting, self.dirs, (), fixed_scale=self.fixed_scale)
        lam = self.setting.lam
        return {"traj_loss_rotation": float(o.rotation.value(lam)),
                "traj_loss_gaussianized": float(o.alternative.value(lam))}

    def record(self, step: int, h: np.ndarray) -> None:
        """Score the embedding h (2n, N) of the set's observations after ``step`` updates."""
        n = len(self.z_t)
        h_t, h_t1 = h[:n], h[n:]
        self.rows["traj_steps"].append(int(step))
        if not np.all(np.isfinite(h)):
            for k in ("traj_r2_hz", "traj_r2_hz_gauss", "traj_loss"):
                self.rows[k].append(None)
            return
        fit, test = heldout_split(n, self.fit_fraction)
        z = np.concatenate([self.z_t, self.z_t1])
        self.rows["traj_r2_hz"].append(_finite(r2_linear(h[fit], z[fit], h[test], z[test])[0]))
        self.rows["traj_r2_hz_gauss"].append(_finite(r2_hz_gauss(
            h_t, h_t1, self.z_t, self.z_t1, self.law, self.fit_fraction)))
        loss = None
        if self.setting is not None:
            loss = scaled_loss(h_t, h_t1, self.setting, self.dirs,
                               fixed_scale=self.fixed_scale).value(self.setting.lam)
        self.rows["traj_loss"].append(_finite(loss))

    def metrics(self) -> dict:
        """The record's trajectory keys (``TRAJ_KEYS``)."""
        return {**{k: list(v) for k, v in self.rows.items()}, **self.oracles}


def _full(z_t, z_t1, law) -> tuple[np.ndarray, ...]:
    """(z_t, z_t1, Φ⁻¹(F(z_t)), Φ⁻¹(F(z_t1))) on every trajectory pair."""
    return (z_t, z_t1, law.gaussianize(z_t), law.gaussianize(z_t1))


def rotation_stable(metrics: dict, init_r2_bulk: float | None) -> bool | None:
    """True when a rotation start ended where it began (module docstring), False when it
    left, None when a number it needs is missing."""
    need = (metrics.get("r2_hz_bulk"), metrics.get("loss_learned"),
            metrics.get("loss_z"), metrics.get("loss_se"), init_r2_bulk)
    if any(v is None for v in need):
        return None
    r2, learned, rot, se, start = need
    kept_r2 = r2 >= start - STABLE_R2_TOL
    kept_loss = abs(learned - rot) <= STABLE_SE_MULTIPLE * se
    return bool(kept_r2 and kept_loss)
