"""The evaluation section of a run config: the held-out set and its protocol."""

from __future__ import annotations

from dataclasses import dataclass

from identlab.core.schema import ConfigError, interval, param

__all__ = ["EvalConfig"]


@dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation set (its own random stream)."""

    n: int = param(10000, check=interval(1), doc="evaluation pairs")
    fit_fraction: float = param(0.5, check=interval(0.0, 1.0, lo_open=True, hi_open=True),
                                doc="share of the eval set used to fit regressions")
    knn: int = param(10, check=interval(1), doc="neighbours for the nonlinear R²")
    sigreg_slices: int = param(256, check=interval(1), doc="slices for sigreg_stat")
    grid: int = param(0, check=interval(0),
                      doc="2-D worlds: also score linear recovery on a regular grid of "
                          "grid x grid latent points over [-grid_range, grid_range]^2 "
                          "(the paper's gennorm protocol; 0: off)")
    grid_range: float = param(3.0, check=interval(0.0, lo_open=True),
                              doc="half-width of the scoring grid")

    def __post_init__(self) -> None:
        if 0 < self.grid < 8:
            raise ConfigError("eval.grid", f"= {self.grid}: use 0 (off) or at least 8 "
                              "points per side")
        n_fit = int(self.n * self.fit_fraction)
        need = max(20, self.knn + 1)  # rows on each side of the split
        if min(n_fit, self.n - n_fit) < need:
            least = int(need / min(self.fit_fraction, 1 - self.fit_fraction)) + 1
            raise ConfigError("eval.n", f"= {self.n}: too small for a held-out split "
                              f"(fit_fraction {self.fit_fraction}); use at least {least}")
