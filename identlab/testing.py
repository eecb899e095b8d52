"""Conformance checks for plugin kinds, like scikit-learn's ``check_estimator``.

A plugin kind (an encoder, objective, mixer, latent law or dynamics registered with
``@ENCODERS.register(...)`` and friends, :mod:`identlab.core.plugins`) promises more than
its methods' signatures: that member k of a batched ensemble depends on member k alone,
that its byte estimates bound what it holds, that an inverse inverts, that a latent law
is standardized and its ``cdf``/``ppf`` agree with its samples, that a dynamics flagged
stationary keeps the latent law. Each ``check_*`` function below builds the kind at a
small size, verifies those facts and raises :class:`AssertionError` naming the class and
the fact that failed; it returns None when every fact holds. Call them from your own
test suite::

    from identlab.testing import check_objective

    def test_my_objective_conforms():
        check_objective(MyObjective)                       # its default Params()
        check_objective(MyObjective, MyObjective.Params(lam=0.5))

``check_encoder``, ``check_mixer``, ``check_latent`` and ``check_dynamics`` work the
same way (each takes the class, optionally its ``Params`` and a small size);
``check_kind("objective", "my_kind")`` looks a registered kind up by name, and
``check_all()`` checks every kind registered so far (import your plugin module first).
Every check is deterministic (explicit seeds, never global random state) and takes a
fraction of a second for a built-in kind (about a second for a dynamics checked against
all six latent laws). Monte-Carlo comparisons allow ``MC_SIGMAS``
standard errors, so a correct kind fails one only by a (fixed-seed) fluke of odds below
one in a million.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from scipy import special

import identlab.config  # noqa: F401 (registers every built-in kind)
from identlab.core.registry import DYNAMICS, ENCODERS, LATENTS, MIXERS, OBJECTIVES, Registry
from identlab.core.schema import ConfigError, to_dict
from identlab.learn.encoders import stack_params
from identlab.learn.objectives import GaussianityObjective
from identlab.measure.attribution import LossSetting
from identlab.sigreg import random_directions
from identlab.sigreg.terms import GaussianityTerm
from identlab.world.latents import LatentLaw, check_dim
from identlab.world.mixers import stack_weights

__all__ = ["check_encoder", "check_objective", "check_mixer", "check_latent",
           "check_dynamics", "check_kind", "check_all", "BATCH_RTOL", "BATCH_RTOL_F64",
           "INVERSE_RTOL", "MC_SIGMAS", "KS_SCALE", "MC_SAMPLES", "ROUNDTRIP_TOL",
           "MOMENT_RTOL", "GAUSSIAN_CDF_ATOL", "LOGDET_ATOL", "LOGDET_ATOL_F32",
           "NON_MATRIX_BYTES", "EMBEDDING_COPIES"]

# ---- tolerances ---------------------------------------------------------------------
# float32: one member alone vs stacked with others differs only by reduction order
# (~1e-7 relative); 1e-5 leaves room for that and still catches any cross-member term.
BATCH_RTOL = 1e-5
# float64 (mixers): the same comparison, where rounding is ~1e-15 relative.
BATCH_RTOL_F64 = 1e-10
# inverse(forward(z)) in float64 on N(0, I) inputs: rounding (~1e-15) amplified by the
# layers' condition numbers stays far below 1e-6 of max(1, |z|) for a true inverse.
INVERSE_RTOL = 1e-6
# Monte-Carlo checks allow 5 standard errors (two-sided odds ~6e-7 for a correct kind).
MC_SIGMAS = 5.0
# KS: sqrt(n)·D above 2.5 has Kolmogorov odds ~7e-6 for a sample from the stated law.
KS_SCALE = 2.5
# samples of the Monte-Carlo checks on latent laws and dynamics (SE of a mean ~0.007).
MC_SAMPLES = 20_000
# ppf(cdf(z)) = z to 1e-6·(1 + |z|) and cdf(ppf(u)) = u to 1e-9: float64 rounding of an
# exact pair is ~1e-12 where the density is not tiny (bisection, special functions).
ROUNDTRIP_TOL = 1e-6
# moments from the cdf by quadrature (trapezoid on a log grid, error ~1e-6) vs declared.
MOMENT_RTOL = 1e-3
# a law flagged gaussian must have Φ(z/σ) as its cdf, to float64 rounding of ndtr.
GAUSSIAN_CDF_ATOL = 1e-9
# log|det ∂g/∂z| of a volume-preserving map in float64 (rounding ~1e-13).
LOGDET_ATOL = 1e-9
# the same for a plugin encoder that only runs in float32 (rounding ~1e-6).
LOGDET_ATOL_F32 = 1e-4
# Mixer.weight_bytes counts float64 *matrices* (its docstring): scalar and vector weights
# beside them (a slope, a gain) may go uncounted up to this many bytes in all.
NON_MATRIX_BYTES = 256
# an objective's working_bytes counts what it holds *beyond* the encoder's estimate, which
# reserves 4 float32 copies of each embedding coordinate per sample (encoders' 4·dim):
# embedding-sized intermediates of the loss (the concatenated views, a centred copy) may
# use those.
EMBEDDING_COPIES = 4

_IMAGE_SIDE = 32  # frames (3, 32, 32) for image encoders unless in_dim says otherwise
_LOG_GRID = np.concatenate([[0.0], np.geomspace(1e-6, 1e6, 24_001)])  # moments from cdf
_S_GRID = np.linspace(math.log(2.0), 700.0, 20_001)  # moments from ppf: u = e^-s ∈ (0, ½]


# ---- reporting ----------------------------------------------------------------------
class _Check:
    """Failure messages of one check: "check_x(module.Class (kind 'k')): what failed"."""

    def __init__(self, check: str, cls: type, extra: str = "") -> None:
        kind = getattr(cls, "kind", "?")
        self.prefix = (f"{check}({cls.__module__}.{cls.__qualname__} (kind {kind!r})"
                       f"{', ' + extra if extra else ''})")

    def fail(self, what: str):
        raise AssertionError(f"{self.prefix}: {what}")

    def that(self, ok: Any, what: str | Callable[[], str]) -> None:
        if not ok:
            self.fail(what() if callable(what) else what)

    @contextmanager
    def step(self, what: str):
        """Turn an exception of the kind's own code into an AssertionError naming it."""
        try:
            yield
        except AssertionError:
            raise
        except Exception as e:  # noqa: BLE001 (any error of plugin code is a failure)
            raise AssertionError(f"{self.prefix}: {what} raised {type(e).__name__}: "
                                 f"{e}") from e


def _hashable(c: _Check, value: Any, what: str) -> None:
    try:
        hash(value)
    except TypeError as e:
        c.fail(f"{what} = {value!r} is not hashable ({e})")


def _as_int(c: _Check, value: Any, what: str) -> int:
    try:
        out = operator.index(value)
    except TypeError:
        c.fail(f"{what} = {value!r} is not an int")
    c.that(out >= 0, f"{what} = {out} is negative")
    return out


