"""The batched trainer, encoders, predictors and objectives."""

import math

import numpy as np
import pytest
import torch

from identlab.config import load_run
from identlab.core import seeding
from identlab.learn.encoders import LinearPredictor, MatchedEncoder, MLPEncoder, stack_params
from identlab.learn.objectives import AlignOnly, InfoNCE, LeJEPA, VICReg, Whiten, alignment
from identlab.learn.train import Hyper, lr_factor, train
from identlab.run.group import signature
from identlab.run.program import run_group
from identlab.world.mixers import Coupling

TINY = ["world.mixer.kind=spiral", "learner.encoder.hidden=16", "learner.encoder.depth=2",
        "learner.objective.slices=16", "train.steps=40", "train.batch=64", "eval.n=600",
        "eval.sigreg_slices=16"]


def _gen(seed):
    return seeding.torch_generator(seed, "init")


# ------------------------------------------------------------------ schedule / optimizer
def test_lr_schedule_constant_then_cosine():
    f = [lr_factor(s, 100, 0, 0.5) for s in range(100)]
    assert f[:50] == [1.0] * 50
    assert f[50] == pytest.approx(1.0)
    assert f[75] == pytest.approx(0.5)
    assert f[99] == pytest.approx(0.5 * (1 + math.cos(math.pi * 49 / 50)))
    assert all(a >= b for a, b in zip(f[50:], f[51:]))


def test_lr_schedule_warmup():
    f = [lr_factor(s, 100, 10, 0.5) for s in range(12)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0) and f[11] == 1.0


@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_batched_adamw_matches_torch_adamw(wd):
    """K=1 batched AdamW with a constant schedule equals torch.optim.AdamW."""
    g = torch.Generator().manual_seed(0)
    w0 = torch.randn(1, 5, 3, generator=g)
    target = torch.randn(5, 3, generator=g)

    def loss_fn(params, batch):
        return ((params["w"] - target) ** 2).sum(dim=(1, 2)) * (1 + batch)

    hyper = Hyper(lr=torch.tensor([0.05]), beta1=torch.tensor([0.9]),
                  beta2=torch.tensor([0.99]), eps=torch.tensor([1e-8]),
                  weight_decay=torch.tensor([wd]), steps=20, decay_start=1.0)
    res = train({"w": w0}, loss_fn, lambda s: float(s % 3), hyper, progress=False)
    ref = w0[0].clone().requires_grad_(True)
    opt = torch.optim.AdamW([ref], lr=0.05, betas=(0.9, 0.99), eps=1e-8, weight_decay=wd)
    for s in range(20):
        opt.zero_grad()
        (((ref - target) ** 2).sum() * (1 + s % 3)).backward()
        opt.step()
    torch.testing.assert_close(res.params["w"][0], ref.detach(), rtol=1e-5, atol=1e-6)


def test_divergent_member_is_frozen_and_others_unaffected():
    """A member with an absurd lr blows up; it is reported diverged, the others train
    exactly as they would without it."""
    g = torch.Generator().manual_seed(1)
    w0 = torch.randn(3, 4, 4, generator=g)

    def loss_fn(params, batch):
        w = params["w"]
        return (w**2).mean(dim=(1, 2))  # overflows float32 once |w| ~ 1e30

    def hyper(lrs):
        k = len(lrs)
        return Hyper(lr=torch.tensor(lrs), beta1=torch.full((k,), 0.9),
                     beta2=torch.full((k,), 0.999), eps=torch.full((k,), 1e-8),
                     weight_decay=torch.zeros(k), steps=30)

    res = train({"w": w0}, loss_fn, lambda s: None, hyper([1e-2, 1e30, 1e-2]), progress=False)
    assert res.diverged.tolist() == [False, True, False]
    assert res.diverged_at[1] is not None and res.diverged_at[0] is None
    alone = train({"w": w0[[0, 2]]}, loss_fn, lambda s: None, hyper([1e-2, 1e-2]),
                  progress=False)
    # equal up to float rounding (a per-member lr takes a vector path, a shared one a scalar)
    torch.testing.assert_close(res.params["w"][[0, 2]], alone.params["w"], rtol=1e-6, atol=1e-7)
    assert all(math.isfinite(x) for x in res.history[0])
    # the CUDA path, which never reads the divergence masks on the host, freezes the
    # same member at the same step and trains the others the same way
    free = train({"w": w0}, loss_fn, lambda s: None, hyper([1e-2, 1e30, 1e-2]),
                 progress=False, sync_free=True)
    assert free.diverged.tolist() == res.diverged.tolist()
    assert free.diverged_at == res.diverged_at
    torch.testing.assert_close(free.params["w"][[0, 2]], res.params["w"][[0, 2]], rtol=1e-6,
                               atol=1e-7)


