"""SIGReg: the sliced Epps–Pulley statistic (design §4).

For embeddings h (M samples, N dims) and S unit directions a_s, with projections
p = h·a_s and J equispaced knots t_j = j·t_max/(J−1), j = 0..J−1, φ(t) = exp(−t²/2):

    err_j   = (mean_m cos(t_j p_m) − φ_j)² + (mean_m sin(t_j p_m))²
    w_j     = trapezoid weight (dt at the ends, 2dt inside: the symmetric integral over
              [−t_max, t_max]) × φ_j
    stat    = M · Σ_j w_j err_j, averaged over the S slices.

At an exact Gaussian its expectation is Σ_j w_j (1 − φ_j²) ≈ 1.05, not 0.

Every function takes K ensemble members at once, h (K, M, N) and dirs (K, N, S), and returns
(K,); member k's value and gradient depend on h[k], dirs[k] only.

``sigreg_direct`` is the reference formula. ``sigreg_recurrence`` (eager, what ``auto``
picks) and ``sigreg_compiled`` (torch.compile, opt-in) compute the same statistic from one
cos/sin pair per projection; they are tested against the reference. ``benchmark`` times them.
"""

from __future__ import annotations

import functools
import shutil
import statistics
import time
from dataclasses import dataclass

import torch

from identlab.core.registry import SIGREG_IMPLS
from identlab.core.schema import interval, odd_at_least, param

__all__ = ["Quadrature", "QUADRATURE", "knots_param", "t_max_param", "knot_weights",
           "gaussian_expectation", "sigreg_direct", "sigreg_recurrence", "sigreg_compiled",
           "random_directions", "get_impl", "benchmark", "SIGREG_IMPLS"]


@dataclass(frozen=True)
class Quadrature:
    """The knots of the characteristic-function test: K equispaced knots on [0, t_max].
    The one home of their defaults; objectives and metrics take theirs from here."""

    knots: int = param(17, check=odd_at_least(3), doc="equispaced knots on [0, t_max]")
    t_max: float = param(3.0, check=interval(0.0, lo_open=True), doc="largest knot")


QUADRATURE = Quadrature()


def knots_param():
    """The ``knots`` field of a config section that runs SIGReg."""
    return param(QUADRATURE.knots, check=odd_at_least(3), doc="equispaced knots on [0, t_max]")


def t_max_param():
    """The ``t_max`` field of a config section that runs SIGReg."""
    return param(QUADRATURE.t_max, check=interval(0.0, lo_open=True), doc="largest knot")