def _rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| relative to max(|b|) (or absolute where b is all zero)."""
    a, b = a.detach().double(), b.detach().double()
    scale = float(b.abs().max()) if b.numel() else 0.0
    return float((a - b).abs().max()) / (scale if scale > 0 else 1.0) if b.numel() else 0.0


def _storage(t: torch.Tensor) -> tuple[int, int]:
    try:
        s = t.untyped_storage()
        return s.data_ptr(), s.nbytes()
    except (RuntimeError, NotImplementedError):  # tensors without a plain storage
        return id(t), t.numel() * t.element_size()


def _saved_bytes(fn: Callable[[], torch.Tensor], exclude: Sequence[torch.Tensor]
                 ) -> tuple[torch.Tensor, int]:
    """(fn(), bytes of the tensors autograd saves for the backward pass of fn, by storage,
    leaving out the storages of ``exclude`` (parameters, inputs) and of the output)."""
    skip = {_storage(t)[0] for t in exclude}
    seen: dict[int, int] = {}

    def pack(t):
        ptr, nbytes = _storage(t)
        if ptr not in skip:
            seen[ptr] = nbytes
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    seen.pop(_storage(out)[0], None)
    return out, sum(seen.values())


def _params_of(cls: type, params: Any) -> Any:
    return cls.Params() if params is None else params


# ---- encoders -----------------------------------------------------------------------
def _encoder_input(cls, in_dim: int, k: int, m: int, g: torch.Generator) -> torch.Tensor:
    if cls.images:
        side = math.isqrt(in_dim // 3)
        return torch.rand(k, m, 3, side, side, generator=g, device=g.device)
    return torch.randn(k, m, in_dim, generator=g, device=g.device)


def check_encoder(cls: type, params: Any = None, *, in_dim: int | None = None, dim: int = 4,
                  members: int = 3, samples: int = 16, seed: int = 0) -> None:
    """Check an :class:`~identlab.learn.encoders.Encoder` class (``params``: its Params,
    default ``cls.Params()``; ``in_dim``: the observation size, default ``dim`` for
    vectors and 3·32·32 for ``images`` encoders).

    Verifies: ``init`` is determined by its generator (equal seeds give equal tensors,
    different seeds different ones) and gives finite floating tensors; ``apply`` on K
    stacked members gives finite (K, M, dim) outputs; batching independence (member k's
    output stacked equals its output alone, and does not change when the other members'
    weights and inputs do); images encoders take uint8 frames as x/255; a gradient
    reaches every parameter tensor of every member; ``working_bytes(params, in_dim, dim,
    samples)`` is at least 4 copies of one member's weights (value, gradient, two AdamW
    moments) plus the activations autograd saves plus the output, at 1 and ``samples``
    samples; ``signature()`` is hashable and equal for equal params;
    ``volume_preserving`` encoders have |det ∂h/∂x| = 1.
    """
    p = _params_of(cls, params)
    c = _Check("check_encoder", cls)
    if in_dim is None:
        in_dim = 3 * _IMAGE_SIDE**2 if cls.images else dim
    with c.step(f"{cls.__name__}(params, in_dim={in_dim}, dim={dim})"):
        enc = cls(p, in_dim, dim)
    gen = lambda s: torch.Generator().manual_seed(seed + s)  # noqa: E731

    # seed determinism
    with c.step("init"):
        a, b, other = enc.init(gen(0)), enc.init(gen(0)), enc.init(gen(1))
    c.that(isinstance(a, dict) and a, lambda: f"init returned {type(a).__name__} "
           f"{a!r:.60}, not a non-empty dict of tensors")
    c.that(a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a),
           "init from two generators with the same seed gave different parameters "
           "(randomness not drawn from the generator passed in?)")
    c.that(other.keys() == a.keys() and all(other[n].shape == a[n].shape for n in a),
           "init with another seed gave parameters of other names or shapes")
    c.that(any(not torch.equal(a[n], other[n]) for n in a),
           "init with different seeds gave identical parameters: every member of an "
           "ensemble would start alike")
    for n, v in a.items():
        c.that(isinstance(v, torch.Tensor) and v.is_floating_point(),
               f"parameter {n!r} is not a floating tensor")
        c.that(bool(torch.isfinite(v).all()), f"parameter {n!r} has non-finite entries")

    # stacked apply: shape, finiteness
    K, M = members, samples
    mem = [enc.init(gen(10 + k)) for k in range(K)]
    P = stack_params(mem)
    x = _encoder_input(cls, in_dim, K, M, gen(100))
    with c.step(f"apply on {K} stacked members"):
        out = cls.apply(P, x)
    c.that(tuple(out.shape) == (K, M, dim),
           f"apply on (K={K}, M={M}) inputs gave shape {tuple(out.shape)}, not {(K, M, dim)}")
    c.that(bool(torch.isfinite(out).all()), "apply gave non-finite outputs")

    # batching independence
    alt = stack_params([enc.init(gen(50 + k)) for k in range(K)])
    x_alt = _encoder_input(cls, in_dim, K, M, gen(101))
    for k in range(K):
        with c.step(f"apply on member {k} alone"):
            alone = cls.apply({n: v[k:k + 1] for n, v in P.items()}, x[k:k + 1])[0]
        d = _rel_diff(out[k], alone)
        c.that(d <= BATCH_RTOL, f"batching independence: member {k}'s output stacked with "
               f"K={K} differs from its output alone by {d:.3g} (relative; tolerance "
               f"{BATCH_RTOL:g})")
        P2 = {n: torch.cat([alt[n][:k], v[k:k + 1], alt[n][k + 1:]]) for n, v in P.items()}
        x2 = torch.cat([x_alt[:k], x[k:k + 1], x_alt[k + 1:]])
        with c.step("apply with other neighbours"):
            moved = cls.apply(P2, x2)[k]
        d = _rel_diff(moved, out[k])
        c.that(d <= BATCH_RTOL, f"batching independence: member {k}'s output changed by "
               f"{d:.3g} (relative; tolerance {BATCH_RTOL:g}) when only the other members' "
               "weights and inputs changed")
    if cls.images:
        frames = (x * 255).round().to(torch.uint8)
        with c.step("apply on uint8 frames"):
            from_u8 = cls.apply(P, frames)
            from_f = cls.apply(P, frames.float() / 255.0)
        d = _rel_diff(from_u8, from_f)
        c.that(d <= BATCH_RTOL, f"uint8 frames gave outputs {d:.3g} (relative) away from "
               "the same frames as float x/255 (images encoders take both)")

    # gradients reach every parameter of every member
    leaves = {n: v.clone().requires_grad_(True) for n, v in P.items()}
    r = torch.randn(K, M, dim, generator=gen(102), device="cpu")
    with c.step("backward through apply"):
        (cls.apply(leaves, x) * r).sum().backward()
    for n, v in leaves.items():
        c.that(v.grad is not None, f"no gradient reaches parameter {n!r}")
        c.that(bool(torch.isfinite(v.grad).all()), f"parameter {n!r} has a non-finite "
               "gradient")
        dead = [k for k in range(K) if not bool(v.grad[k].abs().max() > 0)]
        c.that(not dead, f"the gradient of parameter {n!r} is zero for member(s) {dead}")

    # working-set estimate
    one = {n: v[None].clone().requires_grad_(True) for n, v in mem[0].items()}
    weight = sum(v.numel() * v.element_size() for v in one.values())
    for s in sorted({1, samples}):
        xs = _encoder_input(cls, in_dim, 1, s, gen(103))
        with c.step(f"apply on one member and {s} samples"):
            h, saved = _saved_bytes(lambda xs=xs: cls.apply(one, xs), [*one.values(), xs])
        need = 4 * weight + saved + h.numel() * h.element_size()
        with c.step("working_bytes"):
            declared = _as_int(c, cls.working_bytes(p, in_dim, dim, s),
                               f"working_bytes(params, {in_dim}, {dim}, {s})")
        c.that(declared >= need, f"working_bytes(params, {in_dim}, {dim}, samples={s}) = "
               f"{declared:,} bytes, below what one member measurably holds: 4 x {weight:,} "
               f"bytes of weights (value, gradient, two AdamW moments) + {saved:,} bytes "
               f"of saved activations + {h.numel() * h.element_size():,} bytes of output "
               f"= {need:,}")

    # signature
    with c.step("signature"):
        s1, s2 = enc.signature(), cls(p, in_dim, dim).signature()
    _hashable(c, s1, "signature()")
    c.that(s1 == s2, f"signature() differs between two encoders of equal params: {s1!r} "
           f"vs {s2!r}")

    if getattr(cls, "volume_preserving", False):
        _check_encoder_volume(c, cls, enc, gen, in_dim, dim)


def _logdets(fn: Callable, pts: torch.Tensor) -> np.ndarray:
    return np.array([float(torch.linalg.slogdet(torch.autograd.functional.jacobian(fn, v))[1])
                     for v in pts])


def _check_encoder_volume(c: _Check, cls, enc, gen, in_dim: int, dim: int) -> None:
    c.that(in_dim == dim and not cls.images, f"volume_preserving, but maps {in_dim} "
           f"inputs to {dim} outputs (|det ∂h/∂x| needs a square Jacobian)")
    w = enc.init(gen(7))
    pts = 1.5 * torch.randn(4, in_dim, generator=gen(8), dtype=torch.float64, device="cpu")
    try:
        p64 = {n: v.double()[None] for n, v in w.items()}
        logdet, tol = _logdets(lambda v: cls.apply(p64, v[None, None])[0, 0], pts), LOGDET_ATOL
    except (RuntimeError, TypeError):  # a float32-only plugin: looser tolerance
        p32 = {n: v.float()[None] for n, v in w.items()}
        with c.step("float32 Jacobian of apply"):
            logdet = _logdets(lambda v: cls.apply(p32, v[None, None])[0, 0], pts.float())
        tol = LOGDET_ATOL_F32
    worst = float(np.abs(logdet).max())
    c.that(worst <= tol, f"volume_preserving, but log|det ∂h/∂x| reaches {worst:.3g} "
           f"(tolerance {tol:g})")


# ---- objectives ---------------------------------------------------------------------
def check_objective(cls: type, params: Any = None, *, dim: int = 4, members: int = 3,
                    batch: int = 32, seed: int = 0) -> None:
    """Check an :class:`~identlab.learn.objectives.Objective` class (``params``: its
    Params, default ``cls.Params()``; ``dim``: the embedding size N; ``batch``: B).

    Verifies: ``loss(h_t, h_t1, p_t, dirs, coefs)`` on K stacked members (dirs (K, N, S)
    from :func:`identlab.sigreg.random_directions` when ``uses_directions``, else None;
    ``coefs()`` stacked into (K,) float32 tensors) is a finite (K,) tensor; batching
    independence (member k's loss stacked equals its loss alone, does not change when the
    other members' inputs, directions and coefficients do, and its gradient reaches no
    other member); a finite, non-zero gradient reaches each member's embeddings;
    ``working_bytes(2B)`` is an int covering the activations the loss saves beyond
    ``EMBEDDING_COPIES`` embedding-sized copies; scheduled ``coefs(step, steps)`` keep
    their keys; ``attribution_setting(steps)`` is None or a dict the attribution accepts
    (``lam`` in [0, 1], ``views``, ``scale``, and a ``term`` or ``knots``/``t_max``);
    Gaussianity objectives have a term and a setting; ``label(params)`` is a non-empty
    str; ``signature()`` is hashable and equal for equal params.
    """
    p = _params_of(cls, params)
    c = _Check("check_objective", cls)
    with c.step(f"{cls.__name__}(params, dim={dim})"):
        obj = cls(p, dim)
    gen = lambda s: torch.Generator().manual_seed(seed + s)  # noqa: E731
    K, B, N = members, batch, dim

    with c.step("coefs()"):
        base = obj.coefs()
    c.that(isinstance(base, dict), f"coefs() returned {type(base).__name__}, not a dict")
    for n, v in base.items():
        c.that(isinstance(v, (int, float)) and math.isfinite(v),
               f"coefs()[{n!r}] = {v!r} is not a finite number")

    def stack_coefs(scale: Sequence[float]) -> dict[str, torch.Tensor]:
        return {n: torch.tensor([float(v) * s for s in scale], dtype=torch.float32, device="cpu")
                for n, v in base.items()}

    uses = bool(obj.uses_directions)
    slices = obj.slices
    if uses:
        c.that(slices >= 1, f"uses_directions, but slices = {slices}")

    def draw(s: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        g = gen(s)
        h_t = torch.randn(K, B, N, generator=g, device=g.device)
        # correlated views
        h_t1 = 0.8 * h_t + 0.6 * torch.randn(K, B, N, generator=g, device=g.device)
        dirs = torch.stack([random_directions(N, slices, g) for _ in range(K)]) if uses \
            else None
        return h_t, h_t1, dirs

    h_t, h_t1, dirs = draw(1)
    coefs = stack_coefs([1.0] * K)
    with c.step(f"loss on {K} stacked members"):
        loss = obj.loss(h_t, h_t1, h_t, dirs, coefs)
    c.that(isinstance(loss, torch.Tensor) and tuple(loss.shape) == (K,),
           f"loss on K={K} members gave {getattr(loss, 'shape', type(loss).__name__)}, "
           f"not a ({K},) tensor")
    c.that(bool(torch.isfinite(loss).all()), f"loss is not finite: {loss.tolist()}")
    scale = max(float(loss.abs().max()), 1e-12)

    # batching independence: values
    a_t, a_t1, a_dirs = draw(2)
    for k in range(K):
        one = slice(k, k + 1)
        with c.step(f"loss of member {k} alone"):
            alone = obj.loss(h_t[one], h_t1[one], h_t[one], None if dirs is None
                             else dirs[one], {n: v[one] for n, v in coefs.items()})
        d = abs(float(alone.reshape(-1)[0]) - float(loss[k])) / scale
        c.that(d <= BATCH_RTOL, f"batching independence: member {k}'s loss stacked with "
               f"K={K} ({float(loss[k]):.6g}) differs from its loss alone "
               f"({float(alone.reshape(-1)[0]):.6g}) by {d:.3g} relative (tolerance "
               f"{BATCH_RTOL:g})")

        def mix(ours, theirs, k=k):
            return None if ours is None else torch.cat([theirs[:k], ours[k:k + 1],
                                                        theirs[k + 1:]])

        m_t, m_t1 = mix(h_t, a_t), mix(h_t1, a_t1)
        with c.step("loss with other neighbours"):
            moved = obj.loss(m_t, m_t1, m_t, mix(dirs, a_dirs),
                             stack_coefs([1.0 if j == k else 0.5 for j in range(K)]))
        d = abs(float(moved[k]) - float(loss[k])) / scale
        c.that(d <= BATCH_RTOL, f"batching independence: member {k}'s loss changed by "
               f"{d:.3g} relative (tolerance {BATCH_RTOL:g}) when only the other members' "
               "embeddings, directions and coefficients changed")

    # gradients: reach each member's embeddings, and no other member's
    lt, lt1 = h_t.clone().requires_grad_(True), h_t1.clone().requires_grad_(True)
    with c.step("backward through loss"):
        out = obj.loss(lt, lt1, lt, dirs, coefs)
        g_all = torch.autograd.grad(out.sum(), [lt, lt1], allow_unused=True,
                                    retain_graph=True)
        g_first = torch.autograd.grad(out[0], [lt, lt1], allow_unused=True)
    grads = [g if g is not None else torch.zeros_like(h_t) for g in g_all]
    for g in grads:
        c.that(bool(torch.isfinite(g).all()), "the gradient w.r.t. the embeddings is not "
               "finite")
    dead = [k for k in range(K) if not any(bool(g[k].abs().max() > 0) for g in grads)]
    c.that(not dead, f"no gradient reaches the embeddings of member(s) {dead}")
    own = max(float(g[0].abs().max()) for g in g_first if g is not None) \
        if any(g is not None for g in g_first) else 0.0
    cross = max((float(g[1:].abs().max()) for g in g_first if g is not None), default=0.0)
    c.that(cross <= BATCH_RTOL * max(own, 1e-30), f"batching independence: member 0's "
           f"loss has a gradient {cross:.3g} w.r.t. other members' embeddings (its own: "
           f"{own:.3g})")

    # working set beyond the encoder's
    samples = 2 * B
    o_t, o_t1 = h_t[:1].clone().requires_grad_(True), h_t1[:1].clone().requires_grad_(True)
    o_dirs = None if dirs is None else dirs[:1]
    o_coefs = {n: v[:1] for n, v in coefs.items()}
    with c.step("loss of one member"):
        _, saved = _saved_bytes(lambda: obj.loss(o_t, o_t1, o_t, o_dirs, o_coefs),
                                [o_t, o_t1, *([] if o_dirs is None else [o_dirs]),
                                 *o_coefs.values()])
    with c.step("working_bytes"):
        declared = _as_int(c, obj.working_bytes(samples), f"working_bytes({samples})")
    allowance = EMBEDDING_COPIES * samples * N * h_t.element_size()
    c.that(declared + allowance >= saved, f"working_bytes({samples}) = {declared:,} bytes, "
           f"but the loss of one member saves {saved:,} bytes of activations for its "
           f"backward pass at {samples} samples (beyond the {allowance:,} bytes of "
           f"{EMBEDDING_COPIES} embedding-sized copies the encoder's estimate holds)")

    # schedules
    if obj.scheduled:
        for step in (0, 5, 9):
            with c.step(f"coefs({step}, 10)"):
                at = obj.coefs(step, 10)
            c.that(isinstance(at, dict) and at.keys() == base.keys(),
                   f"coefs({step}, 10) has keys {sorted(at)}, coefs() {sorted(base)}")
            c.that(all(math.isfinite(v) for v in at.values()),
                   f"coefs({step}, 10) = {at} is not finite")

    _check_attribution(c, obj, B)

    with c.step("label(to_dict(params))"):
        label = cls.label(to_dict(p))
    c.that(isinstance(label, str) and label.strip(), f"label(...) = {label!r} is not a "
           "non-empty str")
    with c.step("signature"):
        s1, s2 = obj.signature(), cls(p, dim).signature()
    _hashable(c, s1, "signature()")
    c.that(s1 == s2, f"signature() differs between two objectives of equal params: {s1!r} "
           f"vs {s2!r}")


def _check_attribution(c: _Check, obj, batch: int) -> None:
    with c.step("attribution_setting(100)"):
        setting = obj.attribution_setting(100)
    if isinstance(obj, GaussianityObjective):
        c.that(obj.uses_directions, "a GaussianityObjective whose uses_directions is False")
        with c.step("term()"):
            term = obj.term()
        c.that(isinstance(term, GaussianityTerm), f"term() returned "
               f"{type(term).__name__}, not a GaussianityTerm")
        c.that(setting is not None, "a GaussianityObjective with no attribution_setting "
               "(every such objective gets a verdict)")
    if setting is None:
        return
    c.that(isinstance(setting, dict), f"attribution_setting(100) returned "
           f"{type(setting).__name__}, not a dict or None")
    missing = {"lam", "views", "scale"} - setting.keys()
    c.that(not missing, f"attribution_setting(100) lacks {sorted(missing)}")
    lam = setting["lam"]
    c.that(isinstance(lam, (int, float)) and 0.0 <= lam <= 1.0,
           f"attribution_setting(100)['lam'] = {lam!r} is not in [0, 1]")
    term = setting.get("term")
    if term is not None:
        c.that(isinstance(term, GaussianityTerm), f"attribution_setting(100)['term'] is a "
               f"{type(term).__name__}, not a GaussianityTerm")
    else:
        c.that({"knots", "t_max"} <= setting.keys(), "attribution_setting(100) has neither "
               "a 'term' nor 'knots' and 't_max' (Epps–Pulley's closed form)")
    try:
        LossSetting.of({**setting, "batch": batch})
    except (TypeError, ValueError) as e:
        c.fail(f"the attribution refuses attribution_setting(100) = {setting!r}: {e}")


# ---- mixers -------------------------------------------------------------------------
def _mixer_dim(c: _Check, cls, p, dim: int | None) -> int:
    tried = [dim] if dim is not None else list(dict.fromkeys(
        [2 if cls.two_d else 4, 4, 2, 6, 3, 8]))
    errors = []
    for d in tried:
        try:
            cls.check(p, d, "world.mixer")
            return d
        except ConfigError as e:
            errors.append(f"dim {d}: {e}")
    c.fail("check(params, dim) refuses every dim tried: " + "; ".join(errors))


def check_mixer(cls: type, params: Any = None, *, dim: int | None = None,
                samples: int = 256, seed: int = 0) -> None:
    """Check a :class:`~identlab.world.mixers.Mixer` class (``params``: its Params,
    default ``cls.Params()``; ``dim``: the latent dim, default the first of 2 (2-D
    mixers) / 4, 2, 6, 3, 8 that ``cls.check`` accepts).

    Verifies: equal generator seeds give equal weights (and other seeds weights of the
    same names and shapes, so members stack); ``weight_bytes(params, dim)`` covers the
    matrices ``weights`` holds (as stored; at most ``NON_MATRIX_BYTES`` of scalar or vector
    weights uncounted); ``batch_signature(params)`` hashable, equal for equal params, its
    ``shape_fields`` fields of params; ``obs_dim``, ``data_bytes`` and ``size_estimates``
    well formed; ``eval_targets`` (n, m) arrays. Unless ``rendered`` (then only those
    declared facts are checked, nothing is rendered): ``forward`` gives finite
    (n, obs_dim) arrays; ``data_bytes`` covers the float32 latents and observations of
    the steps it counts; with ``has_inverse``, inverse(forward(z)) = z in float64, else
    ``inverse`` raises NotImplementedError; ``apply``/``apply_inverse`` on
    ``stack_weights`` of 2 members equal each member's own ``forward``/``inverse``;
    volume-preserving params have |det ∂g/∂z| = 1.
    """
    p = _params_of(cls, params)
    d = _mixer_dim(_Check("check_mixer", cls), cls, p, dim)
    c = _Check("check_mixer", cls, f"dim={d}")
    rng = lambda s: np.random.default_rng(seed + s)  # noqa: E731
    with c.step(f"{cls.__name__}(params, {d}, rng)"):
        m1, m2, m3 = cls(p, d, rng(0)), cls(p, d, rng(0)), cls(p, d, rng(1))
    w1, w2, w3 = m1.weights, m2.weights, m3.weights
    c.that(isinstance(w1, dict), f"weights is a {type(w1).__name__}, not a dict")
    c.that(w1.keys() == w2.keys() and all(torch.equal(w1[n], w2[n]) for n in w1),
           "two mixers from generators of equal seeds have different weights")
    c.that(w3.keys() == w1.keys() and all(w3[n].shape == w1[n].shape for n in w1),
           "mixers of other seeds have weights of other names or shapes (cannot stack)")

    # declared sizes
    with c.step("weight_bytes"):
        declared = _as_int(c, cls.weight_bytes(p, d), f"weight_bytes(params, {d})")
    matrices = sum(v.numel() * v.element_size() for v in w1.values() if v.dim() >= 2)
    rest = sum(v.numel() * v.element_size() for v in w1.values() if v.dim() < 2)
    c.that(declared >= matrices, f"weight_bytes(params, {d}) = {declared:,} bytes, but "
           f"its weights hold {matrices:,} bytes of matrices "
           f"({ {n: (tuple(v.shape), str(v.dtype)) for n, v in w1.items()} })")
    c.that(rest <= NON_MATRIX_BYTES, f"its weights hold {rest:,} bytes of scalars and "
           f"vectors that weight_bytes (float64 matrices) does not count; more than "
           f"{NON_MATRIX_BYTES} must be declared")
    with c.step("batch_signature"):
        sig = cls.batch_signature(p)
    _hashable(c, sig, "batch_signature(params)")
    c.that(sig == cls.batch_signature(dataclasses.replace(p)),
           "batch_signature differs between equal params")
    fields = set(p.__dataclass_fields__)
    c.that(set(cls.shape_fields) <= fields, f"shape_fields {cls.shape_fields} name fields "
           f"params lacks: {sorted(set(cls.shape_fields) - fields)}")
    with c.step("obs_dim"):
        obs = _as_int(c, cls.obs_dim(p, d), f"obs_dim(params, {d})")
    c.that(obs >= 1 and m1.out_dim == obs, f"obs_dim(params, {d}) = {obs}, out_dim = "
           f"{m1.out_dim}")
    shape = getattr(m1, "image_shape", None)
    if shape is not None:
        c.that(math.prod(shape) == obs, f"image_shape {shape} does not hold obs_dim = {obs}")
    with c.step("data_bytes"):
        data = _as_int(c, cls.data_bytes(p, d, samples, 4),
                       f"data_bytes(params, {d}, {samples}, 4)")
    with c.step("size_estimates"):
        est = cls.size_estimates(p, d, samples, 4)
    for item in est:
        c.that(isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str),
               f"size_estimates item {item!r} is not a (field, bytes) pair")
        _as_int(c, item[1], f"size_estimates bytes of {item[0]!r}")
    z = np.random.default_rng(seed + 99).standard_normal((samples, d))
    with c.step("eval_targets"):
        targets = m1.eval_targets(z)
    for n, v in targets.items():
        v = np.asarray(v)
        c.that(v.ndim == 2 and len(v) == samples and np.isfinite(v).all(),
               f"eval_targets()[{n!r}] has shape {v.shape} (not ({samples}, m)) or is not "
               "finite")
    if cls.rendered:
        return  # forward renders frames: only the declared facts above are checked

    # forward and inverse, one member
    with c.step("forward"):
        x = m1.forward(z)
    c.that(isinstance(x, np.ndarray) and x.shape == (samples, obs),
           f"forward on ({samples}, {d}) numpy gave {type(x).__name__} of shape "
           f"{getattr(x, 'shape', None)}, not numpy ({samples}, {obs})")
    c.that(np.isfinite(x).all(), "forward gave non-finite observations")
    if cls.has_inverse:
        with c.step("inverse"):
            back = m1.inverse(x)
        err = float(np.abs(back - z).max())
        tol = INVERSE_RTOL * max(1.0, float(np.abs(z).max()))
        c.that(err <= tol, f"inverse(forward(z)) misses z by {err:.3g} (tolerance "
               f"{tol:.3g}, float64, z ~ N(0, I))")
    else:
        try:
            m1.inverse(x)
        except NotImplementedError:
            pass
        else:
            c.fail("has_inverse is False, yet inverse() returned (it must raise "
                   "NotImplementedError)")

    # the training data drawn ahead: 4 steps of `samples` latents and observations, float32
    zf = torch.as_tensor(np.random.default_rng(seed + 96).standard_normal((1, 4 * samples, d)),
                         dtype=torch.float32, device="cpu")
    with c.step("apply on float32 stack_weights"):
        xf = cls.apply(stack_weights([m1], "cpu"), zf)
    held = zf.numel() * zf.element_size() + xf.numel() * xf.element_size()
    c.that(data >= held, f"data_bytes(params, {d}, {samples}, 4) = {data:,} bytes, below "
           f"the {held:,} bytes of 4 x {samples} float32 latents and their observations")

    # batching independence: stacked apply = each member's forward
    pair = [m1, m3]
    zz = torch.as_tensor(np.random.default_rng(seed + 98).standard_normal((2, samples, d)),
                         device="cpu")
    with c.step("apply on stack_weights of 2 members"):
        W = stack_weights(pair, "cpu", dtype=torch.float64)
        xx = cls.apply(W, zz)
    c.that(tuple(xx.shape) == (2, samples, obs), f"apply on 2 stacked members gave shape "
           f"{tuple(xx.shape)}, not {(2, samples, obs)}")
    for k, m in enumerate(pair):
        with c.step(f"forward of member {k}"):
            own = m.forward(zz[k])
        dd = _rel_diff(xx[k], own)
        c.that(dd <= BATCH_RTOL_F64, f"batching independence: apply on 2 stacked members "
               f"differs from member {k}'s own forward by {dd:.3g} (relative; tolerance "
               f"{BATCH_RTOL_F64:g})")
        if cls.has_inverse:
            with c.step("apply_inverse on stacked members"):
                bk = cls.apply_inverse(W, xx)[k]
            dd = _rel_diff(bk, m.inverse(xx[k]))
            c.that(dd <= BATCH_RTOL_F64, f"batching independence: apply_inverse on 2 "
                   f"stacked members differs from member {k}'s own inverse by {dd:.3g}")
    moved = zz.clone()
    moved[1] = torch.as_tensor(np.random.default_rng(seed + 97).standard_normal((samples, d)),
                               device="cpu")
    with c.step("apply with another neighbour input"):
        dd = _rel_diff(cls.apply(W, moved)[0], xx[0])
    c.that(dd <= BATCH_RTOL_F64, f"batching independence: member 0's observations changed "
           f"by {dd:.3g} when only member 1's latents changed")

    if cls.preserves_volume(p):
        pts = 1.5 * torch.randn(6, d, generator=torch.Generator().manual_seed(seed + 3),
                                dtype=torch.float64, device="cpu")
        with c.step("Jacobian of forward"):
            logdet = _logdets(lambda v: m1.forward(v[None])[0], pts)
        worst = float(np.abs(logdet).max())
        c.that(worst <= LOGDET_ATOL, f"preserves_volume(params) is True, but "
               f"log|det ∂g/∂z| reaches {worst:.3g} (tolerance {LOGDET_ATOL:g})")


# ---- latent laws --------------------------------------------------------------------
def _ks(u: np.ndarray) -> np.ndarray:
    """Per column: the Kolmogorov–Smirnov distance of u (n, d) from U(0, 1)."""
    u = np.sort(u, axis=0)
    n = len(u)
    i = np.arange(1, n + 1)[:, None]
    return np.maximum((i / n - u).max(0), (u - (i - 1) / n).max(0))


def _corr_z(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: Pearson r of (a, b) and its standard error by the delta method
    (influence ψ = a'b' − r(a'² + b'²)/2 of standardized a', b'), valid for any law with
    finite fourth moments."""
    a = (a - a.mean(0)) / a.std(0)
    b = (b - b.mean(0)) / b.std(0)
    r = (a * b).mean(0)
    psi = a * b - 0.5 * r * (a * a + b * b)
    return r, psi.std(0) / np.sqrt(len(a))