# ------------------------------------------------------------------ encoders
def test_mlp_encoder_batched_equals_single():
    enc = MLPEncoder(MLPEncoder.Params(hidden=8, depth=3), 2, 2)
    ps = [enc.init(_gen(s)) for s in range(4)]
    x = torch.randn(4, 10, 2, generator=torch.Generator().manual_seed(0))
    out = MLPEncoder.apply(stack_params(ps), x)
    for k in range(4):
        one = MLPEncoder.apply(stack_params([ps[k]]), x[k:k + 1])
        torch.testing.assert_close(out[k:k + 1], one, rtol=1e-6, atol=1e-6)


def test_mlp_encoder_init_is_seeded():
    enc = MLPEncoder(MLPEncoder.Params(hidden=8, depth=2), 3, 2)
    a, b, c = enc.init(_gen(0)), enc.init(_gen(0)), enc.init(_gen(1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["w0"], c["w0"])
    assert a["w0"].shape == (3, 8) and a["w2"].shape == (8, 2)


@pytest.mark.parametrize("dim", [2, 6])
def test_matched_encoder_inverts_coupling_with_its_weights(dim):
    """With W set to the mixer's, the matched encoder is the mixer's exact inverse."""
    mixer = Coupling(Coupling.Params(depth=4), dim, np.random.default_rng(0))
    MatchedEncoder(MatchedEncoder.Params(depth=4), dim, dim)  # accepts the shape
    z = torch.randn(1, 50, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x = Coupling.apply({"W": mixer.weights["W"][None]}, z)
    h = MatchedEncoder.apply({"W": mixer.weights["W"][None]}, x)
    torch.testing.assert_close(h, z, rtol=1e-10, atol=1e-10)


def test_linear_predictor_starts_at_identity():
    pred = LinearPredictor(LinearPredictor.Params(), 3)
    p = stack_params([pred.init(_gen(0))])
    h = torch.randn(1, 5, 3)
    torch.testing.assert_close(LinearPredictor.apply(p, h), h)


# ------------------------------------------------------------------ objectives
def test_alignment_formula():
    a = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # (1, 2, 2)
    b = torch.tensor([[[0.0, 0.0], [0.0, 0.0]]])
    # per coordinate (h̄ − h_v)² = (Δ/2)²; mean over views, samples, dims: (1/4 + 4/4)/4
    assert alignment(a, b).item() == pytest.approx((0.25 + 1.0) / 4)


def _views(k=2, b=256, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(k, b, n, generator=g)
    return h, 0.9 * h + math.sqrt(1 - 0.81) * torch.randn(k, b, n, generator=g)


def test_lejepa_is_convex_mix_of_alignment_and_sigreg():
    h_t, h_t1 = _views()
    obj = LeJEPA(LeJEPA.Params(slices=32), 2)
    dirs = torch.randn(2, 2, 32, generator=torch.Generator().manual_seed(3))
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    lam = torch.tensor([0.0, 1.0])
    out = obj.loss(h_t, h_t1, h_t, dirs, {"lam": lam})
    torch.testing.assert_close(out[0], alignment(h_t, h_t1)[0])
    torch.testing.assert_close(out[1], obj.sigreg(h_t, h_t1, dirs)[1])


def test_whiten_penalty_zero_at_identity_covariance():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(1, 4000, 3, generator=g)
    c = torch.cov(torch.cat([h, h], 1)[0].T)
    w = torch.linalg.cholesky(torch.linalg.inv(c))
    hw = h @ w
    obj = Whiten(Whiten.Params(lam=1.0), 3)
    assert obj.loss(hw, hw, hw, None, {"lam": torch.tensor([1.0])}).item() < 1e-6
    assert obj.loss(2 * hw, 2 * hw, 2 * hw, None, {"lam": torch.tensor([1.0])}).item() > 0.5


def test_vicreg_prefers_unit_variance_decorrelated():
    h_t, h_t1 = _views(k=1, b=2000)
    obj = VICReg(VICReg.Params(), 2)
    c = {k: torch.tensor([v]) for k, v in obj.coefs().items()}
    good = obj.loss(h_t, h_t1, h_t, None, c).item()
    collapsed = obj.loss(0.01 * h_t, 0.01 * h_t1, 0.01 * h_t, None, c).item()
    assert collapsed > good + 20


def test_infonce_rewards_matching_pairs():
    h_t, h_t1 = _views(k=1, b=128)
    obj = InfoNCE(InfoNCE.Params(sigma=0.5), 2)
    c = {"sigma": torch.tensor([0.5])}
    matched = obj.loss(h_t, h_t1, h_t, None, c).item()
    shuffled = obj.loss(h_t, h_t1[:, torch.randperm(128)], h_t, None, c).item()
    assert matched < shuffled - 1.0
    identical = obj.loss(h_t, h_t, h_t, None, {"sigma": torch.tensor([0.01])}).item()
    assert identical < 1e-3  # perfect positives, far negatives: loss -> 0


def test_align_only_has_no_directions():
    assert not AlignOnly.uses_directions and LeJEPA.uses_directions


# ------------------------------------------------------------------ experiment level
def test_member_result_independent_of_batch_composition():
    """Same config + seed alone or inside K=16 (with different worlds and λ) gives the
    same metrics to 1e-4."""
    base = load_run(None, TINY)
    alone = run_group([base.with_seed(3)], progress=False)[0]
    others = [load_run(None, TINY + [f"learner.objective.lam={lam}",
                                     "world.latent.alpha=" + str(a)]).with_seed(s)
              for s, lam, a in zip(range(20, 35), np.linspace(0.01, 0.5, 15),
                                    [1.0, 2.0, 4.0] * 5)]
    batch = run_group(others[:7] + [base.with_seed(3)] + others[7:], progress=False)
    inside = batch[7]
    assert inside["seed"] == 3 and len(batch) == 16
    for key in ("r2_hz", "cca_min", "mcc", "procrustes", "align"):
        assert inside["metrics"][key] == pytest.approx(alone["metrics"][key], abs=1e-4), key


def test_signature_groups_shapes_not_numbers():
    a = load_run(None, TINY)
    assert signature(a) == signature(load_run(None, TINY + ["learner.objective.lam=0.3",
                                                           "train.lr=0.01"]))
    assert signature(a) != signature(load_run(None, TINY + ["learner.encoder.hidden=32"]))


def test_record_shape_and_diverged_member():
    cfgs = [load_run(None, TINY).with_seed(0), load_run(None, TINY + ["train.lr=1e30"])]
    recs = run_group(cfgs, progress=False)
    assert [r["status"] for r in recs] == ["ok", "diverged"]
    ok = recs[0]
    for key in ("config", "seed", "metrics", "status", "flags", "provenance", "hash"):
        assert key in ok
    for key in ("identlab", "git_sha", "torch", "device", "wall_s", "steps_per_s"):
        assert key in ok["provenance"]
    assert ok["metrics"]["r2_hz"] is not None and recs[1]["metrics"] == {}


def test_members_per_chunk_respects_the_memory_budget():
    from identlab.run.group import members_per_chunk
    from identlab.sizes import bytes_per_member

    small = load_run(None, TINY)
    big = load_run(None, TINY + ["learner.encoder.hidden=512", "train.batch=1024"])
    assert bytes_per_member(big) > 10 * bytes_per_member(small)
    cpu = torch.device("cpu")
    budget = 50 * bytes_per_member(small)
    assert members_per_chunk(small, cpu, budget=budget) == 50
    assert members_per_chunk(big, cpu, budget=budget) < 50
    assert members_per_chunk(big, cpu, budget=1) == 1  # never zero


def test_run_configs_splits_groups_and_chunks():
    from identlab.run.program import run_configs

    cfgs = [load_run(None, TINY).with_seed(s) for s in range(3)]
    cfgs.append(load_run(None, TINY + ["learner.encoder.hidden=8"]))
    seen = []
    recs = run_configs(cfgs, progress=False, max_members=2,
                       on_records=lambda rs: seen.append(len(rs)))
    assert sorted(seen) == [1, 1, 2] and len(recs) == 4
    assert sorted(r["provenance"]["group_size"] for r in recs) == [1, 1, 2, 2]
