"""SIGReg: the sliced Epps–Pulley statistic (DESIGN §4).

For embeddings h (M samples, N dims) and S unit directions a_s, with projections
p = h·a_s and equispaced knots t_j = j·t_max/(K−1), j = 0..K−1, φ(t) = exp(−t²/2):

    err_j   = (mean_m cos(t_j p_m) − φ_j)² + (mean_m sin(t_j p_m))²
    w_j     = trapezoid weight (dt at the ends, 2dt inside: the symmetric integral over
              [−t_max, t_max]) × φ_j
    stat    = M · Σ_j w_j err_j, averaged over the S slices.

At an exact Gaussian its expectation is Σ_j w_j (1 − φ_j²) ≈ 1.05, not 0.

``sigreg_direct`` is the reference formula; faster paths live beside it and are tested
against it.
"""

from __future__ import annotations


import torch

__all__ = ["knot_weights", "gaussian_expectation", "sigreg_direct", "random_directions"]


def knot_weights(knots: int = 17, t_max: float = 3.0, *, dtype=torch.float64,
                 device=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(t, φ(t), w): knot positions, target characteristic function, weights. Each (K,)."""
    t = torch.linspace(0.0, t_max, knots, dtype=dtype, device=device)
    dt = t_max / (knots - 1)
    trap = torch.full((knots,), 2 * dt, dtype=dtype, device=device)
    trap[0] = trap[-1] = dt
    phi = torch.exp(-0.5 * t**2)
    return t, phi, trap * phi


def gaussian_expectation(knots: int = 17, t_max: float = 3.0) -> float:
    """E[stat] for exactly Gaussian samples: Σ_j w_j (1 − φ_j²) (≈ 1.05 at K=17, t_max=3)."""
    _, phi, w = knot_weights(knots, t_max)
    return float((w * (1 - phi**2)).sum())


def random_directions(n_dim: int, slices: int, generator: torch.Generator,
                      dtype=torch.float32) -> torch.Tensor:
    """(N, S) unit directions, uniform on the sphere, from an explicit generator."""
    a = torch.randn(n_dim, slices, generator=generator, dtype=torch.float64,
                    device=generator.device)
    return (a / torch.linalg.vector_norm(a, dim=0, keepdim=True)).to(dtype)


def sigreg_direct(h: torch.Tensor, dirs: torch.Tensor, knots: int = 17,
                  t_max: float = 3.0) -> torch.Tensor:
    """Reference SIGReg. h: (K, M, N), dirs: (K, N, S) -> (K,) statistic per member."""
    t, phi, w = knot_weights(knots, t_max, dtype=h.dtype, device=h.device)
    p = torch.bmm(h, dirs)  # (K, M, S)
    tp = p.unsqueeze(-1) * t  # (K, M, S, J)
    cos_mean = torch.cos(tp).mean(dim=1)  # (K, S, J)
    sin_mean = torch.sin(tp).mean(dim=1)
    err = (cos_mean - phi) ** 2 + sin_mean**2
    m = h.shape[1]
    return m * (err * w).sum(-1).mean(-1)




_IMPLS = {"direct": sigreg_direct}


def get_impl(name: str):
    """The SIGReg function registered as ``name`` (``auto`` picks the fastest eager one)."""
    if name == "auto":
        name = "recurrence" if "recurrence" in _IMPLS else "direct"
    return _IMPLS[name]
