"""Planning with the learned latent (design §8): latent-LQR regret and the paper's
interpolation test scored against the true minimiser, and, in worlds with a reach task
(the Reacher), the share of start–goal pairs that a planner working from pixels alone
brings to the goal.

**Cost.** For a state path s_0..s_T with goal s_g and controls u_0..u_{T−1},

    J = Σ_{t=0}^{T} ‖s_t − s_g‖² + r Σ_{t=0}^{T−1} ‖u_t‖².                          (1)

The t = 0 term is a constant of the start; it is kept so that one definition serves the
regret and the interpolation test, and it is the definition under which the calibrations
of design §8 hold (T = 15, r = 1, start and goal drawn from N(0, I), 2-D, h = Mz + b with
det M = 1: condition number 2 → median regret 0.026, 4 → 0.104; without the t = 0 term
these would be 0.069 and 0.27).

**Latent model.** From random-action transitions (z, u, z') of a controlled world,
encoded h = f(g(z)), least squares fits h' ≈ Â h + B̂ u + c.

**LQR with an affine model.** With e = h − h_g the model reads e' = Â e + B̂ u + w,
w = Â h_g + c − h_g (one offset per goal). The value is V_t(e) = eᵀP_t e + 2 wᵀM_tᵀ e +
const with P_T = I, M_T = 0 and, for t = T−1..0,

    S_t = r I + B̂ᵀP_{t+1}B̂,   K_t = S_t⁻¹ B̂ᵀP_{t+1}Â,   L_t = S_t⁻¹ B̂ᵀ(P_{t+1} + M_{t+1}),
    P_t = I + ÂᵀP_{t+1}(Â − B̂K_t),   M_t = (Â − B̂K_t)ᵀ(P_{t+1} + M_{t+1});

the optimal action is u_t = −K_t e_t − L_t w. K and L depend on the model alone, so the
backward pass runs once and serves every start–goal pair.

**Regret.** Closed loop: at each step the controller encodes the true world's
observation, h_t = f(g(z_t)), acts u_t = −K_t(h_t − h_g) − L_t w with h_g = f(g(z_g)), and
the true world steps. J (1) is scored on z. J* is the same LQR fitted and solved on z
itself, run on the same world with the same noise draws; regret = J / J* − 1 per pair.
For h = Qz (Q orthogonal) the fitted model is the conjugate of z's and the cost is
rotation invariant, so the regret is 0 (the paper's corollary).

**Interpolation test.** The paper decodes a straight line between two encoded frames
and scores it against that same straight line. Here the line h_k = h_0 + (k/(S−1))(h_g −
h_0), k = 0..S−1, is decoded to latents by k-nearest neighbours in a gallery of (h, z)
(the paper's decoder), the ends pinned to the true start and goal, and scored by (1) on z
with T = S − 1 and u_k the action the true model needs for z_k → z_{k+1}, against the
minimiser of (1): the LQR solution on z (at S = 8 the minimiser with its end pinned
at the goal costs the same to four digits). For z' = z + u and r = 1 a straight line costs
Σ_{j=0}^{S−1}(j/(S−1))² + 1/(S−1) per unit ‖z_0 − z_g‖² (= 3 at S = 8) while the minimiser
decays geometrically, z_k − z_g ≈ λ^k(z_0 − z_g) with λ = (3 − √5)/2 ≈ 0.382, and costs
≈ (1 + √5)/2 ≈ 1.618; the ratio is 1.854. Any invertible affine encoder maps lines to
lines, so it scores like a rotation: the test sees linearity, not orthogonality.

**Reach task (worlds with a task only).** The goal is given only as a frame: h_g =
f(g(z_g)). A planner acts in the learned latent, the true world executes each action
and renders the next frame, and the planner sees only that frame, encoded again (closed
loop). After the T steps the pair is a success when the fingertip is within the reach
radius of the fingertip's position at the goal pose z_g: dm_control's Reacher counts a
reach when the finger-to-target distance is at most the target geom's size plus the
finger geom's size, and the radius here is that sum read from the rendered scene's
model (0.05 + 0.01 = 0.06 m; the scene never resets the task, so the target keeps the
size of the model's XML, not the ``hard`` task's small one). The target drawn in the
frames stays where the scene puts it; it is not the goal. Two planners run on the
fitted model h' ≈ Âh + B̂u + c:

- **LQR**, the controller of the regret above (the same closed-loop run);
- **CEM**, a sampling planner with a receding horizon: at step t it samples
  ``cem_population`` action sequences for the T − t remaining steps from a Gaussian,
  scores each by cost (1) in the latent under the fitted model from the current encoded
  state (the t = 0 term, a constant of that state, left out), refits the Gaussian's
  mean and standard deviation on the ``cem_elites`` cheapest for ``cem_iterations``
  rounds, executes the first action of the final mean and starts the next step from
  that mean shifted by one step (standard deviation back to ``cem_std``). All pairs plan
  at once; its draws come from their own child stream of the planning seed.

Bounds: the same two planners on a model fitted on the true z and fed the true z (an
upper bound for a perfect encoder; on a plain integrator LQR on z ends within a hair of
the goal, so its rate is 1), and LQR on an untrained encoder of the same architecture
(what the architecture gives without learning; absent when no such encoder is passed).
Keys ``PLAN_TASK_KEYS``: the five success rates, the median final fingertip distance of
LQR on h (metres) and the radius.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from identlab.measure.config import PlanConfig

__all__ = ["PlanConfig", "LinearModel", "LQRGains", "fit_linear_model", "lqr_gains",
           "goal_offset", "lqr_policy", "closed_loop", "rollout", "CEMPlanner",
           "sequence_cost", "reach_success", "path_cost", "controls_for_path",
           "interp_ratios", "plan_metrics", "PLAN_KEYS", "PLAN_TASK_KEYS"]

PLAN_KEYS = ("plan_regret", "plan_regret_p90", "plan_interp_ratio")
# added, after PLAN_KEYS, only where the controlled world has a reach task (``has_task``)
PLAN_TASK_KEYS = ("plan_success", "plan_success_cem", "plan_success_z", "plan_success_z_cem",
                  "plan_success_random", "plan_reach_dist", "plan_reach_radius")
Array = np.ndarray
# a controller: (step t, the sensed state (P, n)) -> actions (P, m)
Policy = Callable[[int, Array], Array]


# ------------------------------------------------------------------ model
@dataclass(frozen=True)
class LinearModel:
    """s' = A s + B u + c, with A (n, n), B (n, m), c (n,)."""

    A: Array
    B: Array
    c: Array

    def step(self, s: Array, u: Array) -> Array:
        return s @ self.A.T + u @ self.B.T + self.c  # (P, n)


