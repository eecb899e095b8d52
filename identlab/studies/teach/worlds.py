"""The worlds the walkthrough draws and diagnoses (no training): the spiral world and one
world per broken condition, all at the walkthrough's ρ."""

from __future__ import annotations

import numpy as np
from scipy import special

from identlab.core import seeding
from identlab.core.schema import build
from identlab.world.config import WorldConfig

__all__ = ["PLOT_SEED", "world_config", "drift", "walkthrough_worlds",
           "r2_of_gaussianized"]

PLOT_SEED = 0  # root of the world-picture and diagnostics streams


def world_config(rho: float, latent: str = "gaussian",
                 dynamics: dict | None = None) -> WorldConfig:
    """A 2-D spiral world with ``latent`` law and ``dynamics`` (default OU at ``rho``)."""
    return build(WorldConfig, {"dim": 2, "latent": {"kind": latent},
                               "dynamics": dynamics or {"kind": "ou", "rho": rho},
                               "mixer": {"kind": "spiral"}})


def drift(rho: float, target: str, strength: float) -> dict:
    """``drift`` dynamics: OU at ``rho`` whose mean or log-scale moves linearly."""
    return {"kind": "drift", "rho": rho, "target": target, "schedule": "linear",
            "strength": strength}


def walkthrough_worlds(rho: float) -> dict[str, object]:
    """One World per kind of world the walkthrough trains on (seed PLOT_SEED)."""
    from identlab.world.world import World

    specs = {
        "spiral, Gaussian OU": {},
        "Laplace AR": {"latent": "laplace", "dynamics": {"kind": "laplace_ar", "rho": rho}},
        "mean drift, strength 2": {"dynamics": drift(rho, "mean", 2.0)},
        "uniform copula OU": {"latent": "uniform",
                              "dynamics": {"kind": "copula_ou", "rho": rho}},
        "two timescales (0.99, 0.6)": {"dynamics": {"kind": "ou", "rho": [0.99, 0.6]}},
    }
    return {k: World(world_config(rho, **v), PLOT_SEED) for k, v in specs.items()}


def r2_of_gaussianized(kind: str, n: int, seed: int = PLOT_SEED) -> float:
    """R² = corr(z, u)² between z of law ``kind`` and its per-coordinate Gaussianization
    u = Φ⁻¹(F(z)): what a rotation of the Gaussian coordinates scores linearly."""
    from identlab.core.registry import LATENTS

    latent = world_config(0.5, latent=kind).latent  # the law alone: ρ plays no part
    law = LATENTS.get(kind)(latent, 1)
    z = law.sample(n, seeding.rng(seed, "diagnostics"))[:, 0]
    u = special.ndtri(np.clip(law.cdf(z), 1e-15, 1 - 1e-15))
    return float(np.corrcoef(z, u)[0, 1] ** 2)
