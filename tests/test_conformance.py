"""The conformance checks (identlab.testing): every built-in kind passes its check, and
each check fails on a deliberately broken kind (subclasses of built-ins defined here,
never registered, except one registered for a moment to test check_all)."""

import itertools
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from scipy import special

import identlab.config  # noqa: F401 (registers every built-in kind)
from identlab import testing
from identlab.core.registry import DYNAMICS, ENCODERS, LATENTS, MIXERS, OBJECTIVES
from identlab.learn.encoders import CNNEncoder, MatchedEncoder, MLPEncoder
from identlab.learn.objectives import AlignOnly, InfoNCE, LamSchedule, LeJEPA, Whiten
from identlab.world.dynamics import OU, CopulaOU, Drift, LaplaceAR, NaiveAdditive
from identlab.world.latents import Gaussian, Gennorm, Laplace, LatentLaw, Mixture, StudentT, Uniform
from identlab.world.mixers import Coupling, Identity, Linear, MLPMixer, Reacher, Spiral

# ------------------------------------------------------------------ every built-in kind


BUILTINS = [(name, kind) for name, reg in (("latent", LATENTS), ("dynamics", DYNAMICS),
                                            ("mixer", MIXERS), ("encoder", ENCODERS),
                                            ("objective", OBJECTIVES))
            for kind in reg.kinds()]


@pytest.mark.parametrize(("registry", "kind"), BUILTINS)
def test_builtin_kind_conforms(registry, kind):
    testing.check_kind(registry, kind)


# non-default params that take other code paths of the built-ins
VARIANTS = [
    ("gaussian_aniso", testing.check_latent, Gaussian, Gaussian.Params(variances=(1.0, 4.0, 0.25)),
     {}),
    ("gennorm_laplace", testing.check_latent, Gennorm, Gennorm.Params(alpha=1.0), {}),
    ("gennorm_heavy", testing.check_latent, Gennorm, Gennorm.Params(alpha=0.5), {}),
    ("student_t_3", testing.check_latent, StudentT, StudentT.Params(nu=3.0), {}),
    ("mixture_0.5", testing.check_latent, Mixture, Mixture.Params(separation=0.5), {}),
    ("naive_anchored", testing.check_dynamics, NaiveAdditive,
     NaiveAdditive.Params(views="anchored"), {"latent": Gaussian.Params()}),
    ("drift_off", testing.check_dynamics, Drift, Drift.Params(strength=0.0), {}),
    ("ou_per_dim_rho", testing.check_dynamics, OU, OU.Params(rho=(0.5, 0.9, 0.99)), {}),
    ("ou_aniso", testing.check_dynamics, OU, None,
     {"latent": Gaussian.Params(variances=(1.0, 4.0, 0.25))}),
    ("copula_0.5", testing.check_dynamics, CopulaOU, CopulaOU.Params(rho=0.5),
     {"latent": [Laplace.Params(), Uniform.Params()]}),
    ("laplace_ar_0.3", testing.check_dynamics, LaplaceAR, LaplaceAR.Params(rho=0.3), {}),
    ("linear_conditioned", testing.check_mixer, Linear, Linear.Params(mode="conditioned"), {}),
    ("mlp_deep_8", testing.check_mixer, MLPMixer, MLPMixer.Params(depth=6, cond_threshold=5.0),
     {"dim": 8}),
    ("coupling_6", testing.check_mixer, Coupling, None, {"dim": 6}),
    ("spiral_2turns", testing.check_mixer, Spiral, Spiral.Params(turns=2.0), {}),
    ("reacher_64", testing.check_mixer, Reacher, Reacher.Params(size=64), {}),
    ("cnn_small", testing.check_encoder, CNNEncoder, CNNEncoder.Params(channels=(8, 16),
                                                                       groups=4), {}),
    ("mlp_narrow", testing.check_encoder, MLPEncoder, MLPEncoder.Params(hidden=8, depth=1),
     {"dim": 16}),
    ("matched_6", testing.check_encoder, MatchedEncoder, MatchedEncoder.Params(depth=3),
     {"dim": 6}),
    ("lejepa_per_view", testing.check_objective, LeJEPA,
     LeJEPA.Params(views="per_view", scale="sample", slices=16), {}),
    ("lejepa_ramp", testing.check_objective, LeJEPA,
     LeJEPA.Params(lam=0.5, schedule=LamSchedule(kind="ramp")), {}),
    ("infonce_big_batch", testing.check_objective, InfoNCE, None, {"batch": 256}),
]