def _check_moments(c: _Check, z: np.ndarray, std: np.ndarray, kurt: float, what: str) -> None:
    """Monte-Carlo: mean 0 and variance std² within MC_SIGMAS empirical standard errors
    (the variance only when the fourth moment is finite)."""
    n = len(z)
    mean = z.mean(0)
    se = z.std(0) / np.sqrt(n)
    bad = np.abs(mean) > MC_SIGMAS * se
    c.that(not bad.any(), lambda: f"{what}: mean {np.round(mean, 4).tolist()} is not 0 "
           f"within {MC_SIGMAS:g} SE ({np.round(se, 4).tolist()}), n = {n}")
    if not math.isfinite(kurt):
        return  # infinite fourth moment: the sample variance has no usable SE
    dev = (z - mean) ** 2
    var, se_v = dev.mean(0), dev.std(0) / np.sqrt(n)
    bad = np.abs(var - std**2) > MC_SIGMAS * se_v
    c.that(not bad.any(), lambda: f"{what}: variance {np.round(var, 4).tolist()} is not "
           f"std² = {np.round(std**2, 4).tolist()} within {MC_SIGMAS:g} SE "
           f"({np.round(se_v, 4).tolist()}), n = {n}")


def _check_law(c: _Check, law: LatentLaw, z: np.ndarray, what: str) -> None:
    """z (n, dim) has the law: KS distance of cdf(z) from U(0, 1) per dimension."""
    u = np.asarray(law.cdf(z), dtype=np.float64)
    ks = _ks(u)
    crit = KS_SCALE / math.sqrt(len(z))
    c.that((ks <= crit).all(), lambda: f"{what}: the KS distance of cdf(z) from U(0, 1) is "
           f"{np.round(ks, 4).tolist()} (critical {crit:.4f} = {KS_SCALE:g}/√n), so z does "
           "not follow the latent law")


