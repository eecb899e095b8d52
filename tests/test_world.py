"""World = latent law · dynamics · mixer: assumption flags, reasons, seeding (design §3).

The expected flags are written out by hand from design §3's table, not derived from the
implementation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from identlab.config import load_run
from identlab.core import seeding
from identlab.core.registry import MIXERS
from identlab.core.schema import ConfigError
from identlab.world.world import World

K_SE = 5.0
P_MIN = 1e-3


# (id, latent section, Gaussian?, Laplace?)
LATENTS = [
    ("gaussian", {"kind": "gaussian"}, True, False),
    ("gaussian_aniso", {"kind": "gaussian", "variances": [0.5, 2.0]}, True, False),
    ("gennorm_2", {"kind": "gennorm", "alpha": 2.0}, True, False),
    ("gennorm_1", {"kind": "gennorm", "alpha": 1.0}, False, True),
    ("gennorm_0.5", {"kind": "gennorm", "alpha": 0.5}, False, False),
    ("laplace", {"kind": "laplace"}, False, True),
    ("student_t", {"kind": "student_t", "nu": 5.0}, False, False),
    ("uniform", {"kind": "uniform"}, False, False),
    ("mixture", {"kind": "mixture"}, False, False),
]

# (id, dynamics section, stationary(G), additive(G)): flags as functions of "Gaussian?"
DYNAMICS = [
    ("ou", {"kind": "ou", "rho": 0.9}, lambda g: g, lambda g: True),
    ("ou_per_dim", {"kind": "ou", "rho": [0.5, 0.9]}, lambda g: g, lambda g: True),
    ("laplace_ar", {"kind": "laplace_ar", "rho": 0.9}, lambda g: True, lambda g: True),
    ("copula_ou", {"kind": "copula_ou", "rho": 0.9}, lambda g: True, lambda g: g),
    ("naive_additive", {"kind": "naive_additive", "rho": 0.9}, lambda g: g, lambda g: True),
    ("drift", {"kind": "drift", "rho": 0.9, "strength": 1.0}, lambda g: False,
     lambda g: True),
    ("drift_0", {"kind": "drift", "rho": 0.9, "strength": 0.0}, lambda g: g,
     lambda g: True),
]


def world_cfg(latent: dict, dynamics: dict, mixer: dict | None = None, dim: int = 2):
    return load_run({"world": {"dim": dim, "latent": latent, "dynamics": dynamics,
                               "mixer": mixer or {"kind": "identity"}}}).world


@pytest.mark.parametrize("did,dyn,stat,add", DYNAMICS, ids=[d[0] for d in DYNAMICS])
@pytest.mark.parametrize("lid,lat,gauss,laplace", LATENTS, ids=[x[0] for x in LATENTS])
def test_flags_and_reasons(lid, lat, gauss, laplace, did, dyn, stat, add):
    """Each (latent, dynamics) pair reports the design's gaussian / stationary / additive flags
    of z; the theorem applies in z exactly when all three hold, and otherwise only to a
    copula OU (Gaussian OU in u = Φ⁻¹(F(z))); reasons() is non-empty exactly when it
    does not apply. laplace_ar with a non-Laplace law is refused at config time."""
    if dyn["kind"] == "laplace_ar" and not laplace:
        with pytest.raises(ConfigError, match=r"world\.dynamics\.kind"):
            world_cfg(lat, dyn)
        return
    w = World(world_cfg(lat, dyn), seed=0)
    flags = w.flags
    assert flags.as_dict() == {"gaussian": gauss, "stationary": stat(gauss),
                               "additive": add(gauss)}
    in_z = gauss and stat(gauss) and add(gauss)
    assert (w.theorem_target == "z") is in_z
    assert (w.theorem_target == "u") is (dyn["kind"] == "copula_ou" and not gauss)
    assert w.theorem_applies is (w.theorem_target is not None)
    reasons = w.reasons()
    assert isinstance(reasons, list) and all(isinstance(r, str) and r for r in reasons)
    assert bool(reasons) is (not w.theorem_applies)


def test_theorem_target_over_the_whole_grid():
    """Over the whole grid the theorem applies in z only to Gaussian latents with ou,
    copula_ou, naive_additive or drift at strength 0, in u to every non-Gaussian copula
    OU, and to nothing else (laplace_ar, drift, naive or OU noise on non-Gaussian laws)."""
    target = {}
    for lid, lat, _, laplace in LATENTS:
        for did, dyn, _, _ in DYNAMICS:
            if dyn["kind"] == "laplace_ar" and not laplace:
                continue
            t = World(world_cfg(lat, dyn), 0).theorem_target
            if t is not None:
                target[(lid, did)] = t
    gaussians = ("gaussian", "gaussian_aniso", "gennorm_2")
    dyns = ("ou", "ou_per_dim", "copula_ou", "naive_additive", "drift_0")
    others = {lid for lid, *_ in LATENTS} - set(gaussians)
    assert target == {**{(g, d): "z" for g in gaussians for d in dyns},
                      **{(o, "copula_ou"): "u" for o in others}}


def test_copula_ou_is_gaussian_ou_in_its_target():
    """u = Φ⁻¹(F(z)) of a copula OU world is N(0, 1) per dimension with one-step
    correlation ρ and additive Gaussian innovations u' − ρu independent of u."""
    w = World(world_cfg({"kind": "uniform"}, {"kind": "copula_ou", "rho": 0.9}), 0)
    z_t, z_t1 = w.sample_pairs(40000, np.random.default_rng(3))
    u_t, u_t1 = w.target(z_t), w.target(z_t1)
    assert np.allclose(u_t.mean(0), 0, atol=0.02) and np.allclose(u_t.var(0), 1, atol=0.03)
    for k in range(2):
        assert np.corrcoef(u_t[:, k], u_t1[:, k])[0, 1] == pytest.approx(0.9, abs=0.005)
        eta = u_t1[:, k] - 0.9 * u_t[:, k]
        assert abs(np.corrcoef(eta, u_t[:, k] ** 2)[0, 1]) < 0.02  # no heteroscedasticity
        assert stats.kstest(eta / np.sqrt(1 - 0.81), "norm").pvalue > 1e-3
    assert w.rho == pytest.approx(0.9)