@pytest.mark.parametrize("check,cls,params,kwargs", [v[1:] for v in VARIANTS],
                         ids=[v[0] for v in VARIANTS])
def test_builtin_variants_conform(check, cls, params, kwargs):
    check(cls, params, **kwargs)


class _StandardExponential(LatentLaw):
    """A plugin-style asymmetric law, E − 1 with E ~ Exp(1) (mean 0, variance 1, excess
    kurtosis 6), with its own gaussianize: the checks take its moments from the cdf's two
    tails instead of assuming symmetry."""

    kind = "std_exponential"

    @dataclass(frozen=True)
    class Params:
        kind: str = "std_exponential"

    def sample(self, n, rng):
        return rng.exponential(1.0, size=(n, self.dim)) - 1.0

    def excess_kurtosis(self):
        return 6.0

    def cdf(self, z):
        return -np.expm1(-np.maximum(np.asarray(z, dtype=float) + 1.0, 0.0))

    def ppf(self, u):
        return -np.log1p(-np.asarray(u, dtype=float)) - 1.0

    def gaussianize(self, z):
        return special.ndtri(np.clip(self.cdf(z), 1e-300, 1 - 1e-16))


def test_an_asymmetric_plugin_law_conforms():
    testing.check_latent(_StandardExponential)
    broken = type("_Unstandardized", (_StandardExponential,),
                  {"sample": lambda self, n, rng: rng.exponential(1.0, (n, self.dim)) - 0.9,
                   "cdf": lambda self, z: _StandardExponential.cdf(self, np.asarray(z) - 0.1),
                   "ppf": lambda self, u: _StandardExponential.ppf(self, u) + 0.1})
    with pytest.raises(AssertionError, match=r"_Unstandardized.*mean"):
        testing.check_latent(broken)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "known defect of the built-in: naive_additive with views=anchored inherits "
    "marginal_known = True, but its z_t is a one-step perturbation of the law (Laplace: "
    "excess kurtosis 2.51, not 3; KS 0.0165 at n = 400k), not the latent law"))
def test_naive_additive_anchored_declares_a_marginal_it_does_not_have():
    testing.check_dynamics(NaiveAdditive, NaiveAdditive.Params(views="anchored"),
                           latent=Laplace.Params(), samples=100_000)


def test_check_kind_and_check_all():
    testing.check_kind("learner.objective", "lejepa")
    testing.check_kind("mixer", "identity")
    with pytest.raises(ValueError, match="no conformance check"):
        testing.check_kind("learner.predictor", "identity")
    with pytest.raises(ValueError, match="not a registered objective"):
        testing.check_kind("objective", "no_such_kind")


def test_check_all_checks_every_kind_and_names_a_broken_one():
    """check_all checks every registered kind and reports each failure; a broken kind is
    registered for the duration of the test only."""
    name = "conformance_test_broken"
    OBJECTIVES.register(name)(_MemberCoupled)
    try:
        with pytest.raises(AssertionError) as info:
            testing.check_all()
    finally:
        del OBJECTIVES._entries[name]  # the registries have no public unregister
        del _MemberCoupled.kind  # registering set it; inherit Whiten's again
    msg = str(info.value)
    total = 1 + sum(len(r.kinds()) for r in (LATENTS, DYNAMICS, MIXERS, ENCODERS, OBJECTIVES))
    assert msg.startswith(f"1 of {total} kinds fail:\n")
    assert "_MemberCoupled (kind 'conformance_test_broken')" in msg and "batching" in msg
    assert name not in OBJECTIVES


