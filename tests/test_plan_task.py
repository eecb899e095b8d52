"""The reach task of the planning evaluation (design §8): the cross-entropy planner
against the LQR optimum of an exact linear world, the success rates on a vector arm
world whose encoders are known, the real Reacher's bounds (planning on z reaches every
goal), the frame count, the new config fields' bad values and the vector worlds' keys.
The Reacher tests skip without dm_control, and without a GL backend unless ``CI`` is
set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from identlab.cli import main
from identlab.config import load_run
from identlab.core.schema import ConfigError
from identlab.measure import planning as P
from identlab.measure.config import PlanConfig
from identlab.world.control import ControlledWorld, has_task
from identlab.world.mixers import Reacher
from identlab.world.world import World

LINK = 0.12  # metres, each of the two links of the test arm (the Reacher's own lengths)


def _identity(z):
    return z


def _vector_world(**plan) -> ControlledWorld:
    cfg = load_run(None, ["world.latent.kind=gaussian", "world.mixer.kind=identity"]).world
    return ControlledWorld(World(cfg, 0), PlanConfig(**plan))


def _orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


class ArmWorld:
    """A vector controlled world (x = z) with a reach task: z are the two joint angles
    of a planar arm of two 0.12 m links, the effector its tip, the radius 0.06 m."""

    has_task = True
    reach_radius = 0.06

    def __init__(self, base: ControlledWorld) -> None:
        self.base = base

    def __getattr__(self, name):
        return getattr(self.base, name)

    @staticmethod
    def effector(z):
        z = np.asarray(z, dtype=np.float64)
        a, b = z[:, 0], z[:, 0] + z[:, 1]
        return LINK * np.stack([np.cos(a) + np.cos(b), np.sin(a) + np.sin(b)], axis=1)


# ------------------------------------------------------------------ CEM on an exact model
def _random_model(seed: int) -> P.LinearModel:
    rng = np.random.default_rng(seed)
    return P.LinearModel(A=np.eye(2) + 0.1 * rng.standard_normal((2, 2)),
                         B=np.eye(2) + 0.2 * rng.standard_normal((2, 2)),
                         c=0.1 * rng.standard_normal(2))


def _plans(model, pairs: int, seed: int, **cem):
    rng = np.random.default_rng(seed)
    z0, zg = rng.standard_normal((pairs, 2)), rng.standard_normal((pairs, 2))
    lqr, best = P.closed_loop(P.lqr_policy(P.lqr_gains(model, 15, 1.0), model, zg), _identity,
                              model.step, z0, zg, 15, 1.0)
    planner = P.CEMPlanner(model, zg, 15, 1.0, rng=np.random.default_rng(seed + 1), **cem)
    cost, end = P.closed_loop(planner, _identity, model.step, z0, zg, 15, 1.0)
    return lqr, cost, np.linalg.norm(end - best, axis=1)


@pytest.mark.parametrize("seed", [0, 1])
def test_cem_reaches_the_goal_of_an_exact_linear_world(seed):
    """On a known affine model the LQR closed loop is the optimum of cost (1), so no
    planner costs less. CEM with the default budget ends next to where the optimum ends
    (the goal itself is not free to hold when A ≠ I or c ≠ 0) at a cost of the same
    order; with a large budget its cost is within 10 % of the optimum's."""
    model, d = _random_model(seed), PlanConfig()
    small = dict(population=d.cem_population, elites=d.cem_elites,
                 iterations=d.cem_iterations, std=d.cem_std)
    lqr, cost, miss = _plans(model, 40, seed, **small)
    assert np.all(cost >= lqr * (1 - 1e-9))
    assert cost.sum() < 2.0 * lqr.sum() and miss.max() < 0.15, (cost.sum() / lqr.sum(), miss)
    lqr, cost, miss = _plans(model, 8, seed, population=1000, elites=100, iterations=8,
                             std=0.5)
    assert np.all(cost >= lqr * (1 - 1e-9))
    assert cost.sum() < 1.1 * lqr.sum() and miss.max() < 0.01, (cost.sum() / lqr.sum(), miss)