def knot_weights(knots: int = QUADRATURE.knots, t_max: float = QUADRATURE.t_max, *,
                 dtype=torch.float64,
                 device="cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(t, φ(t), w): knot positions, target characteristic function, weights. Each (J,),
    on ``device`` (the host unless named: never torch's default device)."""
    t = torch.linspace(0.0, t_max, knots, dtype=dtype, device=device)
    dt = t_max / (knots - 1)
    trap = torch.full((knots,), 2 * dt, dtype=dtype, device=device)
    trap[0] = trap[-1] = dt
    phi = torch.exp(-0.5 * t**2)
    return t, phi, trap * phi


def gaussian_expectation(knots: int = QUADRATURE.knots, t_max: float = QUADRATURE.t_max) -> float:
    """E[stat] for exactly Gaussian samples: Σ_j w_j (1 − φ_j²) (≈ 1.05 at J=17, t_max=3)."""
    _, phi, w = knot_weights(knots, t_max)
    return float((w * (1 - phi**2)).sum())


def random_directions(n_dim: int, slices: int, generator: torch.Generator,
                      dtype=torch.float32, leading: tuple[int, ...] = ()) -> torch.Tensor:
    """(*leading, N, S) unit directions, uniform on the sphere, from an explicit generator
    (e.g. ``leading=(steps,)`` draws the directions of several steps at once)."""
    a = torch.randn(*leading, n_dim, slices, generator=generator, dtype=torch.float64,
                    device=generator.device)
    return (a / torch.linalg.vector_norm(a, dim=-2, keepdim=True)).to(dtype)


def sigreg_direct(h: torch.Tensor, dirs: torch.Tensor, knots: int = QUADRATURE.knots,
                  t_max: float = QUADRATURE.t_max) -> torch.Tensor:
    """Reference SIGReg. h: (K, M, N), dirs: (K, N, S) -> (K,) statistic per member."""
    t, phi, w = knot_weights(knots, t_max, dtype=h.dtype, device=h.device)
    p = torch.bmm(h, dirs)  # (K, M, S)
    tp = p.unsqueeze(-1) * t  # (K, M, S, J)
    cos_mean = torch.cos(tp).mean(dim=1)  # (K, S, J)
    sin_mean = torch.sin(tp).mean(dim=1)
    err = (cos_mean - phi) ** 2 + sin_mean**2
    m = h.shape[1]
    return m * (err * w).sum(-1).mean(-1)


# --- fast paths: one transcendental pair per projection ----------------------------------
#
# With θ = dt·p and t_j = j·dt, cos(t_j p) + i sin(t_j p) = z^j for the unit phasor
# z = exp(iθ) = cos θ + i sin θ. Complex multiplication z^{j+1} = z^j · z is the angle-addition
# formula (cos(a+b) = cos a cos b − sin a sin b, sin(a+b) = sin a cos b + cos a sin b), so
# one cos/sin pair per projection gives every knot. Knot 0 contributes exactly nothing
# (cos 0 = 1 = φ_0, sin 0 = 0), so sums run over j = 1..J−1.
#
# With the complex residual e_j = (C̄_j − φ_j) + i S̄_j, where C̄_j + i S̄_j = mean_m z_m^j,
#
#     stat = (M/S) Σ_s Σ_j w_j |e_j|²,
#     ∂stat/∂p_m = (M/S) Σ_j w_j · 2 Re(conj(e_j) · i t_j z_m^j / M)
#                = (2/S) Σ_j w_j t_j [S̄_j cos(t_j p_m) − (C̄_j − φ_j) sin(t_j p_m)],
#
# i.e. Re Σ_j coef_j z_m^j with coef_j = (2/S) w_j t_j · i·conj(e_j) — the same power series
# again, so the backward needs no (K, M, S, J) tensor either.
#
# Rows: p is laid out (K·S, M), one row per (member, slice). Rows never mix, so member k's
# value and gradient depend on h[k], dirs[k] only, and rows can be processed in chunks whose
# working set stays in cache on CPU.

_CHUNK_BYTES = 1 << 23  # bytes of one complex (rows, M) working array per chunk on CPU


def _working_dtype(h: torch.Tensor, dirs: torch.Tensor) -> torch.dtype:
    """Real dtype the fast paths run in: float32 for half types (no complex-half kernels)."""
    dtype = torch.promote_types(h.dtype, dirs.dtype)
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


@functools.lru_cache(maxsize=64)
def _knot_values(knots: int, t_max: float) -> tuple[tuple[float, ...], ...]:
    """(t_j, φ_j, w_j) for j = 1..J−1 as floats (knot 0 contributes nothing)."""
    return tuple(tuple(x[1:].tolist()) for x in knot_weights(knots, t_max))


def _knot_table(knots: int, t_max: float, dtype, device) -> torch.Tensor:
    """Rows t_j, φ_j, w_j for j = 1..J−1: (3, J−1)."""
    return torch.tensor(_knot_values(knots, t_max), dtype=dtype, device=device)


def _row_slices(p: torch.Tensor):
    """Row ranges of p (R, M) with ~_CHUNK_BYTES of complex values each (one range off CPU)."""
    rows, m = p.shape
    if p.device.type != "cpu":
        yield slice(0, rows)
        return
    step = max(1, _CHUNK_BYTES // (m * 2 * p.element_size()))
    for r0 in range(0, rows, step):
        yield slice(r0, min(r0 + step, rows))


def _row_projections(h: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """p = h·a_s laid out one row per (member, slice): (K, M, N), (K, N, S) -> (K·S, M)."""
    k, m, _ = h.shape
    p = torch.bmm(dirs.transpose(1, 2), h.transpose(1, 2))  # (K, S, M)
    return p.reshape(k * dirs.shape[2], m)  # (K·S, M)


def _unit_phasors(p: torch.Tensor, dt: float, out: torch.Tensor | None = None) -> torch.Tensor:
    """z = exp(i·dt·p) = cos(dt·p) + i sin(dt·p): the one transcendental pair per projection."""
    theta = p * dt  # (r, M)
    return torch.complex(torch.cos(theta), torch.sin(theta), out=out)  # (r, M) complex


class _EagerKernels:
    """The recurrence in complex arithmetic, chunked; keeps z = exp(i·dt·p) for backward."""

    @staticmethod
    def moments(p: torch.Tensor, dt: float, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean_m z_m^j for j = 1..n, z): p (R, M) -> (R, n) complex, (R, M) complex."""
        m = p.shape[1]
        z_all = torch.empty(p.shape, dtype=p.dtype.to_complex(), device=p.device)  # (R, M)
        chunks = []
        for rows in _row_slices(p):
            z1 = _unit_phasors(p[rows], dt, out=z_all[rows])  # (r, M)
            sums = [z1.sum(-1)]  # (r,) each
            z = z1
            for j in range(2, n + 1):
                z = z * z1 if j == 2 else z.mul_(z1)  # z^j = z^{j−1}·z (angle addition)
                sums.append(z.sum(-1))
            chunks.append(torch.stack(sums, -1))  # (r, n)
        return torch.cat(chunks) / m, z_all  # (R, n), (R, M)

    @staticmethod
    def series(z_all: torch.Tensor, dt: float, coef: torch.Tensor) -> torch.Tensor:
        """Re Σ_{j=1..n} coef_j z_m^j by Horner: z (R, M), coef (R, n) complex -> (R, M) real.

        Horner's form z·(c_1 + z·(c_2 + … + z·c_n)) costs one multiply-add per knot and,
        since |z| = 1, does not amplify rounding.
        """
        out = torch.empty(z_all.shape, dtype=coef.real.dtype, device=z_all.device)  # (R, M)
        n = coef.shape[1]
        for rows in _row_slices(out):
            z = z_all[rows]  # (r, M)
            c = coef[rows].T.unsqueeze(-1)  # (n, r, 1)
            acc = c[-1].expand_as(z)  # (r, M)
            for j in range(n - 2, -1, -1):
                in_place = j < n - 2  # the first step allocates acc
                acc = torch.addcmul(c[j], acc, z, out=acc if in_place else None)  # c_j + acc·z
            out[rows] = torch.mul(acc, z).real
        return out


class _SIGReg(torch.autograd.Function):
    """SIGReg with a hand-written backward (formulas above); ``kernels`` supply the two
    passes over the projections: ``moments`` (forward) and ``series`` (backward)."""

    @staticmethod
    def forward(h, dirs, knots, t_max, kernels):
        wd = _working_dtype(h, dirs)
        k, m, _ = h.shape
        s = dirs.shape[2]
        _, phi, w = _knot_table(knots, t_max, wd, h.device)  # (J−1,) each
        p = _row_projections(h.to(wd), dirs.to(wd))  # (K·S, M)
        means, saved = kernels.moments(p, t_max / (knots - 1), knots - 1)  # (K·S, J−1)
        resid = means - phi  # e_j = (C̄_j − φ_j) + i S̄_j  # (K·S, J−1)
        err = torch.view_as_real(resid).square().sum(-1)  # |e_j|²  # (K·S, J−1)
        stat = m * (err @ w).view(k, s).mean(-1)  # (K,)
        return stat.to(h.dtype), resid, saved

    @staticmethod
    def setup_context(ctx, inputs, output):
        h, dirs, knots, t_max, kernels = inputs
        _, resid, saved = output
        ctx.save_for_backward(h, dirs, resid, saved)
        ctx.knots, ctx.t_max, ctx.kernels = knots, t_max, kernels
        ctx.mark_non_differentiable(resid, saved)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_stat, _grad_resid, _grad_saved):
        h_in, dirs_in, resid, saved = ctx.saved_tensors
        wd = resid.real.dtype
        h, dirs = h_in.to(wd), dirs_in.to(wd)
        k, m, _ = h.shape
        s = dirs.shape[2]
        t, _, w = _knot_table(ctx.knots, ctx.t_max, wd, h.device)  # (J−1,) each
        g = grad_stat.to(wd).view(k, 1).expand(k, s).reshape(k * s, 1)  # (K·S, 1)
        coef = (1j * resid.conj()) * ((2.0 / s) * w * t) * g  # (K·S, J−1)
        dt = ctx.t_max / (ctx.knots - 1)
        dp = ctx.kernels.series(saved, dt, coef).view(k, s, m)  # ∂stat/∂p  # (K, S, M)
        grad_h = grad_dirs = None
        # products laid out so that BLAS reads dp (K, S, M) row-major (several times faster
        # on CPU than multiplying by dpᵀ)
        if ctx.needs_input_grad[0]:
            grad_h = torch.bmm(dirs, dp).transpose(1, 2)  # (K, N, M) -> (K, M, N)
            grad_h = grad_h.to(h_in.dtype)
        if ctx.needs_input_grad[1]:
            grad_dirs = torch.bmm(dp, h).transpose(1, 2)  # (K, S, N) -> (K, N, S)
            grad_dirs = grad_dirs.to(dirs_in.dtype)
        return grad_h, grad_dirs, None, None, None


def sigreg_recurrence(h: torch.Tensor, dirs: torch.Tensor, knots: int = QUADRATURE.knots,
                      t_max: float = QUADRATURE.t_max) -> torch.Tensor:
    """SIGReg by the angle-addition recurrence: h (K, M, N), dirs (K, N, S) -> (K,).

    Same value and gradient as ``sigreg_direct`` (to float rounding); one cos/sin pair per
    projection instead of ``knots``, and no (K, M, S, J) intermediate: the forward keeps
    only z = exp(i·dt·p) (K·S·M complex values) for the backward. Half inputs run in float32.
    """
    return _SIGReg.apply(h, dirs, knots, t_max, _EagerKernels)[0]


# --- compiled: the same recurrence, fused by torch.compile (opt-in) -----------------------


def _fused_moments(p: torch.Tensor, dt: float, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(C̄_j, S̄_j) for j = 1..n in real arithmetic: p (R, M) -> (R, n), (R, n).

    Written for torch.compile, which fuses the whole recurrence and all 2n means into one
    pass over p (no (R, M) intermediates in memory).
    """
    theta = p * dt  # (R, M)
    c1, s1 = torch.cos(theta), torch.sin(theta)  # (R, M)
    c, s = c1, s1
    cos_means, sin_means = [c.mean(-1)], [s.mean(-1)]  # (R,) each
    for _ in range(n - 1):
        c, s = c * c1 - s * s1, s * c1 + c * s1  # angle addition  # (R, M)
        cos_means.append(c.mean(-1))
        sin_means.append(s.mean(-1))
    return torch.stack(cos_means, -1), torch.stack(sin_means, -1)  # (R, n)


def _fused_series(p: torch.Tensor, dt: float, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Σ_{j=1..n} a_j cos(j·dt·p) + b_j sin(j·dt·p): p (R, M), a, b (R, n) -> (R, M)."""
    theta = p * dt  # (R, M)
    c1, s1 = torch.cos(theta), torch.sin(theta)  # (R, M)
    c, s = c1, s1
    acc = a[:, :1] * c + b[:, :1] * s  # (R, M)
    for j in range(1, a.shape[1]):
        c, s = c * c1 - s * s1, s * c1 + c * s1  # angle addition  # (R, M)
        acc = acc + a[:, j:j + 1] * c + b[:, j:j + 1] * s
    return acc


@functools.cache
def _compiled(fn):
    """``fn`` compiled once per process with dynamic shapes: a group of any size reuses
    the kernels (measured on 2 CPU cores: 67 s for the first shape from a cold cache, one
    recompilation of 29 s when a second shape marks the sizes dynamic, then none)."""
    return torch.compile(fn, fullgraph=True, dynamic=True)


class _CompiledKernels:
    """``_fused_moments`` / ``_fused_series`` through torch.compile; keeps p for backward."""

    @staticmethod
    def moments(p: torch.Tensor, dt: float, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        cos_means, sin_means = _compiled(_fused_moments)(p, dt, n)  # (R, n) each
        return torch.complex(cos_means, sin_means), p

    @staticmethod
    def series(p: torch.Tensor, dt: float, coef: torch.Tensor) -> torch.Tensor:
        # Re(coef · (cos + i sin)) = Re(coef)·cos − Im(coef)·sin
        return _compiled(_fused_series)(p, dt, coef.real.contiguous(), -coef.imag)


def sigreg_compiled(h: torch.Tensor, dirs: torch.Tensor, knots: int = QUADRATURE.knots,
                    t_max: float = QUADRATURE.t_max) -> torch.Tensor:
    """``sigreg_recurrence`` with both passes fused by torch.compile (opt-in: impl="compiled").

    The first call for each shape compiles both kernels (~80 s cold on a 2-core CPU; see
    ``benchmark``'s ``first_call/compiled``), so it pays off only in long runs. On CUDA it
    needs triton.
    """
    return _SIGReg.apply(h, dirs, knots, t_max, _CompiledKernels)[0]


def _compile_available() -> bool:
    """torch.compile's CPU backend needs a C++ compiler; CUDA needs triton."""
    return hasattr(torch, "compile") and shutil.which("g++") is not None


SIGREG_IMPLS.register("direct")(sigreg_direct)
SIGREG_IMPLS.register("recurrence")(sigreg_recurrence)
if _compile_available():
    SIGREG_IMPLS.register("compiled")(sigreg_compiled)

_AUTO = "recurrence"  # fastest eager implementation measured (see ``benchmark``)


def get_impl(name: str):
    """The SIGReg function registered as ``name`` in ``SIGREG_IMPLS``; ``auto`` is the
    fastest eager one, so short runs and tests never wait for a compilation."""
    if name == "auto":
        name = _AUTO
    if name not in SIGREG_IMPLS:
        raise KeyError(f"SIGReg implementation {name!r} unavailable here; have "
                       f"{SIGREG_IMPLS.kinds()}")
    return SIGREG_IMPLS.get(name)


# --- benchmark ----------------------------------------------------------------------------


def _fwd_bwd_ms(fn, h: torch.Tensor, dirs: torch.Tensor, knots: int, t_max: float) -> float:
    """Wall-clock ms of one forward + backward (grad w.r.t. h only, as in training)."""
    sync = torch.cuda.synchronize if h.device.type == "cuda" else (lambda: None)
    h = h.detach().requires_grad_(True)
    sync()
    start = time.perf_counter()
    fn(h, dirs, knots, t_max).sum().backward()
    sync()
    return 1e3 * (time.perf_counter() - start)


def benchmark(K: int, M: int, N: int, S: int, knots: int = QUADRATURE.knots, repeats: int = 15, *,
              impls=None, t_max: float = QUADRATURE.t_max, dtype=torch.float32, device=None,
              seed: int = 0) -> dict[str, float]:
    """Median ms per forward + backward for each implementation, measured interleaved.

    Inputs are N(0, I) embeddings h (K, M, N) and unit directions (K, N, S) from a seeded
    generator. Each round times every implementation once, in a rotated order, so that load
    from other processes hits all of them alike; compare them as ratios of one call. Keys are
    the implementation names (default: every registered one) plus ``first_call/<name>``, the
    first call's ms. For ``compiled`` that includes compiling both kernels for this shape:
    ~80 s cold on a 2-core CPU, a few s when torch's on-disk cache already holds the shape;
    pass ``impls=("direct", "recurrence")`` to skip it.
    """
    names = list(impls or SIGREG_IMPLS.kinds())
    gen = torch.Generator(device=device or "cpu").manual_seed(seed)
    h = torch.randn(K, M, N, generator=gen, dtype=dtype, device=gen.device)  # (K, M, N)
    dirs = torch.stack([random_directions(N, S, gen, dtype) for _ in range(K)])  # (K, N, S)
    out = {f"first_call/{n}": _fwd_bwd_ms(SIGREG_IMPLS.get(n), h, dirs, knots, t_max)
           for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for n in names[r % len(names):] + names[:r % len(names)]:
            times[n].append(_fwd_bwd_ms(SIGREG_IMPLS.get(n), h, dirs, knots, t_max))
    return {**{n: statistics.median(v) for n, v in times.items()}, **out}
