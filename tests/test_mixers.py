"""Frozen mixers g: z -> x: exact inverses, conditioning, seeding, batching (design §3)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from identlab.core.registry import MIXERS
from identlab.core.schema import ConfigError
from identlab.world import mixers as mx

P_MIN = 1e-3


# (id, kind, params, dim)
MIXER_CASES = [
    ("identity", "identity", {}, 3),
    ("linear_orth", "linear", {}, 5),
    ("linear_cond", "linear", {"mode": "conditioned", "cond_threshold": 8.0}, 5),
    ("mlp_2", "mlp", {}, 2),
    ("mlp_4", "mlp", {}, 4),
    ("mlp_16", "mlp", {}, 16),
    ("mlp_deep_8", "mlp", {"depth": 6, "cond_threshold": 5.0}, 8),
    ("coupling_2", "coupling", {}, 2),
    ("coupling_4", "coupling", {}, 4),
    ("coupling_16", "coupling", {"depth": 6}, 16),
    ("spiral", "spiral", {}, 2),
    ("spiral_2turns", "spiral", {"turns": 2.0}, 2),
    ("banana", "banana", {}, 2),
    ("sinusoid", "sinusoid", {}, 2),
]
IDS = [c[0] for c in MIXER_CASES]
SEEDED = [c for c in MIXER_CASES if c[1] in ("linear", "mlp", "coupling")]


def make(kind: str, params: dict, dim: int, seed: int = 0) -> mx.Mixer:
    cls = MIXERS.get(kind)
    return cls(cls.Params(**params), dim, np.random.default_rng(seed))


@functools.cache
def cached(kind: str, items: tuple, dim: int, seed: int) -> mx.Mixer:
    """make(), memoized for property tests that revisit a few mixer seeds."""
    return make(kind, dict(items), dim, seed)


def test_every_registered_kind_is_covered():
    """The cases above exercise every registered mixer kind that has an exact inverse."""
    covered = {c[1] for c in MIXER_CASES}
    missing = {k for k in MIXERS.kinds() if MIXERS.get(k).has_inverse} - covered
    assert not missing


# ---------------------------------------------------------------- inverse
@pytest.mark.parametrize("mid,kind,params,dim", MIXER_CASES, ids=IDS)
@given(mseed=st.integers(0, 3), zseed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([0.1, 1.0, 4.0]))
def test_inverse_of_forward(mid, kind, params, dim, mseed, zseed, scale):
    """inverse(forward(z)) = z in float64 (numpy in, numpy out), for several mixer seeds,
    inputs and input scales; forward keeps the shape."""
    m = cached(kind, tuple(sorted(params.items())), dim, mseed)
    z = scale * np.random.default_rng(zseed).standard_normal((257, dim))
    x = m.forward(z)
    assert isinstance(x, np.ndarray) and x.shape == z.shape and x.dtype == np.float64
    np.testing.assert_allclose(m.inverse(x), z, rtol=1e-10, atol=1e-10 * scale)
    np.testing.assert_allclose(m.forward(m.inverse(x)), x, rtol=1e-10, atol=1e-10 * scale)


@pytest.mark.parametrize("mid,kind,params,dim", MIXER_CASES, ids=IDS)
def test_torch_input_gives_torch_output(mid, kind, params, dim):
    """A torch tensor in gives a tensor out of the same dtype, equal to the numpy path."""
    m = make(kind, params, dim)
    z = np.random.default_rng(1).standard_normal((64, dim))
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-4)):
        x = m.forward(torch.as_tensor(z, dtype=dtype))
        assert isinstance(x, torch.Tensor) and x.dtype == dtype
        np.testing.assert_allclose(x.double().numpy(), m.forward(z), rtol=tol, atol=tol)


# ---------------------------------------------------------------- conditioning
@pytest.mark.parametrize("dim,threshold", [(2, 1.5), (4, 4.0), (8, 10.0), (16, 40.0)])
def test_mlp_explicit_threshold(dim, threshold):
    """Every layer's realized condition number (recomputed from the weights) is at most
    the given threshold, columns are unit-norm, and the logged values match."""
    m = make("mlp", {"depth": 4, "cond_threshold": threshold}, dim, seed=dim)
    W = m.weights["W"].numpy()
    assert W.shape == (4, dim, dim)
    conds = [float(np.linalg.cond(w)) for w in W]
    assert max(conds) <= threshold
    np.testing.assert_allclose(conds, m.cond, rtol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(W, axis=1), 1.0, rtol=1e-12)
    assert m.info()["threshold"] == pytest.approx(threshold, rel=1e-3)


@pytest.mark.parametrize("dim", [2, 4, 8])
def test_mlp_quantile_threshold(dim):
    """With no explicit threshold it is the cond_quantile (0.25) of cond_draws random
    column-normalized U(−1, 1) matrices: the share of fresh draws under it is 0.25 within
    5 binomial SE (quantile estimated from 200 draws, share measured on 2000)."""
    m = make("mlp", {}, dim, seed=dim)
    rng = np.random.default_rng(1000 + dim)
    draws = rng.uniform(-1, 1, size=(2000, dim, dim))
    draws /= np.linalg.norm(draws, axis=1, keepdims=True)
    share = float(np.mean(np.linalg.cond(draws) <= m.threshold))
    q = m.params.cond_quantile
    se = math.sqrt(q * (1 - q) * (1 / m.params.cond_draws + 1 / 2000))
    assert abs(share - q) < 5 * se
    assert max(float(np.linalg.cond(w)) for w in m.weights["W"].numpy()) <= m.threshold


def test_mlp_unreachable_threshold_raises():
    """A threshold no random layer can meet ends the rejection loop with a ConfigError."""
    with pytest.raises(ConfigError, match="cond_threshold"):
        make("mlp", {"cond_threshold": 1.0, "max_tries": 20}, 4)


@pytest.mark.parametrize("dim", [2, 3, 6])
def test_linear_mixers(dim):
    """linear/orthogonal is orthogonal (cond 1); linear/conditioned meets its threshold."""
    a = make("linear", {}, dim).weights["A"].numpy()
    np.testing.assert_allclose(a.T @ a, np.eye(dim), atol=1e-12)
    b = make("linear", {"mode": "conditioned", "cond_threshold": 3.0}, dim)
    assert np.linalg.cond(b.weights["A"].numpy()) <= 3.0
    assert b.cond[0] <= 3.0


@pytest.mark.parametrize("dim", [2, 4, 16])
def test_coupling_structure(dim):
    """Coupling layers use W = 2·Q with Q orthogonal, and the map preserves volume
    (|det Jacobian| = 1, checked by autograd at a random point)."""
    m = make("coupling", {}, dim, seed=3)
    W = m.weights["W"].numpy()
    for w in W:
        np.testing.assert_allclose(w.T @ w, 4 * np.eye(dim // 2), atol=1e-12)
    z = torch.as_tensor(np.random.default_rng(0).standard_normal(dim))
    jac = torch.autograd.functional.jacobian(lambda v: m.forward(v[None])[0], z)
    assert abs(abs(float(torch.linalg.det(jac))) - 1) < 1e-10


# ---------------------------------------------------------------- seeding
@pytest.mark.parametrize("mid,kind,params,dim", MIXER_CASES, ids=IDS)
def test_same_seed_same_weights(mid, kind, params, dim):
    """Same seed -> bit-identical weights; global numpy and torch RNG untouched."""
    np_state = np.random.get_state()[1].copy()
    torch_state = torch.get_rng_state().clone()
    a, b = make(kind, params, dim, seed=5), make(kind, params, dim, seed=5)
    assert a.weights.keys() == b.weights.keys()
    for k in a.weights:
        assert torch.equal(a.weights[k], b.weights[k])
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)


@pytest.mark.parametrize("mid,kind,params,dim", SEEDED, ids=[c[0] for c in SEEDED])
def test_different_seeds_different_mixers(mid, kind, params, dim):
    """Randomized kinds (linear, mlp, coupling) differ across seeds, in weights and in
    the map itself. (spiral, banana, sinusoid and identity have no random weights.)"""
    a, b = make(kind, params, dim, seed=5), make(kind, params, dim, seed=6)
    z = np.random.default_rng(0).standard_normal((16, dim))
    assert not np.allclose(a.forward(z), b.forward(z))


# ---------------------------------------------------------------- spiral
def test_spiral_preserves_standard_normal():
    """spiral keeps ‖z‖ exactly and maps N(0, I) to N(0, I): each output coordinate passes
    a KS test against N(0, 1) (n = 20000), and the two are uncorrelated (SE 1/√n)."""
    n = 20_000
    m = make("spiral", {}, 2)
    z = np.random.default_rng(7).standard_normal((n, 2))
    x = m.forward(z)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), np.linalg.norm(z, axis=1),
                               rtol=1e-13)
    for i in range(2):
        assert stats.kstest(x[:, i], "norm").pvalue > P_MIN
    assert abs(np.corrcoef(x.T)[0, 1]) < 5 / math.sqrt(n)


def test_gaussianity_check_can_fail():
    """Control: banana does not preserve N(0, I), and the same KS test rejects it."""
    m = make("banana", {}, 2)
    x = m.forward(np.random.default_rng(7).standard_normal((20_000, 2)))
    assert stats.kstest(x[:, 1], "norm").pvalue < P_MIN


def test_two_d_formulas():
    """banana (z₀, z₁ + z₀²), sinusoid (z₀ + sin(1.5 z₁), z₁), spiral R(π‖z‖)z."""
    z = np.random.default_rng(8).standard_normal((100, 2))
    np.testing.assert_allclose(make("banana", {}, 2).forward(z),
                               np.c_[z[:, 0], z[:, 1] + z[:, 0] ** 2], rtol=1e-14)
    np.testing.assert_allclose(make("sinusoid", {}, 2).forward(z),
                               np.c_[z[:, 0] + np.sin(1.5 * z[:, 1]), z[:, 1]], rtol=1e-14)
    th = math.pi * np.linalg.norm(z, axis=1)
    rot = np.c_[np.cos(th) * z[:, 0] - np.sin(th) * z[:, 1],
                np.sin(th) * z[:, 0] + np.cos(th) * z[:, 1]]
    np.testing.assert_allclose(make("spiral", {}, 2).forward(z), rot, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- batching
BATCH = [("identity", [{}] * 3, 3), ("linear", [{}] * 3, 4), ("mlp", [{}] * 3, 4),
         ("mlp", [{"slope": s} for s in (0.1, 0.2, 0.5)], 8), ("coupling", [{}] * 3, 6),
         ("spiral", [{"turns": t} for t in (0.5, 1.0, 2.0)], 2),
         ("banana", [{"bend": b} for b in (0.5, 1.0, -1.0)], 2),
         ("sinusoid", [{"amplitude": a, "frequency": f} for a, f in ((1, 1.5), (0.5, 3),
                                                                      (2, 0.5))], 2)]


@pytest.mark.parametrize("kind,plist,dim", BATCH,
                         ids=[f"{b[0]}_{i}" for i, b in enumerate(BATCH)])
def test_stacked_apply_equals_single_calls(kind, plist, dim):
    """apply / apply_inverse on K stacked members (stack_weights) equal K single-member
    forward / inverse calls, member by member."""
    mixers = [make(kind, p, dim, seed=10 + i) for i, p in enumerate(plist)]
    w = mx.stack_weights(mixers, "cpu", dtype=torch.float64)
    z = torch.as_tensor(np.random.default_rng(9).standard_normal((len(mixers), 50, dim)))
    cls = MIXERS.get(kind)
    x = cls.apply(w, z)
    assert x.shape == z.shape
    for k, m in enumerate(mixers):
        torch.testing.assert_close(x[k], m.forward(z[k]), rtol=1e-12, atol=1e-12)
    back = cls.apply_inverse(w, x)
    torch.testing.assert_close(back, z, rtol=1e-10, atol=1e-10)


def test_stack_weights_default_dtype_float32():
    """stack_weights gives float32 by default, with a leading member axis."""
    w = mx.stack_weights([make("mlp", {}, 4, seed=s) for s in range(3)], "cpu")
    assert w["W"].dtype == torch.float32 and w["W"].shape == (3, 3, 4, 4)
    assert w["slope"].shape == (3,)


# ---------------------------------------------------------------- nonlinearity
def held_out_linear_r2(x: np.ndarray, z: np.ndarray) -> float:
    """Pooled R² of z regressed linearly (with intercept) on x: fit on one half, score on
    the other."""
    half = len(x) // 2
    X = np.c_[np.ones(len(x)), x]
    beta = np.linalg.lstsq(X[:half], z[:half], rcond=None)[0]
    res = z[half:] - X[half:] @ beta
    return 1 - float((res**2).sum() / ((z[half:] - z[half:].mean(0)) ** 2).sum())


NONLINEAR = [("mlp", {"depth": 3}, 8, 0.9), ("spiral", {}, 2, 0.5),
             ("coupling", {}, 4, 0.95), ("banana", {}, 2, 0.95), ("sinusoid", {}, 2, 0.95)]


@pytest.mark.parametrize("kind,params,dim,bound", NONLINEAR, ids=[c[0] for c in NONLINEAR])
def test_mixer_is_nonlinear(kind, params, dim, bound):
    """Linear R² of x -> z stays clearly below 1 (n = 20000, held-out half)."""
    m = make(kind, params, dim, seed=2)
    z = np.random.default_rng(3).standard_normal((20_000, dim))
    assert held_out_linear_r2(m.forward(z), z) < bound


@pytest.mark.parametrize("kind,params,dim", [("identity", {}, 3), ("linear", {}, 4),
                                             ("mlp", {"depth": 1}, 5)])
def test_linear_mixers_have_r2_one(kind, params, dim):
    """Control: for linear maps (identity, linear, one-layer mlp) the same R² is 1."""
    m = make(kind, params, dim, seed=2)
    z = np.random.default_rng(3).standard_normal((2000, dim))
    assert held_out_linear_r2(m.forward(z), z) > 1 - 1e-10


# ---------------------------------------------------------------- dimension checks
@pytest.mark.parametrize("kind", ["spiral", "banana", "sinusoid"])
@pytest.mark.parametrize("dim", [1, 3, 4])
def test_two_d_mixers_refuse_other_dims(kind, dim):
    """check_compat rejects a 2-D mixer in any other dimension, naming the field."""
    cls = MIXERS.get(kind)
    with pytest.raises(ConfigError, match=r"world\.mixer\.kind.*world\.dim = 2"):
        mx.check_compat(cls.Params(), dim, "world.mixer")


@pytest.mark.parametrize("dim", [1, 3, 5])
def test_coupling_refuses_odd_dims(dim):
    """check_compat rejects coupling with an odd dimension."""
    with pytest.raises(ConfigError, match=r"world\.mixer\.kind.*even"):
        mx.check_compat(mx.Coupling.Params(), dim, "world.mixer")


# ---------------------------------------------------------------- volume
def _log_abs_dets(fn, z: torch.Tensor) -> np.ndarray:
    """log |det ∂fn/∂z| at each row of z (n, N), float64."""
    out = []
    for row in z:
        jac = torch.autograd.functional.jacobian(fn, row)
        out.append(torch.linalg.slogdet(jac)[1].item())
    return np.array(out)


@pytest.mark.parametrize("mid,kind,params,dim", MIXER_CASES, ids=IDS)
def test_volume_preserving_flag_is_the_jacobian(mid, kind, params, dim):
    """preserves_volume(params) holds exactly when |det ∂g/∂z| = 1 at every point: the
    attribution compares a volume-preserving encoder on such a mixer with oracles at
    scale 1, so a wrong flag would mislabel runs."""
    m = make(kind, params, dim, seed=1)
    z = 1.5 * torch.randn(12, dim, generator=torch.Generator().manual_seed(3),
                          dtype=torch.float64)
    logdet = _log_abs_dets(lambda v: m.forward(v[None])[0], z)
    flag = type(m).preserves_volume(m.params)
    if flag:
        np.testing.assert_allclose(logdet, 0.0, atol=1e-9)
    else:
        assert np.abs(logdet).max() > 1e-3


def test_matched_encoder_preserves_volume_and_the_mlp_does_not():
    from identlab.core.registry import ENCODERS
    from identlab.learn import encoders  # noqa: F401 (registers the kinds)

    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for kind, expected in (("matched", True), ("mlp", False)):
        cls = ENCODERS.get(kind)
        enc = cls(cls.Params(), 4, 4)
        p = {k: v.double()[None]
             for k, v in enc.init(torch.Generator().manual_seed(1)).items()}
        logdet = _log_abs_dets(
            lambda v, cls=cls, p=p: cls.apply(p, v[None, None])[0, 0], x)
        assert cls.volume_preserving is expected
        if expected:
            np.testing.assert_allclose(logdet, 0.0, atol=1e-9)
        else:
            assert np.abs(logdet).max() > 1e-3