# ------------------------------------------------------------------ broken encoders
SMALL_MLP = MLPEncoder.Params(hidden=16, depth=2)


class _MemberMeanEncoder(MLPEncoder):
    """Member k's output depends on its neighbours: the mean over members is removed."""

    @staticmethod
    def apply(p, x):
        out = MLPEncoder.apply(p, x)
        return out - out.mean(dim=0, keepdim=True)


class _TinyBytesEncoder(MLPEncoder):
    """Declares 1 KiB for a working set of weights alone ~ 4 x 2.5 KiB."""

    @classmethod
    def working_bytes(cls, params, in_dim, dim, samples):
        return 1024


_fresh = itertools.count(1000)


class _IgnoresGeneratorEncoder(MLPEncoder):
    """Draws its weights from a generator of its own, not the one passed in."""

    def init(self, g):
        return super().init(torch.Generator().manual_seed(next(_fresh)))


class _DetachedBiasEncoder(MLPEncoder):
    """No gradient reaches the first bias."""

    @staticmethod
    def apply(p, x):
        return MLPEncoder.apply({**p, "b0": p["b0"].detach()}, x)


class _ShrinkingMatched(MatchedEncoder):
    """Claims volume preservation but halves its output."""

    @staticmethod
    def apply(p, x):
        return 0.5 * MatchedEncoder.apply(p, x)


@pytest.mark.parametrize("cls,match", [
    (_MemberMeanEncoder, r"_MemberMeanEncoder.*batching independence: member 0's output "
                         r"stacked"),
    (_TinyBytesEncoder, r"working_bytes\(params, 4, 4, samples=1\) = 1,024 bytes, below"),
    (_IgnoresGeneratorEncoder, r"same seed gave different parameters"),
    (_DetachedBiasEncoder, r"no gradient reaches parameter 'b0'"),
])
def test_check_encoder_fails_on_broken_encoders(cls, match):
    with pytest.raises(AssertionError, match=match):
        testing.check_encoder(cls, SMALL_MLP)


def test_check_encoder_fails_on_a_false_volume_claim():
    with pytest.raises(AssertionError, match=r"volume_preserving, but log\|det"):
        testing.check_encoder(_ShrinkingMatched)


def test_check_encoder_fails_when_batching_mixes_inputs_of_other_members():
    class _RollsInputs(MLPEncoder):  # member k sees member k+1's inputs
        @staticmethod
        def apply(p, x):
            return MLPEncoder.apply(p, torch.roll(x, 1, dims=0))

    with pytest.raises(AssertionError, match="batching independence"):
        testing.check_encoder(_RollsInputs, SMALL_MLP)


# ------------------------------------------------------------------ broken objectives
class _MemberCoupled(Whiten):
    """Equal loss values, but every member's loss has a gradient w.r.t. the others'."""

    def loss(self, h_t, h_t1, p_t, dirs, coefs):
        out = super().loss(h_t, h_t1, p_t, dirs, coefs)
        nb = out.roll(1)
        return out + (nb - nb.detach())


class _MemberCentred(AlignOnly):
    """Centres the embeddings over the member axis: member k's loss sees the others."""

    def loss(self, h_t, h_t1, p_t, dirs, coefs):
        c = lambda h: h - h.mean(dim=0, keepdim=True)  # noqa: E731
        return super().loss(c(h_t), c(h_t1), c(p_t), dirs, coefs)


class _UndeclaredInfoNCE(InfoNCE):
    """InfoNCE with the declaration it had: nothing for its B x B matrices."""

    def working_bytes(self, samples):
        return 0


class _BadSetting(LeJEPA):
    def attribution_setting(self, steps):
        return {**super().attribution_setting(steps), "lam": 2.0}


class _NoTerm(LeJEPA):
    def attribution_setting(self, steps):
        out = super().attribution_setting(steps)
        del out["knots"]
        return out


