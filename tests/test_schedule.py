"""The hard-constraint regime (design §7): λ schedule, lr drop, per-sample SIGReg, and
options that leave existing config hashes alone."""

import math
from dataclasses import dataclass

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from identlab.config import config_hash, load_run
from identlab.core.schema import ConfigError, build, param, to_dict
from identlab.learn.objectives import LamSchedule, LeJEPA
from identlab.learn.train import Hyper, lr_factor, train
from identlab.sigreg import random_directions

RAMP = ["learner.objective.schedule.kind=ramp", "learner.objective.schedule.end=0.1",
        "learner.objective.schedule.start=0.5", "learner.objective.schedule.stop=0.75",
        "train.lr_drop.at=0.5", "train.lr_drop.factor=0.05"]

# config_hash values recorded before the options existed: defaults must not move them
HASHES_BEFORE = {"configs/spiral.yaml": "3c67158715c3888d",
                 "configs/mlp8.yaml": "78553623ad988f49",
                 "configs/coupling16.yaml": "faf08440e7798fcc", None: "47f5c1ed33e70dd1"}


@pytest.mark.parametrize("path", list(HASHES_BEFORE))
def test_default_options_leave_config_hashes_unchanged(path):
    assert config_hash(load_run(path)) == HASHES_BEFORE[path]


def test_named_overrides_build_the_hard_constraint_regime():
    cfg = load_run("configs/spiral.yaml", RAMP + ["learner.objective.scale=sample"])
    obj = cfg.learner.objective
    assert obj.schedule == LamSchedule(kind="ramp", end=0.1, start=0.5, stop=0.75)
    assert obj.scale == "sample"
    assert (cfg.train.lr_drop.at, cfg.train.lr_drop.factor) == (0.5, 0.05)
    assert config_hash(cfg) != HASHES_BEFORE["configs/spiral.yaml"]
    d = to_dict(cfg)
    assert d["learner"]["objective"]["schedule"]["kind"] == "ramp"
    assert load_run(d) == cfg  # the dict round-trips


@pytest.mark.parametrize("bad, field", [
    (["learner.objective.schedule.start=0.8", "learner.objective.schedule.stop=0.6"],
     "learner.objective.stop"),
    (["learner.objective.schedule.kind=ramp", "learner.objective.lam=0"],
     "learner.objective.schedule.kind"),
    (["learner.objective.schedule.kind=linear"], "learner.objective.schedule.kind"),
    (["train.lr_drop.factor=0"], "train.lr_drop.factor"),
    (["train.lr_drop.at=1.5"], "train.lr_drop.at")])
def test_bad_schedule_settings_name_their_field(bad, field):
    with pytest.raises(ConfigError) as err:
        load_run("configs/spiral.yaml", bad)
    assert err.value.field.endswith(field.rsplit(".", 1)[-1])


def test_omit_default_drops_only_default_values():
    @dataclass(frozen=True)
    class Inner:
        x: int = param(1)

    @dataclass(frozen=True)
    class Outer:
        a: int = param(0)
        b: str = param("keep", omit_default=True)
        inner: Inner = param(factory=Inner, omit_default=True)

    assert to_dict(Outer()) == {"a": 0}
    assert to_dict(Outer(b="other")) == {"a": 0, "b": "other"}
    assert to_dict(Outer(inner=Inner(2))) == {"a": 0, "inner": {"x": 2}}
    for obj in (Outer(), Outer(b="other", inner=Inner(3))):
        assert build(Outer, to_dict(obj)) == obj


# ------------------------------------------------------------------ λ schedule
def test_ramp_values_at_chosen_steps():
    ramp, steps, lam = LamSchedule(kind="ramp", end=0.1, start=0.5, stop=0.75), 1000, 1e-3
    assert ramp.value(lam, 0, steps) == lam
    assert ramp.value(lam, 499, steps) == lam
    assert ramp.value(lam, 500, steps) == pytest.approx(lam)
    assert ramp.value(lam, 625, steps) == pytest.approx(1e-2)  # log-midpoint of 1e-3, 0.1
    assert ramp.value(lam, 750, steps) == pytest.approx(0.1)
    assert ramp.value(lam, 999, steps) == 0.1
    assert LamSchedule().value(lam, 999, steps) == lam  # constant
    step_ramp = LamSchedule(kind="ramp", end=0.2, start=0.3, stop=0.3)
    assert [step_ramp.value(0.01, s, 10) for s in (2, 3)] == [0.01, 0.2]


@given(lam=st.floats(1e-5, 1.0), end=st.floats(1e-5, 1.0), start=st.floats(0, 1),
       width=st.floats(0, 1), step=st.integers(0, 999))
def test_ramp_is_monotone_between_its_ends(lam, end, start, width, step):
    ramp = LamSchedule(kind="ramp", end=end, start=start, stop=min(1.0, start + width))
    now, nxt = ramp.value(lam, step, 1000), ramp.value(lam, step + 1, 1000)
    assert min(lam, end) * (1 - 1e-12) <= now <= max(lam, end) * (1 + 1e-12)
    assert (nxt - now) * (end - lam) >= -1e-15  # moves toward end, never back


