"""Plugin: the Gaussianity term ``cramer_von_mises`` (sliced Cramér–von Mises) and the
objective ``lejepa_cvm`` = (1 − λ)·alignment + λ·CvM. Load it with this folder on PYTHONPATH:
``plugins: [sliced_cvm]`` or ``--plugin sliced_cvm``."""
from dataclasses import dataclass

import torch

from identlab.core.registry import GAUSSIANITY, OBJECTIVES
from identlab.core.schema import interval, param
from identlab.learn.objectives import GaussianityObjective
from identlab.sigreg.terms import GaussianityTerm, slices_param

__version__ = "0.1"


@GAUSSIANITY.register("cramer_von_mises")
class CramerVonMises(GaussianityTerm):
    """M × the CvM distance to N(0, 1) per slice: 1/(12M) + Σ_i (Φ(p_(i)) − (2i−1)/(2M))²."""
    @dataclass(frozen=True)
    class Params:
        kind: str = "cramer_von_mises"

    def slice_stat(self, p):  # (K, M, S) -> (K, S); differentiable in p through Φ
        m = p.shape[1]
        u = torch.special.ndtr(torch.sort(p, dim=1).values)
        mid = torch.arange(1, m + 1, dtype=p.dtype, device=p.device).sub(0.5).div(m)
        return 1 / (12 * m) + ((u - mid[:, None]) ** 2).sum(1)


@OBJECTIVES.register("lejepa_cvm")
class LeJEPACvM(GaussianityObjective):
    """(1 − λ)·alignment + λ·sliced CvM of the pooled views (M = 2B samples)."""
    @dataclass(frozen=True)
    class Params:
        kind: str = "lejepa_cvm"
        lam: float = param(1e-2, check=interval(0.0, 1.0), doc="CvM weight λ in [0, 1]")
        slices: int = slices_param()

    def term(self):
        return CramerVonMises(CramerVonMises.Params())
