"""The world section of a run config: latent law, dynamics, mixer, dimension."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from identlab.core.registry import DYNAMICS, LATENTS, MIXERS
from identlab.core.schema import interval, param
from identlab.world import dynamics as _dyn
from identlab.world import latents as _lat
from identlab.world import mixers as _mix

__all__ = ["WorldConfig"]


@dataclass(frozen=True)
class WorldConfig:
    """A world: latent law · dynamics · mixer in ``dim`` latent dimensions."""

    dim: int = param(2, check=interval(1), doc="latent dimension N")
    latent: Any = param(registry=LATENTS, factory=lambda: _lat.Gennorm.Params(alpha=2.0),
                        doc="latent law p(z)")
    dynamics: Any = param(registry=DYNAMICS, factory=lambda: _dyn.OU.Params(rho=0.95),
                          doc="transition z_t -> z_{t+1}")
    mixer: Any = param(registry=MIXERS, factory=lambda: _mix.MLPMixer.Params(depth=3),
                       doc="observation map x = g(z)")

    def __post_init__(self) -> None:
        _lat.check_dim(self.latent, self.dim, "world.latent")
        _dyn.check_compat(self.dynamics, self.latent, self.dim, "world.dynamics")
        _mix.check_compat(self.mixer, self.dim, "world.mixer")
