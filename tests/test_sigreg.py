"""Tests for identlab.sigreg: the SIGReg formula and its fast implementations.

The reference ``sigreg_direct`` is itself checked against a plain numpy loop written from
design §4 (so a wrong weight at the ends, a missing factor M or a wrong knot grid fails),
and against the statistics it must have: ≈ Σ w_j (1 − φ_j²) for Gaussian samples, far above
that for Laplace / uniform ones, rotation invariant in expectation over directions. The fast
paths must equal the reference (computed in float64) to 1e-5 relative, values and gradients.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from identlab.sigreg import epps_pulley as sg
from identlab.sigreg import (
    gaussian_expectation,
    get_impl,
    knot_weights,
    random_directions,
    sigreg_direct,
    sigreg_recurrence,
)

EAGER_FAST = ["recurrence"]
RTOL = 1e-5


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------

def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _inputs(k, m, n, s, *, seed=0, dtype=torch.float32, law="normal", scale=1.0, shift=0.0):
    """h (K, M, N) i.i.d. standardised samples of ``law``, dirs (K, N, S) unit directions."""
    g = _gen(seed)
    if law == "normal":
        h = torch.randn(k, m, n, generator=g, dtype=torch.float64)
    else:
        u = torch.rand(k, m, n, generator=g, dtype=torch.float64)
        if law == "uniform":
            h = (u - 0.5) * math.sqrt(12.0)
        elif law == "laplace":  # scale b = 1/√2: variance 2b² = 1
            c = u - 0.5
            h = -torch.sign(c) * torch.log1p(-2 * c.abs()) / math.sqrt(2.0)
        else:
            raise ValueError(law)
    h = (h * scale + shift).to(dtype)  # (K, M, N)
    dirs = torch.stack([random_directions(n, s, g, dtype) for _ in range(k)])  # (K, N, S)
    return h, dirs


def _value_and_grads(fn, h, dirs, knots, t_max, upstream=None):
    """(stat, ∂(upstream·stat)/∂h, ∂(upstream·stat)/∂dirs) for one implementation."""
    h = h.detach().clone().requires_grad_(True)
    dirs = dirs.detach().clone().requires_grad_(True)
    stat = fn(h, dirs, knots, t_max)  # (K,)
    weights = torch.ones_like(stat) if upstream is None else upstream.to(stat.dtype)
    (stat * weights).sum().backward()
    return stat.detach(), h.grad, dirs.grad


def _rel(x: torch.Tensor, ref: torch.Tensor) -> float:
    """Normwise relative error max|x − ref| / max|ref| (ref in float64)."""
    return float((x.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-300))


def _assert_matches_reference(fn, h, dirs, knots, t_max, rtol=RTOL, upstream=None):
    """fn's value and gradients equal sigreg_direct's computed in float64 on the same inputs."""
    ref = _value_and_grads(sigreg_direct, h.double(), dirs.double(), knots, t_max, upstream)
    got = _value_and_grads(fn, h, dirs, knots, t_max, upstream)
    assert got[0].dtype == h.dtype and got[1].dtype == h.dtype
    errors = [_rel(g, r) for g, r in zip(got, ref)]
    assert max(errors) <= rtol, f"relative errors (value, grad h, grad dirs) = {errors}"
    return errors


def _numpy_sigreg(h: np.ndarray, dirs: np.ndarray, knots: int, t_max: float) -> float:
    """design §4 spelled out with loops: one member, h (M, N), dirs (N, S)."""
    m = h.shape[0]
    dt = t_max / (knots - 1)
    per_slice = []
    for a in dirs.T:
        p = h @ a
        total = 0.0
        for j in range(knots):
            t = j * dt
            trapezoid = dt if j in (0, knots - 1) else 2 * dt
            phi = math.exp(-t * t / 2)
            err = (np.cos(t * p).mean() - phi) ** 2 + np.sin(t * p).mean() ** 2
            total += trapezoid * phi * err
        per_slice.append(m * total)
    return float(np.mean(per_slice))


# ---------------------------------------------------------------------------------------
# The formula
# ---------------------------------------------------------------------------------------

def test_gaussian_expectation_matches_independent_computation():
    t = np.linspace(0.0, 3.0, 17)
    dt = t[1] - t[0]
    trapezoid = np.r_[dt, np.full(15, 2 * dt), dt]
    phi = np.exp(-t**2 / 2)
    expected = float(np.sum(trapezoid * phi * (1 - phi**2)))
    assert gaussian_expectation(17, 3.0) == pytest.approx(expected, rel=1e-12)
    assert gaussian_expectation() == pytest.approx(1.05, abs=0.01)
    # the trapezoid rule approximates 2∫_0^3 φ(t)(1 − φ(t)²) dt, known in closed form
    integral = 2 * (math.sqrt(math.pi / 2) * math.erf(3 / math.sqrt(2))
                    - math.sqrt(math.pi / 6) * math.erf(3 * math.sqrt(1.5)))
    assert gaussian_expectation(17, 3.0) == pytest.approx(integral, rel=2e-3)
    assert gaussian_expectation(17, 3.0) != pytest.approx(integral, rel=1e-5)  # still a sum


def test_knot_weights_are_trapezoid_times_phi():
    t, phi, w = knot_weights(5, 2.0)
    np.testing.assert_allclose(t.numpy(), [0.0, 0.5, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(phi.numpy(), np.exp(-t.numpy() ** 2 / 2))
    np.testing.assert_allclose(w.numpy(), np.array([0.5, 1, 1, 1, 0.5]) * phi.numpy())


@given(knots=st.sampled_from([2, 3, 5, 17]), t_max=st.floats(0.5, 5.0),
       m=st.integers(2, 40), n=st.integers(1, 3), s=st.integers(1, 4),
       scale=st.sampled_from([0.3, 1.0, 2.0]), seed=st.integers(0, 2**16))
def test_direct_matches_numpy_loops(knots, t_max, m, n, s, scale, seed):
    h, dirs = _inputs(2, m, n, s, seed=seed, dtype=torch.float64, scale=scale)
    stat = sigreg_direct(h, dirs, knots, t_max)
    for k in range(2):
        expected = _numpy_sigreg(h[k].numpy(), dirs[k].numpy(), knots, t_max)
        assert float(stat[k]) == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_numpy_loops_catch_a_wrong_end_weight():
    """The check above is sensitive to the end weights: doubling the last one shows."""
    h, dirs = _inputs(1, 30, 2, 3, seed=1, dtype=torch.float64, law="uniform")
    t, phi, w = knot_weights(3, 1.0, dtype=torch.float64)
    p = torch.einsum("mn,ns->ms", h[0], dirs[0])[..., None] * t  # (M, S, J)
    err = (torch.cos(p).mean(0) - phi) ** 2 + torch.sin(p).mean(0) ** 2  # (S, J)
    wrong = w.clone()
    wrong[-1] *= 2
    wrong_stat = float(30 * (err * wrong).sum(-1).mean())
    right = _numpy_sigreg(h[0].numpy(), dirs[0].numpy(), 3, 1.0)
    assert float(sigreg_direct(h, dirs, 3, 1.0)[0]) == pytest.approx(right, rel=1e-12)
    assert wrong_stat != pytest.approx(right, rel=1e-3)


# ---------------------------------------------------------------------------------------
# Fast implementations agree with the reference
# ---------------------------------------------------------------------------------------

CASES = [  # K, M, N, S, knots, t_max, law
    (1, 512, 2, 256, 17, 3.0, "normal"),
    (3, 100, 5, 16, 3, 3.0, "normal"),
    (2, 300, 2, 32, 17, 5.0, "uniform"),
    (4, 64, 3, 8, 9, 1.0, "laplace"),
    (1, 4096, 2, 16, 17, 3.0, "normal"),  # large M: float32 rounding of the recurrence
]


@pytest.mark.parametrize("impl", EAGER_FAST)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_fast_matches_direct(impl, dtype, case):
    k, m, n, s, knots, t_max, law = case
    h, dirs = _inputs(k, m, n, s, seed=k * m + s, dtype=dtype, law=law)
    upstream = torch.linspace(0.5, 2.0, k, dtype=torch.float64)  # distinct per member
    errors = _assert_matches_reference(get_impl(impl), h, dirs, knots, t_max, upstream=upstream)
    if dtype == torch.float64:
        assert max(errors) < 1e-12


@pytest.mark.parametrize("impl", EAGER_FAST)
@given(k=st.integers(1, 3), m=st.integers(2, 80), n=st.integers(1, 4), s=st.integers(1, 9),
       knots=st.sampled_from([2, 3, 5, 17]), t_max=st.floats(0.5, 5.0),
       scale=st.sampled_from([0.05, 1.0, 3.0]), shift=st.sampled_from([0.0, 1.5]),
       dtype=st.sampled_from([torch.float32, torch.float64]), seed=st.integers(0, 2**16))
def test_fast_matches_direct_property(impl, k, m, n, s, knots, t_max, scale, shift, dtype,
                                      seed):
    h, dirs = _inputs(k, m, n, s, seed=seed, dtype=dtype, scale=scale, shift=shift)
    _assert_matches_reference(get_impl(impl), h, dirs, knots, t_max)


@pytest.mark.parametrize("impl", EAGER_FAST)
def test_fast_across_chunk_boundaries(impl, monkeypatch):
    """Tiny chunks: many row chunks, the last one ragged."""
    monkeypatch.setattr(sg, "_CHUNK_BYTES", 3 * 50 * 8)  # 3 rows of M=50 complex64
    h, dirs = _inputs(3, 50, 2, 7, seed=5)
    _assert_matches_reference(get_impl(impl), h, dirs, 17, 3.0)


def test_recurrence_gradcheck():
    """The hand-written backward against finite differences (independent of sigreg_direct)."""
    h, dirs = _inputs(2, 12, 2, 3, seed=3, dtype=torch.float64, law="laplace")
    h.requires_grad_(True)
    dirs.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: sigreg_recurrence(a, b, 5, 2.0), (h, dirs))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_recurrence_half_inputs(dtype):
    h, dirs = _inputs(2, 64, 2, 8, seed=2, dtype=dtype)
    stat, gh, _ = _value_and_grads(sigreg_recurrence, h, dirs, 17, 3.0)
    ref, rh, _ = _value_and_grads(sigreg_direct, h.double(), dirs.double(), 17, 3.0)
    assert stat.dtype == dtype and gh.dtype == dtype
    assert _rel(stat, ref) < 1e-2 and _rel(gh, rh) < 1e-2


def test_recurrence_only_h_needs_grad():
    h, dirs = _inputs(2, 40, 2, 5, seed=4)
    h.requires_grad_(True)
    sigreg_recurrence(h, dirs).sum().backward()
    assert h.grad is not None and dirs.grad is None


@pytest.mark.parametrize("impl", EAGER_FAST + ["direct"])
def test_members_are_independent(impl):
    """Member 0's value and gradient ignore member 1's data and the batch size."""
    fn = get_impl(impl)
    h, dirs = _inputs(3, 200, 2, 16, seed=6)
    other_h, other_dirs = _inputs(3, 200, 2, 16, seed=7, law="laplace", scale=3.0)
    h2, dirs2 = h.clone(), dirs.clone()
    h2[1], dirs2[1] = other_h[1], other_dirs[1]
    base = _value_and_grads(fn, h, dirs, 17, 3.0)
    changed = _value_and_grads(fn, h2, dirs2, 17, 3.0)
    alone = _value_and_grads(fn, h[:1], dirs[:1], 17, 3.0)
    assert changed[0][1] != base[0][1]  # member 1 did change
    for got in (changed, alone):
        for a, b in zip(got, base):
            torch.testing.assert_close(a[0], b[0], rtol=1e-6, atol=0.0)


# ---------------------------------------------------------------------------------------
# Statistical behaviour (fixed seeds, tolerances from the spread over repeats)
# ---------------------------------------------------------------------------------------

def _stat_over_repeats(law: str, repeats=128, m=2000, slices=32, seed=10) -> torch.Tensor:
    """SIGReg of ``repeats`` independent samples of size m (batched as members): (repeats,)."""
    h, dirs = _inputs(repeats, m, 2, slices, seed=seed, law=law)
    return sigreg_recurrence(h, dirs).double()


def test_gaussian_samples_match_expectation():
    stats = _stat_over_repeats("normal")
    se = float(stats.std() / math.sqrt(len(stats)))
    assert abs(float(stats.mean()) - gaussian_expectation()) < 4 * se
    assert se < 0.1  # the check is informative: a stat off by 0.4 would fail it


@pytest.mark.parametrize("law", ["laplace", "uniform"])
def test_non_gaussian_samples_are_far_above(law):
    gaussian = _stat_over_repeats("normal")
    other = _stat_over_repeats(law, seed=11)
    spread = float(gaussian.std())
    assert float(other.min()) > gaussian_expectation() + 10 * spread
    assert float(other.mean()) > 5 * gaussian_expectation()


def test_rotation_invariant_in_expectation():
    """E_dirs stat(hQ) = E_dirs stat(h): directions are uniform, Qa is uniform too."""
    g = _gen(12)
    n, repeats, slices = 3, 24, 256
    base = torch.rand(1, 1000, n, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1, .3])
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    draws = {}
    for name, h in (("h", base), ("hQ", base @ q)):
        dirs = torch.stack([random_directions(n, slices, g, torch.float64)
                            for _ in range(repeats)])  # (repeats, N, S)
        draws[name] = sigreg_recurrence(h.expand(repeats, -1, -1), dirs)  # (repeats,)
    se = math.sqrt(sum(float(v.var()) / repeats for v in draws.values()))
    diff = abs(float(draws["h"].mean() - draws["hQ"].mean()))
    assert diff < 4 * se
    # not vacuous: a single direction does see the anisotropy
    axes = torch.eye(n, dtype=torch.float64)[None]  # (1, N, N): the coordinate axes
    per_axis = [float(sigreg_direct(base, axes[..., i:i + 1])) for i in range(n)]
    assert max(per_axis) - min(per_axis) > 20 * se


def test_rotation_equivariance_is_exact():
    """stat(hQ, a) = stat(h, Qa) for the same directions, to rounding."""
    g = _gen(13)
    h, dirs = _inputs(2, 100, 3, 8, seed=13, dtype=torch.float64, law="uniform")
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    torch.testing.assert_close(sigreg_recurrence(h @ q, dirs), sigreg_recurrence(h, q @ dirs))


# ---------------------------------------------------------------------------------------
# Registry and benchmark
# ---------------------------------------------------------------------------------------

def test_get_impl_auto_is_eager_and_known_names_resolve():
    assert get_impl("auto") in (sg.sigreg_direct, sg.sigreg_recurrence)
    assert get_impl("direct") is sigreg_direct
    assert get_impl("recurrence") is sigreg_recurrence
    with pytest.raises(KeyError):
        get_impl("no-such-impl")


def test_benchmark_reports_every_impl():
    res = sg.benchmark(1, 16, 2, 4, knots=5, repeats=2, impls=["direct", "recurrence"])
    assert set(res) == {"direct", "recurrence", "first_call/direct", "first_call/recurrence"}
    assert all(v > 0 for v in res.values())


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside torch.compile
@pytest.mark.skipif("compiled" not in sg.SIGREG_IMPLS, reason="torch.compile unavailable")
def test_compiled_matches_direct():
    """Compiles two kernels (minutes on a small CPU), hence slow."""
    for dtype in (torch.float32, torch.float64):
        h, dirs = _inputs(2, 100, 3, 16, seed=14, dtype=dtype)
        _assert_matches_reference(get_impl("compiled"), h, dirs, 17, 3.0)