def fit_linear_model(s: Array, u: Array, s1: Array) -> LinearModel:
    """Least squares s1 ≈ A s + B u + c over rows (s (M, n), u (M, m), s1 (M, n))."""
    n = s.shape[1]
    design = np.concatenate([s, u, np.ones((len(s), 1))], axis=1)  # (M, n + m + 1)
    coef = np.linalg.lstsq(design, s1, rcond=None)[0]  # (n + m + 1, n)
    return LinearModel(A=coef[:n].T, B=coef[n:-1].T, c=coef[-1])


# ------------------------------------------------------------------ LQR
@dataclass(frozen=True)
class LQRGains:
    """Feedback K (T, m, n) and goal feedforward L (T, m, n): u_t = −K_t e_t − L_t w."""

    K: Array
    L: Array

    @property
    def horizon(self) -> int:
        return len(self.K)


def lqr_gains(model: LinearModel, horizon: int, r: float) -> LQRGains:
    """Backward Riccati pass for cost (1) under ``model`` (module docstring)."""
    A, B = model.A, model.B
    n, m = B.shape
    P, M = np.eye(n), np.zeros((n, n))
    K = np.empty((horizon, m, n))
    L = np.empty((horizon, m, n))
    for t in reversed(range(horizon)):
        S = r * np.eye(m) + B.T @ P @ B
        K[t] = np.linalg.solve(S, B.T @ P @ A)
        L[t] = np.linalg.solve(S, B.T @ (P + M))
        closed = A - B @ K[t]
        P, M = np.eye(n) + A.T @ P @ closed, closed.T @ (P + M)
        P = 0.5 * (P + P.T)
    return LQRGains(K=K, L=L)


def goal_offset(model: LinearModel, goal: Array) -> Array:
    """w = A s_g + c − s_g per goal row: the drift of the error coordinates e = s − s_g."""
    return goal @ model.A.T + model.c - goal