class _NoLabel(AlignOnly):
    @classmethod
    def label(cls, params):
        return ""


class _NaNLoss(Whiten):
    def loss(self, h_t, h_t1, p_t, dirs, coefs):
        return super().loss(h_t, h_t1, p_t, dirs, coefs) * float("nan")


@pytest.mark.parametrize("cls,match", [
    (_MemberCoupled, r"_MemberCoupled.*batching independence: member 0's loss has a "
                     r"gradient"),
    (_MemberCentred, r"batching independence: member 0's loss stacked"),
    (_UndeclaredInfoNCE, r"working_bytes\(64\) = 0 bytes, but the loss of one member saves"),
    (_BadSetting, r"\['lam'\] = 2.0 is not in \[0, 1\]"),
    (_NoTerm, r"neither a 'term' nor 'knots' and 't_max'"),
    (_NoLabel, r"label\(...\) = '' is not a non-empty str"),
    (_NaNLoss, r"loss is not finite"),
])
def test_check_objective_fails_on_broken_objectives(cls, match):
    with pytest.raises(AssertionError, match=match):
        testing.check_objective(cls)


# ------------------------------------------------------------------ broken mixers
class _TinyBytesMixer(MLPMixer):
    """Declares 8 bytes for two (3, 4, 4) float64 stacks (768 bytes)."""

    @classmethod
    def weight_bytes(cls, params, dim):
        return 8


class _BadInverse(Linear):
    """'Inverts' with A itself instead of A⁻¹."""

    @staticmethod
    def apply_inverse(weights, x):
        return torch.bmm(x, weights["A"])


class _MemberMeanMixer(Linear):
    """Adds the mean latent over the members to every member's observation."""

    has_inverse = False

    @staticmethod
    def apply(weights, z):
        return torch.bmm(z, weights["A"]) + z.mean(dim=0, keepdim=True)


class _FalseVolume(Linear):
    @classmethod
    def preserves_volume(cls, params):
        return True


class _UndeclaredVector(Identity):
    """Holds 8 KB in a vector that weight_bytes (0) does not count."""

    def __init__(self, params, dim, rng):
        super().__init__(params, dim, rng)
        self.weights = {**self.weights, "pad": torch.zeros(1000, dtype=torch.float64)}


class _TinyDataMixer(Linear):
    """Declares its training data at a quarter of what it is."""

    @classmethod
    def data_bytes(cls, params, dim, samples, chunk):
        return chunk * samples * (cls.obs_dim(params, dim) + dim)


class _InverseDoesNotRaise(Linear):
    has_inverse = False

    def inverse(self, x):
        return x


@pytest.mark.parametrize("cls,params,match", [
    (_TinyBytesMixer, None, r"weight_bytes\(params, 4\) = 8 bytes, but its weights hold "
                            r"768 bytes"),
    (_BadInverse, None, r"inverse\(forward\(z\)\) misses z"),
    (_MemberMeanMixer, None, r"batching independence: apply on 2 stacked members differs"),
    (_FalseVolume, Linear.Params(mode="conditioned"), r"preserves_volume\(params\) is True, "
                                                      r"but log\|det"),
    (_UndeclaredVector, None, r"8,008 bytes of scalars and vectors"),
    (_InverseDoesNotRaise, None, r"has_inverse is False, yet inverse\(\) returned"),
    (_TinyDataMixer, None, r"data_bytes\(params, 4, 256, 4\) = 8,192 bytes, below the "
                           r"32,768 bytes"),
])
def test_check_mixer_fails_on_broken_mixers(cls, params, match):
    with pytest.raises(AssertionError, match=match):
        testing.check_mixer(cls, params)


# ------------------------------------------------------------------ broken latent laws
class _WideGaussian(Gaussian):
    """Samples with standard deviation 1.3 while declaring 1."""

    def sample(self, n, rng):
        return 1.3 * super().sample(n, rng)