def test_sequence_cost_is_cost_1_along_the_model():
    """The planner's score of a sequence is cost (1) of the path the model predicts,
    without the t = 0 term."""
    model, rng = _random_model(3), np.random.default_rng(0)
    s, goal, u = rng.standard_normal((4, 2)), rng.standard_normal((4, 2)), rng.standard_normal(
        (4, 5, 6, 2))
    got = P.sequence_cost(model, s, u, goal, 0.7)
    for p in range(4):
        for k in range(5):
            path = [s[p]]
            for a in u[p, k]:
                path.append(model.A @ path[-1] + model.B @ a + model.c)
            want = P.path_cost(np.array(path)[None], u[p, k][None], goal[p][None], 0.7)[0]
            assert got[p, k] == pytest.approx(want - np.sum((s[p] - goal[p]) ** 2), rel=1e-12)


def test_cem_is_seeded_and_runs_its_steps_in_order():
    model, goal = _random_model(4), np.zeros((3, 2))
    s = np.ones((3, 2))
    kw = dict(population=16, elites=4, iterations=2, std=0.5)
    a = P.CEMPlanner(model, goal, 5, 1.0, rng=np.random.default_rng(2), **kw)
    b = P.CEMPlanner(model, goal, 5, 1.0, rng=np.random.default_rng(2), **kw)
    assert np.array_equal(a(0, s), b(0, s))
    with pytest.raises(ValueError, match="in order"):
        a(0, s)
    assert a(1, s).shape == (3, 2)


# ------------------------------------------------------------------ the task, known encoders
def test_a_rotation_reaches_every_goal_and_the_task_changes_no_old_key():
    """h = Qz on the arm world: latent LQR is LQR on z (regret 0), so its success is
    z's, 1.0, and CEM on h draws and ranks as CEM on z. The untrained-encoder bound run
    with the same rotation is the same controller; a folding encoder (h = sin 3z) fails
    more often. The task adds keys only: the regret keys are those of the same world
    without a task."""
    q = _orthogonal(2, np.random.default_rng(5))
    base = _vector_world()
    arm = ArmWorld(base)

    def rot(x):
        return x @ q.T

    out = P.plan_metrics(rot, arm, seed=3, pairs=60, transitions=2000, random_encode=rot)
    assert set(out) == {*P.PLAN_KEYS, *P.PLAN_TASK_KEYS}
    assert abs(out["plan_regret"]) < 1e-9
    assert out["plan_success"] == out["plan_success_z"] == 1.0
    assert out["plan_success_random"] == out["plan_success"]
    assert out["plan_success_cem"] == out["plan_success_z_cem"] >= 0.95
    assert 0 <= out["plan_reach_dist"] < 1e-3 and out["plan_reach_radius"] == 0.06
    plain = P.plan_metrics(rot, base, seed=3, pairs=60, transitions=2000, random_encode=rot)
    assert plain == {k: out[k] for k in P.PLAN_KEYS}
    fold = P.plan_metrics(rot, arm, seed=3, pairs=60, transitions=2000,
                          random_encode=lambda x: np.sin(3 * x))
    assert fold["plan_success_random"] < 0.8
    assert P.plan_metrics(rot, arm, seed=3, pairs=60, transitions=2000)[
        "plan_success_random"] is None


def test_success_is_within_the_reach_radius():
    """reach_success counts a final pose whose effector is at most the radius from the
    goal's, and a diverged (non-finite) state as a miss at infinite distance."""
    arm = ArmWorld(_vector_world())
    goal_z = np.array([[0.3, -0.4], [0.3, -0.4], [0.3, -0.4]])
    goal = arm.effector(goal_z)
    end = goal_z + np.array([[0.05, 0.0], [0.5, 0.0], [np.nan, 0.0]])
    dist, hit = P.reach_success(arm, end, goal, 0.06)
    shoulder_arc = np.linalg.norm(arm.effector(end[:2]) - goal[:2], axis=1)
    np.testing.assert_allclose(dist[:2], shoulder_arc)
    assert hit.tolist() == [True, False, False] and dist[2] == np.inf


