"""Gaussianity terms: the family of sliced tests an objective may weigh against its
alignment term (design §4), as a registry (``GAUSSIANITY``) like the other kinds.

A term sees the projections p = h·a_s of a batch onto S unit directions and returns one
value per slice, in the "M × distance" convention of SIGReg (a statistic that grows with
the batch's M samples when the law is not Gaussian, and stays of order 1 when it is).
Its ``statistic`` is the mean over slices, per member. The attribution (identlab.measure)
evaluates the expected training loss of any term from its ``slice_stat``; Epps–Pulley
also has a closed form there (``closed_form``).

A plugin adds a term by subclassing :class:`GaussianityTerm` with a ``Params``
dataclass and registering it: ``@GAUSSIANITY.register("my_test")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from identlab.core.registry import GAUSSIANITY, SIGREG_IMPLS
from identlab.core.schema import check_in, interval, param
from identlab.sigreg.epps_pulley import get_impl, knot_weights, knots_param, t_max_param

__all__ = ["GaussianityTerm", "EppsPulley", "slices_param"]

# random directions per training step of a sliced term: its default
SLICES = 256


def slices_param():
    """The ``slices`` field of an objective section that runs a sliced Gaussianity term."""
    return param(SLICES, check=interval(1), doc="random directions per step")


class GaussianityTerm:
    """Base class of a sliced Gaussianity test (module docstring)."""

    kind: ClassVar[str]
    # whether identlab.measure has an exact estimator of this term's expected value on a
    # training batch; other terms are estimated from ``slice_stat`` on disjoint batches
    closed_form: ClassVar[bool] = False

    def __init__(self, params) -> None:
        self.params = params

    def signature(self) -> tuple:
        """Structural settings shared by the members of a batched group."""
        return (self.kind, *(getattr(self.params, f) for f in self.params.__dataclass_fields__
                             if f != "kind"))

    def slice_stat(self, p: torch.Tensor) -> torch.Tensor:
        """p (K, M, S) projections -> (K, S) per-slice values."""
        raise NotImplementedError

    def statistic(self, h: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
        """h (K, M, N), dirs (K, N, S) -> (K,): the mean of ``slice_stat`` over slices."""
        return self.slice_stat(torch.bmm(h, dirs)).mean(-1)


_impl_check = check_in(lambda: ["auto", *SIGREG_IMPLS.kinds()])


@GAUSSIANITY.register("epps_pulley")
class EppsPulley(GaussianityTerm):
    """The sliced Epps–Pulley statistic (SIGReg): M · Σ_j w_j |mean_m e^{i t_j p_m} − φ(t_j)|²
    over equispaced knots t_j ∈ [0, t_max], φ(t) = e^{−t²/2}; its implementations are the
    ``SIGREG_IMPLS`` registry."""

    closed_form = True

    @dataclass(frozen=True)
    class Params:
        kind: str = "epps_pulley"
        knots: int = knots_param()
        t_max: float = t_max_param()
        impl: str = param("auto", check=_impl_check, doc="implementation (SIGREG_IMPLS)")

    def slice_stat(self, p):
        t, phi, w = knot_weights(self.params.knots, self.params.t_max, dtype=p.dtype,
                                 device=p.device)
        tp = p.unsqueeze(-1) * t  # (K, M, S, J)
        err = (torch.cos(tp).mean(1) - phi) ** 2 + torch.sin(tp).mean(1) ** 2  # (K, S, J)
        return p.shape[1] * (err * w).sum(-1)

    def statistic(self, h, dirs):
        p = self.params
        return get_impl(p.impl)(h, dirs, p.knots, p.t_max)