def test_non_gaussian_reason_mentions_law_and_kurtosis():
    """The latent reason names the law's kind and its excess kurtosis."""
    w = World(world_cfg({"kind": "laplace"}, {"kind": "laplace_ar"}), 0)
    assert w.flags.stationary and w.flags.additive
    assert len(w.reasons()) == 1
    assert "laplace" in w.reasons()[0] and "3" in w.reasons()[0]


def test_rho_for_bound():
    """World.rho is the scalar ρ only for OU-type worlds where the theorem applies."""
    assert World(world_cfg({"kind": "gaussian"}, {"kind": "ou", "rho": 0.8}), 0).rho == 0.8
    assert World(world_cfg({"kind": "gaussian"}, {"kind": "ou", "rho": [0.5, 0.8]}),
                 0).rho is None
    assert World(world_cfg({"kind": "laplace"}, {"kind": "ou", "rho": 0.8}), 0).rho is None


# ---------------------------------------------------------------- mixer seeding
@pytest.mark.parametrize("mixer,dim", [({"kind": "mlp", "depth": 3}, 4),
                                       ({"kind": "coupling"}, 4),
                                       ({"kind": "linear"}, 3)])
def test_world_mixer_comes_from_the_mixer_stream(mixer, dim):
    """A world's mixer is drawn from seeding.rng(seed, 'mixer'): same seed -> identical
    weights, different seed -> different, and equal to a mixer built from that stream."""
    cfg = world_cfg({"kind": "gaussian"}, {"kind": "ou"}, mixer, dim)
    a, b, c = World(cfg, 3), World(cfg, 3), World(cfg, 4)
    direct = MIXERS.get(mixer["kind"])(cfg.mixer, dim, seeding.rng(3, "mixer"))
    for k in a.mixer.weights:
        assert torch.equal(a.mixer.weights[k], b.mixer.weights[k])
        assert torch.equal(a.mixer.weights[k], direct.weights[k])
    assert any(not torch.equal(a.mixer.weights[k], c.mixer.weights[k])
               for k in a.mixer.weights)


