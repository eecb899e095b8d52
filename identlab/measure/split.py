"""The held-out split: which rows fit a regression and which rows score it.

Every fitted score (linear and kNN R², CCA directions, R² against Φ⁻¹(F(z)), the extra
targets, the bulk R², the trajectory R², the warm start's R², R²(x→z)) is fitted on the
first ``fit_fraction`` of the n pairs and scored on the rest. Eval pairs are stacked as
2n rows [x_t; x_t1] (``views=2``): both views of a pair land on the same side, so a
correlated pair never straddles the split, and each side pools its two views (2·n_fit
and 2·(n − n_fit) rows). A set of n single rows (``views=1``: the t-view of the eval
pairs, the warm start's latents) splits the same way.

The fit side holds :func:`n_fit` = round(fit_fraction · n) pairs (the nearest integer,
ties to even: Python's ``round``), one rule for every score. Flooring instead
(``int(fit_fraction · n)``) would lose a pair wherever the float product falls just
below an integer (0.29 · 100 = 28.999…); it gives the same count whenever
fit_fraction · n is an integer, and at fit_fraction 0.5 also on every grid of p² points
(an odd p² is 1 mod 8, so its half rounds down to the even neighbour).
"""

from __future__ import annotations

import numpy as np

__all__ = ["n_fit", "heldout_split"]


def n_fit(n: int, fit_fraction: float) -> int:
    """Pairs (or rows, for one view) on the fit side of a split of n: round(f · n)."""
    return int(round(fit_fraction * n))


def heldout_split(n: int, fit_fraction: float, views: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (fit, test) of the held-out split of n pairs (module docstring).

    ``views=2``: indices into the 2n stacked rows [x_t; x_t1] (fit: the first
    :func:`n_fit` pairs of both views, t rows first; test: the rest, in the same order).
    ``views=1``: indices into n rows of one view (fit: the first :func:`n_fit` rows)."""
    if views not in (1, 2):
        raise ValueError(f"views must be 1 or 2, got {views!r}")
    f = n_fit(n, fit_fraction)
    if views == 1:
        return np.arange(f), np.arange(f, n)
    return np.r_[0:f, n:n + f], np.r_[f:n, n + f:2 * n]