class _BadPpfLaplace(Laplace):
    def ppf(self, u):
        return 1.1 * super().ppf(u)


class _UnflaggedGaussian(Gaussian):
    gaussian = False


class _WrongKurtosisUniform(Uniform):
    def excess_kurtosis(self):
        return 0.0


class _OwnRngMixture(Mixture):
    def sample(self, n, rng):
        return super().sample(n, np.random.default_rng())


class _HalfVarianceUniform(Uniform):
    """A uniform law of variance 1/2 whose cdf, ppf and sample agree with each other,
    while std declares 1: not standardized."""

    half = float(np.sqrt(1.5))


@pytest.mark.parametrize("cls,match", [
    (_WideGaussian, r"_WideGaussian.*sample\(20000\): variance \[1\.6"),
    (_BadPpfLaplace, r"ppf\(cdf\(z\)\) misses z"),
    (_UnflaggedGaussian, r"cdf is Φ\(z/std\), but gaussian is False"),
    (_WrongKurtosisUniform, r"excess_kurtosis\(\) = 0, but the fourth moment from ppf gives "
                            r"\[-1\.2"),
    (_OwnRngMixture, r"equal seeds differs"),
    (_HalfVarianceUniform, r"variance"),
])
def test_check_latent_fails_on_broken_laws(cls, match):
    with pytest.raises(AssertionError, match=match):
        testing.check_latent(cls)


# ------------------------------------------------------------------ broken dynamics
class _OverclaimingOU(OU):
    """Claims Gaussian OU noise keeps any latent law (it keeps only mean and variance)."""

    def stationary(self):
        return True

    def reasons(self):
        return []


class _LeakyOU(OU):
    """Half the noise it needs: the variance shrinks at every step."""

    def step(self, z, t, rng):
        return self.rho * z + 0.5 * np.sqrt(1 - self.rho**2) * rng.standard_normal(z.shape)


class _SquaredRhoOU(OU):
    """Stationary, but with one-step correlation ρ² instead of the declared ρ."""

    def step(self, z, t, rng):
        r = self.rho**2
        return r * z + np.sqrt(1 - r**2) * rng.standard_normal(z.shape)


class _OwnRngOU(OU):
    def step(self, z, t, rng):
        return super().step(z, t, np.random.default_rng())


class _ZTargetOU(OU):
    def theorem_target(self):
        return "z"


class _SilentOU(OU):
    def reasons(self):
        return []


@pytest.mark.parametrize("cls,params,latent,match", [
    (_OverclaimingOU, OU.Params(rho=0.5), Uniform.Params(),
     r"latent 'uniform'\): z_t\+1 of sample_pairs \(stationary\): the KS distance"),
    (_LeakyOU, None, Gaussian.Params(), r"z_t\+1 of sample_pairs \(stationary\): variance"),
    (_SquaredRhoOU, None, Gaussian.Params(),
     r"one-step correlation of z is \[0\.[89]\d+, .*not rho = \[0\.95"),
    (_OwnRngOU, None, Gaussian.Params(), r"step with generators of equal seeds differs"),
    (_ZTargetOU, None, Laplace.Params(), r"theorem_target\(\) = 'z', but gaussian=False"),
    (_SilentOU, None, Laplace.Params(), r"reasons\(\) = \[\] with stationary=False"),
])
def test_check_dynamics_fails_on_broken_dynamics(cls, params, latent, match):
    with pytest.raises(AssertionError, match=match):
        testing.check_dynamics(cls, params, latent=latent)


def test_check_dynamics_refuses_an_incompatible_latent():
    with pytest.raises(AssertionError, match="refuses it"):
        testing.check_dynamics(LaplaceAR, latent=Gaussian.Params())


def test_broken_kinds_stay_out_of_the_registries():
    """The subclasses above inherit their parents' kind names but are never registered."""
    for reg in (LATENTS, DYNAMICS, MIXERS, ENCODERS, OBJECTIVES):
        assert all(not cls.__qualname__.startswith("_") for _, cls in reg.items())