def _tail_moment(law: LatentLaw, power: int, dim: int) -> np.ndarray | None:
    """E|z|^power per dimension from the cdf, ∫ power·z^(power−1)·P(|Z| > z) dz on a log
    grid (the upper tail as 1 − F, so less precise than ``_ppf_moment`` far out); None
    where the integral has not converged by the end of the grid (tails too heavy)."""
    grid = np.repeat(_LOG_GRID[:, None], dim, axis=1)
    lower = np.asarray(law.cdf(-grid), dtype=np.float64)
    upper = 1.0 - np.asarray(law.cdf(grid), dtype=np.float64)
    f = power * grid ** (power - 1) * (lower + upper)
    seg = 0.5 * (f[1:] + f[:-1]) * np.diff(grid, axis=0)
    total = seg.sum(0)
    head = seg[: int(len(seg) * 5 / 6)].sum(0)  # up to z = 1e4 of 1e6
    if not np.all(np.abs(total - head) <= 0.1 * MOMENT_RTOL * np.maximum(np.abs(total), 1)):
        return None
    return total


def _ppf_moment(law: LatentLaw, power: int, dim: int) -> np.ndarray | None:
    """E|z|^power per dimension of a law symmetric about 0, from its ppf:
    2∫_0^½ |ppf(u)|^power du with u = e^(−s) (the tails become exponentially decaying
    integrands in s); None where the integral has not converged (tails too heavy)."""
    u = np.exp(-_S_GRID)
    q = np.asarray(law.ppf(np.repeat(u[:, None], dim, axis=1)), dtype=np.float64)
    finite = np.isfinite(q).all(axis=1)
    n = len(q) if finite.all() else int(np.argmin(finite))  # ppf may overflow deep in a tail
    if n < 1000:
        return None
    f = np.abs(q[:n]) ** power * u[:n, None]
    seg = 0.5 * (f[1:] + f[:-1]) * np.diff(_S_GRID[:n])[:, None]
    total, head = 2 * seg.sum(0), 2 * seg[: len(seg) // 2].sum(0)
    if not np.all(np.abs(total - head) <= 0.1 * MOMENT_RTOL * np.maximum(total, 1.0)):
        return None
    return total


def _seeded(c, what: str, a, same, other) -> None:
    """``a`` and ``same`` drawn from generators of equal seeds must agree, ``other`` (a
    different seed) must not: randomness comes from the generator passed in."""
    c.that(np.array_equal(a, same), f"{what} with generators of equal seeds differs "
           "(randomness not drawn from the generator passed in?)")
    c.that(not np.array_equal(a, other), f"{what} with generators of different seeds is "
           "identical (no randomness drawn?)")


def check_latent(cls: type, params: Any = None, *, dim: int = 3, samples: int = MC_SAMPLES,
                 seed: int = 0) -> None:
    """Check a :class:`~identlab.world.latents.LatentLaw` class (``params``: its Params,
    default ``cls.Params()``; ``dim``: components; ``samples``: the Monte-Carlo size).

    Verifies: ``sample(n, rng)`` is determined by the generator and gives finite
    (n, dim) arrays; the sample is standardized (mean 0, variance ``std**2`` within
    ``MC_SIGMAS`` standard errors, when the fourth moment is finite) and follows ``cdf``
    (Kolmogorov–Smirnov); ``cdf`` is monotone in [0, 1]; ``ppf(cdf(z)) = z`` and
    ``cdf(ppf(u)) = u``; the variance and the fourth moment computed from ``cdf`` equal
    ``std**2`` and ``(excess_kurtosis() + 3)·std**4`` (where the integral converges);
    ``gaussianize(sample)`` is N(0, 1) in mean and variance; a law with the base
    ``gaussianize`` is symmetric; ``gaussian`` holds exactly when the cdf is Φ(z/std)
    (then excess kurtosis 0); ``is_laplace(params)`` laws have the unit-variance
    Laplace cdf.
    """
    p = _params_of(cls, params)
    c = _Check("check_latent", cls)
    try:
        check_dim(p, dim, "world.latent")
    except ConfigError:
        dim = len(getattr(p, "variances", None) or ()) or dim
    with c.step(f"{cls.__name__}(params, {dim})"):
        law = cls(p, dim)
    rng = lambda s: np.random.default_rng(seed + s)  # noqa: E731
    with c.step("sample"):
        z, z_again, z_other = law.sample(samples, rng(0)), law.sample(samples, rng(0)), \
            law.sample(samples, rng(1))
    c.that(isinstance(z, np.ndarray) and z.shape == (samples, dim),
           f"sample({samples}, rng) gave {getattr(z, 'shape', type(z).__name__)}, not "
           f"({samples}, {dim})")
    c.that(np.isfinite(z).all(), "sample gave non-finite values")
    _seeded(c, "sample", z, z_again, z_other)
    std = np.asarray(law.std, dtype=np.float64)
    c.that(std.shape == (dim,) and (std > 0).all() and np.isfinite(std).all(),
           f"std = {std!r} is not {dim} positive numbers")
    with c.step("excess_kurtosis"):
        kurt = float(law.excess_kurtosis())
    c.that(not math.isnan(kurt) and kurt >= -2.0, f"excess_kurtosis() = {kurt} (every law "
           "has at least -2)")

    _check_moments(c, z, std, kurt, f"sample({samples})")
    with c.step("cdf"):
        _check_law(c, law, z, f"sample({samples})")
        grid = np.repeat(np.linspace(-12, 12, 2401)[:, None], dim, axis=1) * std
        F = np.asarray(law.cdf(grid), dtype=np.float64)
    c.that(((F >= 0) & (F <= 1)).all() and (np.diff(F, axis=0) >= 0).all(),
           "cdf is not a non-decreasing function into [0, 1]")

    # ppf and cdf invert each other
    with c.step("ppf(cdf(z))"):
        back = np.asarray(law.ppf(law.cdf(z)), dtype=np.float64)
    err = np.abs(back - z) / (1.0 + np.abs(z))
    c.that(err.max() <= ROUNDTRIP_TOL, f"ppf(cdf(z)) misses z by {err.max():.3g} relative "
           f"(at z = {z.flat[int(err.argmax())]:.4g}; tolerance {ROUNDTRIP_TOL:g})")
    u = np.repeat(np.linspace(1e-6, 1 - 1e-6, 1001)[:, None], dim, axis=1)
    with c.step("cdf(ppf(u))"):
        u_back = np.asarray(law.cdf(law.ppf(u)), dtype=np.float64)
    err = float(np.abs(u_back - u).max())
    c.that(err <= 1e-3 * ROUNDTRIP_TOL, f"cdf(ppf(u)) misses u by {err:.3g} (tolerance "
           f"{1e-3 * ROUNDTRIP_TOL:g})")

    # symmetry (the base gaussianize evaluates the lower tail only) and exact moments
    symmetric = type(law).gaussianize is LatentLaw.gaussianize
    if symmetric:
        asym = float(np.abs(F + F[::-1] - 1.0).max())
        c.that(asym <= 1e-9, f"the base gaussianize needs a law symmetric about 0, but "
               f"cdf(z) + cdf(-z) - 1 reaches {asym:.3g} (override gaussianize)")
    # symmetric laws: from ppf (converges for any finite moment); else from cdf's tails
    source = "ppf" if symmetric else "cdf"
    moment = (lambda k: _ppf_moment(law, k, dim)) if symmetric else \
        (lambda k: _tail_moment(law, k, dim))
    with c.step(f"moments from {source}"):
        m2 = moment(2)
        m4 = moment(4) if math.isfinite(kurt) else None
    if m2 is not None:
        rel = np.abs(m2 / std**2 - 1.0)
        c.that((rel <= MOMENT_RTOL).all(), f"the variance from {source} "
               f"{np.round(m2, 5).tolist()} is not std² = {np.round(std**2, 5).tolist()} "
               "(the law is not standardized)")
    if m4 is not None:
        k4 = m4 / std**4 - 3.0
        c.that((np.abs(k4 - kurt) <= MOMENT_RTOL * (kurt + 3.0)).all(),
               f"excess_kurtosis() = {kurt:.6g}, but the fourth moment from {source} gives "
               f"{np.round(k4, 6).tolist()}")

    with c.step("gaussianize"):
        g = np.asarray(law.gaussianize(z), dtype=np.float64)
    c.that(g.shape == z.shape and np.isfinite(g).all(),
           "gaussianize(sample) is not a finite array of the sample's shape")
    n = len(g)
    gm, gv = g.mean(0), g.var(0)
    c.that((np.abs(gm) <= MC_SIGMAS / math.sqrt(n)).all()
           and (np.abs(gv - 1) <= MC_SIGMAS * math.sqrt(2 / n)).all(),
           lambda: f"gaussianize(sample) has mean {np.round(gm, 4).tolist()} and variance "
           f"{np.round(gv, 4).tolist()}, not N(0, 1) within {MC_SIGMAS:g} SE")

    normal = special.ndtr(grid / std)
    gap = float(np.abs(F - normal).max())
    if law.gaussian:
        c.that(gap <= GAUSSIAN_CDF_ATOL, f"gaussian is True, but cdf differs from "
               f"Φ(z/std) by {gap:.3g}")
        c.that(abs(kurt) <= 1e-12, f"gaussian is True, but excess_kurtosis() = {kurt}")
    else:
        c.that(gap > GAUSSIAN_CDF_ATOL, "cdf is Φ(z/std), but gaussian is False")
    if cls.is_laplace(p):
        lap = np.where(grid < 0, 0.5 * np.exp(math.sqrt(2) * grid),
                       1 - 0.5 * np.exp(-math.sqrt(2) * grid))
        gap = float(np.abs(F - lap).max())
        c.that(gap <= 1e-9, f"is_laplace(params) is True, but cdf differs from the "
               f"unit-variance Laplace cdf by {gap:.3g}")


# ---- dynamics -----------------------------------------------------------------------
def _latents_for(c: _Check, cls, p, dim: int, latent) -> list:
    """Latent params to check the dynamics with: ``latent`` (one or several), else every
    registered latent kind (default params) that ``cls.check`` accepts."""
    if latent is not None:
        chosen = list(latent) if isinstance(latent, (list, tuple)) else [latent]
    else:
        chosen = [LATENTS.get(k).Params() for k in LATENTS.kinds()]
    ok, refused = [], []
    for lp in chosen:
        try:
            cls.check(p, lp, dim, "world.dynamics")
            check_dim(lp, dim, "world.latent")
            ok.append(lp)
        except ConfigError as e:
            if latent is not None:
                c.fail(f"check(params, {lp.kind!r} latent, {dim}) refuses it: {e}")
            refused.append(lp.kind)
    c.that(ok, f"check(params, latent, {dim}) refuses every registered latent law "
           f"({refused})")
    return ok


def check_dynamics(cls: type, params: Any = None, *, latent: Any = None, dim: int = 2,
                   samples: int = MC_SAMPLES, seed: int = 0) -> None:
    """Check a :class:`~identlab.world.dynamics.Dynamics` class (``params``: its Params,
    default ``cls.Params()``; ``latent``: latent Params, or a list of them, default every
    registered latent kind that ``cls.check`` accepts; ``dim``: components, or the length
    of a per-dimension ``rho``).

    Verifies, for each latent law: ``step`` and ``sample_pairs`` are determined by the
    generator, keep the (n, dim) shape and are finite; ``trajectory`` has shape
    (length, n, dim); ``theorem_target()`` is None, ``"z"`` (then the latent is Gaussian
    and the world stationary and additive) or ``"u"`` (then stationary); ``reasons()``
    is empty exactly when stationary and additive; where ``marginal_known``, z_t follows
    the latent law; where ``stationary()``, z_{t+1} follows the latent law (mean,
    variance ``std**2``, Kolmogorov–Smirnov) and the one-step correlation of each
    dimension is ``scalar_rho`` (or the per-dimension ``rho``): of u = gaussianize(z)
    when the target is ``"u"`` (copula worlds), else of z.
    """
    p = _params_of(cls, params)
    c = _Check("check_dynamics", cls)
    rho = getattr(p, "rho", None)
    sizes = {len(v) for v in (rho, *(getattr(lp, "variances", None) for lp in
                                     (latent if isinstance(latent, (list, tuple)) else
                                      [latent]))) if isinstance(v, tuple)}
    if len(sizes) == 1:  # a per-dimension rho or latent variances fix the dim
        dim = sizes.pop()
    with c.step("check"):
        chosen = _latents_for(c, cls, p, dim, latent)
    for lp in chosen:
        lc = _Check("check_dynamics", cls, f"latent {lp.kind!r}")
        with lc.step(f"the {lp.kind!r} latent law"):
            law = LATENTS.get(lp.kind)(lp, dim)
        with lc.step(f"{cls.__name__}(params, latent, {dim})"):
            dyn = cls(p, law, dim)
        _check_dynamics_with(lc, dyn, law, dim, samples, seed)


def _check_dynamics_with(c: _Check, dyn, law, dim: int, n: int, seed: int) -> None:
    rng = lambda s: np.random.default_rng(seed + s)  # noqa: E731
    with c.step("initial"):
        z0, t0 = dyn.initial(64, rng(0))
    with c.step("step"):
        a, b, other = dyn.step(z0, t0, rng(1)), dyn.step(z0, t0, rng(1)), \
            dyn.step(z0, t0, rng(2))
    c.that(isinstance(a, np.ndarray) and a.shape == z0.shape == (64, dim),
           f"step on (64, {dim}) states gave shape {getattr(a, 'shape', None)}")
    c.that(np.isfinite(a).all(), "step gave non-finite states")
    _seeded(c, "step", a, b, other)
    with c.step("sample_pairs"):
        z, z1 = dyn.sample_pairs(n, rng(3))
        pairs = [dyn.sample_pairs(64, rng(5)) for _ in range(2)]
    c.that(z.shape == z1.shape == (n, dim), f"sample_pairs({n}) gave shapes {z.shape}, "
           f"{z1.shape}, not ({n}, {dim})")
    c.that(np.isfinite(z).all() and np.isfinite(z1).all(), "sample_pairs gave non-finite "
           "states")
    c.that(all(np.array_equal(u, v) for u, v in zip(*pairs)), "sample_pairs with "
           "generators of equal seeds differs")
    with c.step("trajectory"):
        tr = dyn.trajectory(3, 5, rng(4))
    c.that(np.shape(tr) == (3, 5, dim), f"trajectory(3, 5) has shape {np.shape(tr)}, not "
           f"(3, 5, {dim})")

    with c.step("flags"):
        stationary, additive = bool(dyn.stationary()), bool(dyn.additive())
        target, reasons = dyn.theorem_target(), dyn.reasons()
    c.that(target in (None, "z", "u"), f"theorem_target() = {target!r}, not None, 'z' or "
           "'u'")
    if target == "z":
        c.that(law.gaussian and stationary and additive, f"theorem_target() = 'z', but "
               f"gaussian={law.gaussian}, stationary={stationary}, additive={additive}")
    if target == "u":
        c.that(stationary, "theorem_target() = 'u' (Gaussian OU in u), but not stationary")
    c.that(isinstance(reasons, list) and all(isinstance(r, str) for r in reasons),
           f"reasons() = {reasons!r} is not a list of str")
    c.that(bool(reasons) == (not (stationary and additive)),
           f"reasons() = {reasons!r} with stationary={stationary}, additive={additive} "
           "(reasons are given exactly when one of them fails)")

    kurt = float(law.excess_kurtosis())
    std = np.asarray(law.std, dtype=np.float64)
    if dyn.marginal_known:
        _check_moments(c, z, std, kurt, "z_t of sample_pairs (marginal_known)")
        _check_law(c, law, z, "z_t of sample_pairs (marginal_known)")
    if not stationary:
        return
    _check_moments(c, z1, std, kurt, "z_t+1 of sample_pairs (stationary)")
    _check_law(c, law, z1, "z_t+1 of sample_pairs (stationary)")
    r_scalar = dyn.scalar_rho
    want = np.full(dim, float(r_scalar)) if r_scalar is not None else \
        np.broadcast_to(np.asarray(dyn.rho, dtype=np.float64), (dim,))
    if target == "u":
        a, b, of = law.gaussianize(z), law.gaussianize(z1), "u = gaussianize(z)"
    else:
        a, b, of = z, z1, "z"
    r, se = _corr_z(a, b)
    bad = np.abs(r - want) > MC_SIGMAS * se
    c.that(not bad.any(), lambda: f"stationary, but the one-step correlation of {of} is "
           f"{np.round(r, 4).tolist()}, not rho = {np.round(want, 4).tolist()} within "
           f"{MC_SIGMAS:g} SE ({np.round(se, 4).tolist()})")


# ---- by registry --------------------------------------------------------------------
_CHECKS: dict[str, tuple[Registry, Callable[..., None]]] = {
    "latent": (LATENTS, check_latent),
    "dynamics": (DYNAMICS, check_dynamics),
    "mixer": (MIXERS, check_mixer),
    "encoder": (ENCODERS, check_encoder),
    "objective": (OBJECTIVES, check_objective),
}
_SECTIONS = {"world.latent": "latent", "world.dynamics": "dynamics", "world.mixer": "mixer",
             "learner.encoder": "encoder", "learner.objective": "objective"}


def check_kind(registry_name: str, kind: str, **kwargs: Any) -> None:
    """Run the check of ``registry_name`` ("latent", "dynamics", "mixer", "encoder",
    "objective", or the config section, e.g. "learner.objective") on its registered
    ``kind`` (keyword arguments go to the check)."""
    name = _SECTIONS.get(registry_name, registry_name)
    if name not in _CHECKS:
        raise ValueError(f"no conformance check for registry {registry_name!r}; have "
                         f"{sorted(_CHECKS)}")
    registry, check = _CHECKS[name]
    if kind not in registry:
        raise ValueError(f"{kind!r} is not a registered {name} kind; have {registry.kinds()}")
    check(registry.get(kind), **kwargs)


def check_all() -> list[str]:
    """Check every kind registered in the five checked registries (import plugin modules
    first). Raises one AssertionError listing every failure; returns the checked kinds as
    "registry/kind"."""
    done, failures = [], []
    for name, (registry, _) in _CHECKS.items():
        for kind in registry.kinds():
            try:
                check_kind(name, kind)
            except AssertionError as e:
                failures.append(str(e))
            done.append(f"{name}/{kind}")
    if failures:
        raise AssertionError(f"{len(failures)} of {len(done)} kinds fail:\n"
                             + "\n".join(failures))
    return done