def lqr_policy(gains: LQRGains, model: LinearModel, s_goal: Array) -> Policy:
    """The LQR controller u_t = −K_t(s_t − s_g) − L_t w for goals ``s_goal`` (P, n)."""
    w = goal_offset(model, s_goal)  # (P, n)

    def act(t: int, s: Array) -> Array:
        e = s - s_goal  # (P, n)
        return -e @ gains.K[t].T - w @ gains.L[t].T  # (P, m)

    return act


def closed_loop(act: Policy, sense: Callable[[Array], Array],
                step: Callable[[Array, Array], Array], z0: Array, z_goal: Array,
                horizon: int, r: float) -> tuple[Array, Array]:
    """Run the controller ``act`` closed loop for ``horizon`` steps from z0 (P, N): at
    each step it sees ``sense`` of the true state (h = f(g(z)), or z itself) and the true
    world ``step`` moves. Returns cost (1) on z per pair (P,) and the final states (P, N)."""
    z = z0
    cost = np.sum((z - z_goal) ** 2, axis=1)
    for t in range(horizon):
        u = act(t, sense(z))
        z = step(z, u)
        cost = cost + np.sum((z - z_goal) ** 2, axis=1) + r * np.sum(u**2, axis=1)
    return cost, z


def rollout(gains: LQRGains, model: LinearModel, sense: Callable[[Array], Array],
            step: Callable[[Array, Array], Array], z0: Array, z_goal: Array,
            s_goal: Array, r: float) -> Array:
    """Run the LQR closed loop from z0 (P, N) and return cost (1) on z per pair (P,).

    ``sense`` maps true states to the controller's coordinates (h = f(g(z)), or z itself);
    ``s_goal`` is the goal in those coordinates; ``step`` is the true world."""
    return closed_loop(lqr_policy(gains, model, s_goal), sense, step, z0, z_goal,
                       gains.horizon, r)[0]


# ------------------------------------------------------------------ CEM
def sequence_cost(model: LinearModel, s: Array, u: Array, goal: Array, r: float) -> Array:
    """Cost (1) under ``model`` of action sequences u (P, K, H, m) from states s (P, n) to
    goals (P, n), without the constant t = 0 term: (P, K)."""
    x = np.broadcast_to(s[:, None], (*u.shape[:2], s.shape[1]))
    cost = r * np.sum(u**2, axis=(2, 3))
    for k in range(u.shape[2]):
        x = x @ model.A.T + u[:, :, k] @ model.B.T + model.c
        cost = cost + np.sum((x - goal[:, None]) ** 2, axis=-1)
    return cost


class CEMPlanner:
    """Receding-horizon cross-entropy planner on ``model`` for goals ``s_goal`` (P, n),
    a :data:`Policy` for one closed-loop run of ``horizon`` steps (called with t = 0, 1,
    ... in order): at step t it samples ``population`` sequences of the T − t remaining
    actions per pair from N(mean, std²) (elementwise), keeps the ``elites`` cheapest by
    :func:`sequence_cost`, refits mean and std on them, ``iterations`` times, and returns
    the first action of the final mean; the rest of that mean starts step t + 1, with
    the standard deviation back at ``std``. The first mean is 0. Draws come from ``rng``
    alone."""

    def __init__(self, model: LinearModel, s_goal: Array, horizon: int, r: float, *,
                 population: int, elites: int, iterations: int, std: float,
                 rng: np.random.Generator) -> None:
        if not 1 <= elites <= population:
            raise ValueError(f"elites = {elites}: between 1 and population = {population}")
        self.model, self.goal, self.r = model, s_goal, r
        self.population, self.elites, self.iterations = population, elites, iterations
        self.std, self.rng, self.horizon = std, rng, horizon
        self.mean = np.zeros((len(s_goal), horizon, model.B.shape[1]))  # (P, T − t, m)

    def __call__(self, t: int, s: Array) -> Array:
        if self.mean.shape[1] != self.horizon - t:
            raise ValueError(f"step {t}: the planner runs its steps once, in order")
        mean, std = self.mean, np.full_like(self.mean, self.std)
        pairs, steps, m = mean.shape
        rows = np.arange(pairs)[:, None]
        for _ in range(self.iterations):
            noise = self.rng.standard_normal((pairs, self.population, steps, m))
            u = mean[:, None] + std[:, None] * noise  # (P, K, H, m)
            cost = sequence_cost(self.model, s, u, self.goal, self.r)  # (P, K)
            best = np.argpartition(cost, self.elites - 1, axis=1)[:, :self.elites]
            elite = u[rows, best]  # (P, E, H, m)
            mean, std = elite.mean(axis=1), elite.std(axis=1)
        self.mean = mean[:, 1:]
        return mean[:, 0]