def test_sample_pairs_and_observe():
    """sample_pairs gives (n, dim) pairs; observe is the mixer's forward map, invertible."""
    w = World(world_cfg({"kind": "gaussian"}, {"kind": "ou", "rho": 0.9},
                        {"kind": "mlp", "depth": 3}, 4), 0)
    z0, z1 = w.sample_pairs(1000, np.random.default_rng(0))
    assert z0.shape == z1.shape == (1000, 4)
    x = w.observe(z0)
    np.testing.assert_array_equal(x, w.mixer.forward(z0))
    np.testing.assert_allclose(w.mixer.inverse(x), z0, atol=1e-10)


# ---------------------------------------------------------------- diagnostics
def test_diagnostics_of_a_theorem_world():
    """For a Gaussian OU world the diagnostics show corr ρ (SE (1−ρ²)/√n), kurtosis 0
    (SE √(24/n)), an exact round trip and a KS test of z_t vs z_{t+k} that does not reject."""
    rho = 0.9
    w = World(world_cfg({"kind": "gaussian"}, {"kind": "ou", "rho": rho},
                        {"kind": "spiral"}), 0)
    d = w.diagnostics(n=20_000, k=5)
    n = d["n"]
    assert all(abs(r - rho) < K_SE * (1 - rho**2) / math.sqrt(n) for r in d["one_step_corr"])
    assert all(abs(k) < K_SE * math.sqrt(24 / n) for k in d["kurtosis_tk"])
    assert d["kurtosis_law"] == 0.0
    assert d["roundtrip_err"] < 1e-9
    assert all(p > P_MIN for p in d["ks_pvalue_t_vs_tk"])
    assert d["mixer"]["kind"] == "spiral"


def test_diagnostics_detect_non_stationarity():
    """For Gaussian OU noise on Laplace latents the same diagnostics show it: z_{t+k}'s
    kurtosis falls to ρ^{4k}·3 and the KS test rejects."""
    w = World(world_cfg({"kind": "laplace"}, {"kind": "ou", "rho": 0.8}), 0)
    assert not w.theorem_applies and not w.flags.stationary
    d = w.diagnostics(n=20_000, k=5)
    assert all(p < P_MIN for p in d["ks_pvalue_t_vs_tk"])
    assert all(k < 1.0 for k in d["kurtosis_tk"])
    assert all(k > 2.0 for k in d["kurtosis_t"])


def test_diagnostics_seeded():
    """Diagnostics with the same seed are identical."""
    w = World(world_cfg({"kind": "uniform"}, {"kind": "copula_ou"}), 0)
    assert w.diagnostics(n=2000, k=2, seed=1) == w.diagnostics(n=2000, k=2, seed=1)


# ------------------------------------------------------------------ training runs
@pytest.mark.parametrize("latent,dynamics", [("gaussian", "ou"), ("laplace", "laplace_ar")])
def test_trajectory_pairs_are_one_transition_apart(latent, dynamics):
    """Training pairs from runs of T transitions: the second view is the next state of
    the same run, the one-step correlation is the world's ρ within its SE, the first
    views follow the stationary law, and F = pairs + ⌈pairs/T⌉ states are drawn."""
    from identlab.config import load_run

    rho, pairs, T = 0.9, 40000, 64
    cfg = load_run(None, [f"world.latent.kind={latent}", f"world.dynamics.kind={dynamics}",
                          f"world.dynamics.rho={rho}"])
    w = World(cfg.world, 0)
    z, a, b = w.train_frames(pairs, T, np.random.default_rng(0))
    assert len(z) == pairs + -(-pairs // T) and np.array_equal(b, a + 1)
    assert np.all(a % (T + 1) < T)  # never the last state of a run
    zt, zt1 = z[a], z[b]
    n_eff = pairs * (1 - rho**2) / (1 + rho**2)  # AR(1) overlap within the runs
    se = (1 - rho**2) / np.sqrt(n_eff)
    for i in range(w.dim):
        assert abs(np.corrcoef(zt[:, i], zt1[:, i])[0, 1] - rho) < 5 * se
        assert abs(zt[:, i].var() - 1.0) < 5 * np.sqrt(2 / n_eff)


def test_independent_pairs_when_trajectory_is_one():
    from identlab.config import load_run

    w = World(load_run(None, []).world, 0)
    z, a, b = w.train_frames(100, 1, np.random.default_rng(0))
    zt, zt1 = w.sample_pairs(100, np.random.default_rng(0))
    assert np.array_equal(z[a], zt) and np.array_equal(z[b], zt1)