def test_vector_worlds_keep_exactly_the_old_keys():
    """No task: the output is the three keys of before, and plan_regret is the median of
    J/J* − 1 of the LQR rollouts (the refactored closed loop computes the same)."""
    world = _vector_world()
    assert not world.has_task and not has_task(type(world.world.mixer))
    m = np.array([[1.3, 0.2], [0.1, 0.8]])

    def enc(x):
        return x @ m.T

    out = P.plan_metrics(enc, world, seed=4, pairs=30, transitions=500)
    assert set(out) == set(P.PLAN_KEYS)
    with pytest.raises(ValueError, match="no task"):
        world.effector(np.zeros((1, 2)))
    cfg = PlanConfig(pairs=30, transitions=500)
    ss = P._streams(4)
    z, u, z1 = P._transitions(world, cfg, ss["fit"])
    model_h, model_z = P.fit_linear_model(enc(z), u, enc(z1)), P.fit_linear_model(z, u, z1)
    rng = np.random.default_rng(ss["pairs"])
    z0, zg = world.sample_latents(30, rng), world.sample_latents(30, rng)
    cost = P.rollout(P.lqr_gains(model_h, 15, 1.0), model_h, enc, world.step, z0, zg,
                     enc(zg), 1.0)
    best = P.rollout(P.lqr_gains(model_z, 15, 1.0), model_z, _identity, world.step, z0, zg,
                     zg, 1.0)
    assert out["plan_regret"] == pytest.approx(np.median(cost / best - 1), rel=1e-12)


def test_appending_the_cem_stream_keeps_the_old_streams():
    """_streams' first three children are spawn indices 0, 1, 2 of the root, as before
    the CEM stream was appended."""
    root = np.random.SeedSequence(11)
    streams = P._streams(11)
    assert list(streams) == ["fit", "pairs", "noise", "cem"]
    for i, name in enumerate(("fit", "pairs", "noise")):
        assert streams[name].spawn_key == (i,) and streams[name].entropy == root.entropy