def reach_success(world: Any, z: Array, goal: Array, radius: float) -> tuple[Array, Array]:
    """Final fingertip distance to the goal positions ``goal`` (P, 2), metres, of final
    latents z (P, N) (inf where z is not finite: the planner diverged), and whether it
    is within ``radius``: (distance (P,), success (P,) bool)."""
    dist = np.full(len(z), np.inf)
    ok = np.all(np.isfinite(z), axis=1)
    if ok.any():
        dist[ok] = np.linalg.norm(world.effector(z[ok]) - goal[ok], axis=1)
    return dist, dist <= radius


# ------------------------------------------------------------------ paths
def controls_for_path(model: LinearModel, path: Array) -> Array:
    """u_k solving z_{k+1} = A z_k + B u_k + c in least squares; path (P, S, N) -> (P, S−1, m)."""
    need = path[:, 1:] - path[:, :-1] @ model.A.T - model.c  # (P, S−1, N)
    flat = need.reshape(-1, need.shape[-1])
    u = np.linalg.lstsq(model.B, flat.T, rcond=None)[0].T
    return u.reshape(*need.shape[:2], -1)


def path_cost(path: Array, controls: Array, goal: Array, r: float) -> Array:
    """Cost (1) of a path (P, S, N) with controls (P, S−1, m) and goal (P, N) -> (P,)."""
    state = np.sum((path - goal[:, None]) ** 2, axis=(1, 2))
    return state + r * np.sum(controls**2, axis=(1, 2))


def interp_ratios(h0: Array, hg: Array, z0: Array, zg: Array, gallery_h: Array,
                  gallery_z: Array, model_z: LinearModel, *, steps: int, r: float,
                  knn: int) -> Array:
    """Cost (1) of the decoded latent straight line over the minimiser's, per pair."""
    frac = np.linspace(0.0, 1.0, steps)[None, :, None]  # (1, S, 1)
    line = h0[:, None] + frac * (hg - h0)[:, None]  # (P, S, n)
    inner = line[:, 1:-1].reshape(-1, line.shape[-1])
    _, idx = cKDTree(gallery_h).query(inner, k=knn)
    decoded = gallery_z[np.asarray(idx).reshape(len(inner), -1)].mean(axis=1)
    path = np.concatenate([z0[:, None], decoded.reshape(len(z0), steps - 2, -1),
                           zg[:, None]], axis=1)  # (P, S, N)
    cost = path_cost(path, controls_for_path(model_z, path), zg, r)
    gains = lqr_gains(model_z, steps - 1, r)
    best = rollout(gains, model_z, _identity, model_z.step, z0, zg, zg, r)
    return cost / best


def _identity(z: Array) -> Array:
    return z


# ------------------------------------------------------------------ entry point
def _streams(seed: int | np.random.Generator) -> dict[str, np.random.SeedSequence]:
    """Child streams of ``seed`` (an integer, or a generator such as
    ``seeding.rng(run_seed, "planning")`` whose seed sequence is the root), one per
    purpose. Names are only ever appended, so an older stream's draws never change."""
    names = ("fit", "pairs", "noise", "cem")
    if isinstance(seed, np.random.Generator):
        root = seed.bit_generator.seed_seq
    else:
        root = np.random.SeedSequence(int(seed))
    return {name: np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, i))
            for i, name in enumerate(names)}


def _transitions(world: Any, cfg: PlanConfig, ss: np.random.SeedSequence):
    rng = np.random.default_rng(ss)
    z = world.sample_latents(cfg.transitions, rng)
    u = cfg.action_std * rng.standard_normal((cfg.transitions, world.action_dim))
    return z, u, world.step(z, u, rng)


def _run(world: Any, ss: np.random.SeedSequence) -> Callable[[Array, Array], Array]:
    """The true world's step with its own noise stream (the same draws for every
    controller started from ``ss``: common random numbers)."""
    return partial(world.step, rng=np.random.default_rng(ss))