def test_lejepa_coefs_follow_the_schedule():
    cfg = load_run("configs/spiral.yaml", RAMP)
    obj = LeJEPA(cfg.learner.objective, 2)
    assert obj.scheduled and not LeJEPA(LeJEPA.Params(), 2).scheduled
    assert obj.coefs() == {"lam": 1e-3}
    assert obj.coefs(2999, 3000) == {"lam": pytest.approx(0.1)}


# ------------------------------------------------------------------ lr drop
def test_lr_drop_multiplies_the_schedule_from_its_share_on():
    base = [lr_factor(s, 100, 10, 0.6) for s in range(100)]
    dropped = [lr_factor(s, 100, 10, 0.6, 0.5, 0.05) for s in range(100)]
    assert dropped[:50] == base[:50]
    assert dropped[50:] == pytest.approx([0.05 * b for b in base[50:]])


def test_trainer_applies_the_lr_drop():
    """Adam's first step moves every coordinate by exactly lr·factor (|m̂/√v̂| = 1)."""
    w0 = torch.zeros(1, 4)

    def run(drop_at):
        hyper = Hyper(lr=torch.tensor([0.1]), beta1=torch.tensor([0.9]),
                      beta2=torch.tensor([0.999]), eps=torch.tensor([1e-12]),
                      weight_decay=torch.tensor([0.0]), steps=1, decay_start=1.0,
                      lr_drop_at=drop_at, lr_drop_factor=0.05)
        seen = []
        res = train({"w": w0.clone()}, lambda p, b: (p["w"] - 1).pow(2).sum(1),
                    lambda s: None, hyper, progress=False, on_step=seen.append)
        assert seen == [0]
        return res.params["w"]

    assert torch.allclose(run(None), torch.full((1, 4), 0.1))
    assert torch.allclose(run(0.0), torch.full((1, 4), 0.005))


# ------------------------------------------------------------------ per-sample SIGReg
@pytest.mark.parametrize("views", ["pooled", "per_view"])
def test_sample_scale_is_the_batch_statistic_over_its_sample_count(views):
    g = torch.Generator().manual_seed(0)
    h_t, h_t1 = torch.randn(2, 64, 3, generator=g), torch.randn(2, 64, 3, generator=g)
    dirs = torch.stack([random_directions(3, 16, g) for _ in range(2)])
    lam = {"lam": torch.tensor([1.0, 1.0])}
    batch = LeJEPA(LeJEPA.Params(lam=1.0, views=views), 3).loss(h_t, h_t1, h_t, dirs, lam)
    sample = LeJEPA(LeJEPA.Params(lam=1.0, views=views, scale="sample"), 3).loss(
        h_t, h_t1, h_t, dirs, lam)
    m = 128 if views == "pooled" else 64
    torch.testing.assert_close(sample, batch / m)
    assert math.isfinite(float(sample.sum()))


# ------------------------------------------------------------------ in the batched program
TINY_RUN = ["train.steps=40", "learner.encoder.hidden=16", "learner.encoder.depth=2",
            "learner.objective.slices=8", "eval.n=200"]
RAMP_ONLY = RAMP[:4]


def test_a_ramp_member_trains_with_its_scheduled_lambda():
    """The λ the loss closure reads at each step is the member's schedule at that step:
    the ramped member follows λ(u), the constant member in the same group keeps 1e-3."""
    from identlab.run.program import build_program

    ramp = load_run("configs/spiral.yaml", TINY_RUN + RAMP_ONLY)
    const = load_run("configs/spiral.yaml", TINY_RUN)
    prog = build_program([ramp, const], torch.device("cpu"))
    hook = prog.on_step()
    assert hook is not None
    seen = []

    def loss_fn(params, batch):
        seen.append(prog.coefs["lam"].tolist())
        return prog.loss_fn(params, batch)

    train(prog.params, loss_fn, prog.stream, prog.hyper, progress=False, on_step=hook)
    steps = ramp.train.steps
    sched = ramp.learner.objective.schedule
    want = [sched.value(1e-3, s, steps) for s in range(steps)]
    assert [r for r, _ in seen] == pytest.approx(want, rel=1e-6)
    assert [c for _, c in seen] == pytest.approx([1e-3] * steps)
    assert seen[0][0] == pytest.approx(1e-3) and seen[-1][0] == pytest.approx(0.1)


def test_default_groups_have_no_step_hook_and_lr_drop_reaches_the_trainer():
    from identlab.run.group import signature
    from identlab.run.program import build_program

    base = load_run("configs/spiral.yaml", TINY_RUN)
    prog = build_program([base], torch.device("cpu"))
    assert prog.on_step() is None and prog.hyper.lr_drop_at is None
    drop = load_run("configs/spiral.yaml", TINY_RUN + ["train.lr_drop.at=0.5",
                                                        "train.lr_drop.factor=0.05"])
    hyper = build_program([drop], torch.device("cpu")).hyper
    assert (hyper.lr_drop_at, hyper.lr_drop_factor) == (0.5, pytest.approx(0.05))
    # a shared lr schedule is part of the shape signature: no mixed group
    assert signature(drop) != signature(base)
    # a λ schedule is per-member (a coefficient): ramped and constant runs group together
    assert signature(load_run("configs/spiral.yaml", TINY_RUN + RAMP_ONLY)) == signature(base)