def test_the_reacher_sweep_plans_over_at_least_100_pairs():
    """The success rates of the Reacher sweep are shares of at least 100 start–goal
    pairs (the config default stays 50 so that earlier planning records keep their
    hashes)."""
    from identlab.sweep.spec import load_spec, plan

    spec = load_spec(Path(__file__).resolve().parents[1] / "sweeps" / "reacher.yaml")
    cfgs = [cfg for cfg, _ in plan(spec)]
    assert cfgs and all(c.eval.plan.enabled for c in cfgs)
    assert min(c.eval.plan.for_world(True).pairs for c in cfgs) >= 100
    assert PlanConfig().for_world(False).pairs == 200


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("override, field", [
    ("eval.plan.horizon=0", "eval.plan.horizon"),
    ("eval.plan.cem_population=0", "eval.plan.cem_population"),
    ("eval.plan.cem_elites=0", "eval.plan.cem_elites"),
    ("eval.plan.cem_iterations=0", "eval.plan.cem_iterations"),
    ("eval.plan.cem_std=0", "eval.plan.cem_std"),
    ("eval.plan.cem_elites=65", "eval.plan.cem_elites"),
])
def test_bad_plan_value_names_the_field(override, field, tmp_path, capsys, no_training):
    with pytest.raises(ConfigError) as e:
        load_run("configs/spiral.yaml", ["eval.plan.enabled=true", override])
    assert e.value.field == field
    out = tmp_path / "o"
    assert main(["run", "configs/spiral.yaml", "eval.plan.enabled=true", override,
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err
    assert not out.exists() or not any(out.iterdir())


# ------------------------------------------------------------------ the real Reacher
def _reacher(pairs: int, transitions: int, *extra: str):
    pytest.importorskip("dm_control")
    cfg = load_run(None, ["world.mixer.kind=reacher", "learner.encoder.kind=cnn",
                          "learner.encoder.channels=[8, 8]", "learner.encoder.groups=4",
                          "eval.plan.enabled=true", f"eval.plan.rendered_pairs={pairs}",
                          f"eval.plan.rendered_transitions={transitions}", "seed=2", *extra])
    return cfg, World(cfg.world, cfg.seed)


def _pixel_projection(x):
    """A fixed random linear map of the pixels: an encoder that learned nothing."""
    w = np.random.default_rng(0).standard_normal((x[0].size, 2)) / 100
    return (np.asarray(x, dtype=np.float64).reshape(len(x), -1) / 255.0) @ w


def test_planning_on_z_reaches_every_goal_of_a_tiny_reacher_set(gl):
    """8 pairs, 60 transitions of real frames: LQR and CEM on z bring the fingertip
    within dm_control's reach radius (target 0.05 + finger 0.01 m) of every goal; every
    rate is a share of the pairs; the frames rendered are the transitions' and pairs'
    plus one closed loop each for CEM on h and the untrained encoder."""
    from identlab.run.score import plan_scores

    cfg, world = _reacher(8, 60)
    assert has_task(Reacher)
    out = plan_scores(cfg, world, _pixel_projection)
    assert out["plan_success_z"] == 1.0 and out["plan_success_z_cem"] == 1.0
    assert out["plan_reach_radius"] == pytest.approx(0.06, abs=1e-12)
    for key in ("plan_success", "plan_success_cem", "plan_success_random"):
        assert 8 * out[key] == pytest.approx(round(8 * out[key])) and 0 <= out[key] <= 1
    assert out["plan_reach_dist"] > 0
    plan = cfg.eval.plan
    assert out["plan_frames"] == (2 * 60 + 8 * (plan.horizon + 2) + 2 * 8 * plan.horizon)


def test_effector_is_the_rendered_fingertip(gl):
    """The task's effector is where the renderer put the finger, by kinematics alone
    (no frame counted)."""
    cfg, world = _reacher(4, 10)
    with ControlledWorld(world, cfg.eval.plan) as cw:
        z = cw.sample_latents(3, np.random.default_rng(1))
        for row in z:
            cw.observe(row[None])
            np.testing.assert_allclose(cw.effector(row[None])[0], cw.renderer.pose()["finger"],
                                       atol=1e-12)
        assert cw.frames == 3
        assert np.linalg.norm(cw.effector(np.zeros((1, 2)))) == pytest.approx(2 * LINK)


@pytest.mark.slow
def test_an_encoder_that_knows_the_pose_plans_from_pixels(gl):
    """At the default rendered budget (100 pairs, 2000 transitions), an encoder that
    reads the pose off the frame (the mean latent of its 4 nearest frames in a gallery
    of 2000; 0.75 measured) reaches most goals with LQR, far more than the untrained
    encoder (0.11)."""
    from identlab.run.score import plan_scores

    cfg, world = _reacher(100, 2000)
    with ControlledWorld(world, cfg.eval.plan) as cw:
        zgal = 1.3 * cw.sample_latents(2000, np.random.default_rng(123))
        gal = cw.observe(zgal).reshape(2000, -1).astype(np.float32)
    sq = np.sum(gal**2, axis=1)

    def knn(x):
        f = np.asarray(x).reshape(len(x), -1).astype(np.float32)
        d = sq[None] - 2 * f @ gal.T
        return zgal[np.argpartition(d, 3, axis=1)[:, :4]].mean(axis=1)

    out = plan_scores(cfg, world, knn)
    assert out["plan_success_z"] == 1.0
    assert out["plan_success"] >= 0.6 and out["plan_success"] > out["plan_success_random"] + 0.3
    assert out["plan_reach_dist"] < out["plan_reach_radius"]