def plan_metrics(encode: Callable[[Any], Array], world: Any, cfg: PlanConfig | None = None,
                 *, seed: int | np.random.Generator,
                 random_encode: Callable[[Any], Array] | None = None,
                 **fields: Any) -> dict[str, float | None]:
    """plan_regret (median), plan_regret_p90 and plan_interp_ratio (median) of the
    encoder ``encode`` (observations -> (M, n) latents) on the controlled ``world``
    (``sample_latents``, ``step``, ``observe``, ``action_dim``); ``fields`` override
    ``cfg``. Where the world has a reach task (``world.has_task``, with ``effector`` and
    ``reach_radius``) the ``PLAN_TASK_KEYS`` follow (module docstring);
    ``random_encode``, an untrained encoder of the same architecture, gives
    ``plan_success_random`` (None without it). Random draws come from ``seed`` alone."""
    cfg = dataclasses.replace(cfg or PlanConfig(), **fields)
    ss = _streams(seed)
    z, u, z1 = _transitions(world, cfg, ss["fit"])
    x, x1 = world.observe(z), world.observe(z1)
    h, h1 = encode(x), encode(x1)
    model_h, model_z = fit_linear_model(h, u, h1), fit_linear_model(z, u, z1)
    rng = np.random.default_rng(ss["pairs"])
    z0, zg = world.sample_latents(cfg.pairs, rng), world.sample_latents(cfg.pairs, rng)
    xg = world.observe(zg)
    h0, hg = encode(world.observe(z0)), encode(xg)

    def sense(zt: Array) -> Array:
        return encode(world.observe(zt))

    gains_h = lqr_gains(model_h, cfg.horizon, cfg.r)
    gains_z = lqr_gains(model_z, cfg.horizon, cfg.r)
    cost, end_h = closed_loop(lqr_policy(gains_h, model_h, hg), sense,
                              _run(world, ss["noise"]), z0, zg, cfg.horizon, cfg.r)
    best, end_z = closed_loop(lqr_policy(gains_z, model_z, zg), _identity,
                              _run(world, ss["noise"]), z0, zg, cfg.horizon, cfg.r)
    regret = cost / best - 1.0
    ratio = interp_ratios(h0, hg, z0, zg, h, z, model_z, steps=cfg.interp_steps, r=cfg.r,
                          knn=cfg.knn)
    out = {"plan_regret": _finite(np.median(regret)),
           "plan_regret_p90": _finite(np.quantile(regret, 0.9)),
           "plan_interp_ratio": _finite(np.median(ratio))}
    if not getattr(world, "has_task", False):
        return out
    goal = world.effector(zg)
    radius = float(world.reach_radius)

    def success(end: Array) -> float:
        return float(np.mean(reach_success(world, end, goal, radius)[1]))

    def cem(model: LinearModel, sense_fn: Callable[[Array], Array], s_goal: Array) -> Array:
        planner = CEMPlanner(model, s_goal, cfg.horizon, cfg.r,
                             population=cfg.cem_population, elites=cfg.cem_elites,
                             iterations=cfg.cem_iterations, std=cfg.cem_std,
                             rng=np.random.default_rng(ss["cem"]))
        return closed_loop(planner, sense_fn, _run(world, ss["noise"]), z0, zg,
                           cfg.horizon, cfg.r)[1]

    dist_h = reach_success(world, end_h, goal, radius)[0]
    out.update(plan_success=success(end_h), plan_success_cem=success(cem(model_h, sense, hg)),
               plan_success_z=success(end_z), plan_success_z_cem=success(cem(model_z,
                                                                             _identity, zg)),
               plan_success_random=None, plan_reach_dist=_finite(np.median(dist_h)),
               plan_reach_radius=radius)
    if random_encode is not None:
        model_r = fit_linear_model(random_encode(x), u, random_encode(x1))

        def sense_r(zt: Array) -> Array:
            return random_encode(world.observe(zt))

        gains_r = lqr_gains(model_r, cfg.horizon, cfg.r)
        end_r = closed_loop(lqr_policy(gains_r, model_r, random_encode(xg)), sense_r,
                            _run(world, ss["noise"]), z0, zg, cfg.horizon, cfg.r)[1]
        out["plan_success_random"] = success(end_r)
    return out


def _finite(x) -> float | None:
    """A JSON-safe float (None where the planner diverged to inf or NaN)."""
    x = float(x)
    return x if math.isfinite(x) else None
