"""The evaluation protocol of one trained member: which pairs, which scores, which split.

``score_member(cfg, world, embed)`` draws the member's held-out pairs from its own
``eval`` stream, embeds their observations with ``embed`` (any callable x -> h, numpy
(n, N)), and returns the record's ``metrics`` and its scatter ``sample``. Every fitted
score uses the first ``eval.fit_fraction`` of the pairs (both views) to fit and the rest
to score (:func:`identlab.measure.split.heldout_split`). With ``eval.plan.enabled`` the
member also plans (design §8): ``plan_regret``, ``plan_regret_p90`` and
``plan_interp_ratio`` from the ``planning`` stream, on the world driven by actions
(:class:`ControlledWorld`), and where that world has a reach task (the Reacher) the
success rates of ``PLAN_TASK_KEYS``, the untrained-encoder bound among them from an
encoder of the member's architecture drawn from the ``random_encoder`` stream. With
``eval.attribution.enabled`` (the default) it adds the attribution keys (design §7,
:func:`attribution_scores`) for every world, vector or pixel: they need only the held-out
h already computed and the true z, so a rendered world costs no extra frames.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from identlab.core import seeding
from identlab.core.registry import ENCODERS, MIXERS, OBJECTIVES
from identlab.measure.attribution import (
    ATTRIBUTION_KEYS,
    attribution_metrics,
    oracle_latents,
    r2_hz_gauss,
)
from identlab.measure.metrics import BOUND_KEYS, evaluate, r2_knn, r2_linear, r2_linear_bulk
from identlab.measure.planning import plan_metrics
from identlab.measure.split import heldout_split
from identlab.measure.thresholds import BULK_QUANTILE
from identlab.world.control import ControlledWorld

__all__ = ["score_member", "plan_scores", "random_embedding", "attribution_scores",
           "attribution_setting", "target_scores", "grid_latents", "SCATTER_POINTS",
           "TIMING_KEYS", "TARGET_KEYS"]

# The scores against the theorem's target (World.theorem_target) every record carries.
TARGET_KEYS = ("theorem_target", "r2_target", "cca_target", "procrustes_target",
               "bound_trivial", "bound_informative")

# Wall-clock entries score_member may add to the metrics; the record moves them to its
# provenance so that metrics stay a function of the config alone.
TIMING_KEYS = ("plan_s", "plan_frames_per_s")

Embed = Callable[[torch.Tensor], np.ndarray]


def score_member(cfg, world, embed: Embed) -> tuple[dict, dict | None]:
    """The record's ``metrics`` and ``sample`` of one member (``cfg``: its RunConfig)."""
    z_t, z_t1 = world.eval_pairs(cfg.eval.n)
    x = world.observe_pairs(np.concatenate([z_t, z_t1]), "eval")
    h = embed(x)
    n = z_t.shape[0]
    if not np.all(np.isfinite(h)):
        return {"nonfinite_embedding": True, "verdict": "diverged"}, None
    # the bound is the theorem's, so it is scored against the target (below) when that
    # is u; against z it is left out
    rho_z = world.rho if world.theorem_target == "z" else None
    out = evaluate(h[:n], h[n:], z_t, z_t1, cfg.eval, rho=rho_z, seed=cfg.seed)
    out.update(target_scores(cfg, world, h[:n], h[n:], z_t, z_t1, out))
    x_flat = x[:n].reshape(n, -1).float().numpy()
    out["r2_xz"] = _r2_from_observations(x_flat, z_t, cfg.eval.fit_fraction)
    out["r2_hz_bulk"] = _r2_bulk(h, z_t, z_t1, cfg.eval.fit_fraction)
    out.update(_target_scores(h, world.mixer.eval_targets(np.concatenate([z_t, z_t1])), n,
                              cfg.eval.fit_fraction, cfg.eval.knn))
    if world.mixer.rendered:
        out["wrap_fraction"] = world.mixer.wrap.get("eval")
        out["train_frames"] = world.mixer.info()["train_frames"]
    if cfg.eval.grid:
        out.update(_grid_scores(cfg, world, embed))
    if cfg.eval.plan.enabled:
        out.update(plan_scores(cfg, world, embed))
    if cfg.eval.attribution.enabled:
        r2_near = out["r2_target"] if world.theorem_target else out.get("r2_hz")
        out.update(attribution_scores(cfg, world, h[:n], h[n:], z_t, z_t1, r2_near))
    sample = None
    if cfg.world.dim == 2:  # a small sample for h-vs-z scatter plots
        m = min(SCATTER_POINTS, n)
        sample = {"z": np.round(z_t[:m], 4).tolist(), "h": np.round(h[:m], 4).tolist()}
    return out, sample


SCATTER_POINTS = 400


def grid_latents(points: int, half_width: float) -> np.ndarray:
    """A regular points x points grid over [-half_width, half_width]^2, (points², 2)."""
    axis = np.linspace(-half_width, half_width, points)
    a, b = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1)


def _grid_scores(cfg, world, embed: Embed) -> dict:
    """Linear recovery scored on a regular latent grid instead of samples of the latent
    law (the paper's gennorm protocol): every region of [-r, r]^2 weighs the same, so the
    score emphasises the tails the law itself rarely visits. The regression is fitted on
    a random ``fit_fraction`` of the grid points (the held-out split's count, over the
    points in a random order from the ``eval`` stream) and scored on the rest."""
    z = grid_latents(cfg.eval.grid, cfg.eval.grid_range)
    h = embed(world.mixer.forward(torch.from_numpy(z).float()))
    if not np.all(np.isfinite(h)):
        return {"r2_hz_grid": None}
    perm = seeding.rng(cfg.seed, "eval").permutation(len(z))
    fit, test = (perm[i] for i in heldout_split(len(z), cfg.eval.fit_fraction, views=1))
    r2, _ = r2_linear(h[fit], z[fit], h[test], z[test])
    return {"r2_hz_grid": None if r2 is None or not np.isfinite(r2) else float(r2)}


def plan_scores(cfg, world, embed: Embed) -> dict:
    """The planning metrics of one member (design §8), seeded from the ``planning``
    stream; rendered worlds use the ``rendered_*`` budget and add ``plan_frames_per_s``
    (frames rendered per second of the whole evaluation) and ``plan_frames``, the frames
    the controlled world rendered: 2·transitions + pairs·(horizon + 2), plus, with a
    reach task, 2·pairs·horizon for the closed loops of CEM on h and of the untrained
    encoder (:func:`random_embedding`)."""
    plan = cfg.eval.plan.for_world(world.mixer.rendered)
    t0 = time.perf_counter()
    with ControlledWorld(world, plan) as controlled:
        rand = random_embedding(cfg) if controlled.has_task else None
        out = plan_metrics(embed, controlled, plan, seed=seeding.rng(cfg.seed, "planning"),
                           random_encode=rand)
        frames = controlled.frames
    out["plan_s"] = round(time.perf_counter() - t0, 3)
    if world.mixer.rendered:
        out["plan_frames"] = frames
        out["plan_frames_per_s"] = round(frames / max(out["plan_s"], 1e-9), 1)
    return out


def random_embedding(cfg) -> Embed:
    """An untrained encoder of the member's architecture (``cfg.learner.encoder``) as a
    callable x -> h, its weights drawn from the run's ``random_encoder`` stream (not the
    ``init`` stream the trained encoder started from), evaluated on the CPU: the
    planning bound of an encoder that learned nothing (``plan_success_random``)."""
    from identlab.learn.encoders import stack_params
    from identlab.learn.learner import Learner
    from identlab.run.program import embed  # imported here: program imports this module
    from identlab.sizes import obs_dim

    learner = Learner.build(cfg.learner, obs_dim(cfg.world), cfg.world.dim)
    g = seeding.torch_generator(cfg.seed, "random_encoder")
    params = stack_params([learner.encoder.init(g)])
    dev = torch.device("cpu")
    return lambda x: embed(learner, params, 0, x, dev)


def attribution_setting(cfg) -> dict | None:
    """The training settings J is evaluated at, or None: the objective class's
    ``attribution_setting`` (λ at the run's last step, its Gaussianity term and the
    views and scale it is taken over; None for objectives without a Gaussianity term,
    whose J says nothing about their optimum) plus the run's batch size and
    ``fixed_scale``: the encoder and the mixer both preserve volume, so the oracles are
    compared at scale 1 (:mod:`identlab.measure.attribution`)."""
    lc = cfg.learner
    obj = OBJECTIVES.get(lc.objective.kind)(lc.objective, cfg.world.dim)
    setting = obj.attribution_setting(cfg.train.steps)
    if setting is None:
        return None
    return {**setting, "batch": cfg.train.batch, "fixed_scale": preserves_volume(cfg)}


def preserves_volume(cfg) -> bool:
    """Whether h = f(g(z)) has |det| = 1 for every weight setting: a volume-preserving
    encoder on a volume-preserving mixer."""
    return bool(ENCODERS.get(cfg.learner.encoder.kind).volume_preserving
                and MIXERS.get(cfg.world.mixer.kind).preserves_volume(cfg.world.mixer))


def target_scores(cfg, world, h_t, h_t1, z_t, z_t1, scores: dict) -> dict:
    """``TARGET_KEYS`` of one member: ``theorem_target`` (z, u or None), R², CCA and
    Procrustes error against that variable (with ``scores``, the member's scores
    against z, reused when the target is z), and whether the bound is informative:
    ``bound_trivial`` is the Procrustes error of a constant embedding (the target's total
    variance), which no bound above it can improve on. A ``u`` target also moves every
    bound key (``BOUND_KEYS``) and ``sigreg_stat_expected_pairs`` onto u."""
    target = world.theorem_target
    out = dict.fromkeys(TARGET_KEYS)
    out["theorem_target"] = target
    if target is None:
        return out
    if target == "z":
        ev = scores
    else:
        u_t, u_t1 = world.target(z_t), world.target(z_t1)
        ev = evaluate(h_t, h_t1, u_t, u_t1, cfg.eval, rho=world.rho, seed=cfg.seed)
        out.update({k: ev.get(k) for k in (*BOUND_KEYS, "sigreg_stat_expected_pairs")})
    y = world.target(np.concatenate([z_t, z_t1]))
    trivial = float(np.var(y, axis=0).sum())
    bound = ev.get("bound")
    out.update(r2_target=ev.get("r2_hz"), cca_target=ev.get("cca_mean"),
               procrustes_target=ev.get("procrustes"), bound_trivial=trivial,
               bound_informative=None if bound is None else bool(bound < trivial))
    return out


def attribution_scores(cfg, world, h_t, h_t1, z_t, z_t1, r2_target: float | None) -> dict:
    """The attribution keys (``ATTRIBUTION_KEYS``) of one member on its held-out pairs,
    seeded from the ``attribution`` stream. The oracles rotate the world's theorem
    target (z where it has none) and the pairs are split into score and fit pairs
    (:func:`~identlab.measure.attribution.oracle_latents`). ``r2_target``: R² of h
    against that target. For objectives without SIGReg (:func:`attribution_setting` is
    None) only ``r2_hz_gauss`` is computed (R² against Φ⁻¹(F(z)) needs no loss); the
    loss keys and the verdict are None."""
    a = cfg.eval.attribution
    seed = int(seeding.rng(cfg.seed, "attribution").integers(2**31 - 1))
    setting = attribution_setting(cfg)
    r2g = _r2_gauss(h_t, h_t1, z_t, z_t1, world.latent, cfg)
    if setting is None:
        out = dict.fromkeys(ATTRIBUTION_KEYS)
        out["r2_hz_gauss"] = r2g
        return out
    lat = oracle_latents(z_t, z_t1, world.latent, world.theorem_target, pairs=a.pairs,
                         marginal_known=world.dynamics.marginal_known)
    m = len(lat.score[0])
    out = attribution_metrics(h_t[:m], h_t1[:m], lat, **setting, directions=a.directions,
                              max_directions=a.max_directions,
                              fit_directions=a.fit_directions, power=a.power, path=a.path,
                              seed=seed, r2_target=r2_target)
    out["r2_hz_gauss"] = r2g
    return out


def _r2_gauss(h_t, h_t1, z_t, z_t1, law, cfg) -> float | None:
    r2 = r2_hz_gauss(h_t, h_t1, z_t, z_t1, law, cfg.eval.fit_fraction)
    return None if r2 is None or not np.isfinite(r2) else float(r2)


def _target_scores(h: np.ndarray, targets: dict[str, np.ndarray], n: int,
                   fit_fraction: float, knn: int) -> dict:
    """Held-out linear and kNN R² of each extra target (e.g. the sin/cos of the Reacher's
    joint angles) from h, with the same split as :func:`identlab.metrics.evaluate`: fit on
    the first ``fit_fraction`` of the pairs (both views), score on the rest. Keys
    ``r2_hz_<name>``, ``r2_hz_<name>_dims``, ``nl_r2_hz_<name>``."""
    fit, test = heldout_split(n, fit_fraction)
    out = {}
    for name, y in targets.items():
        r2, dims = r2_linear(h[fit], y[fit], h[test], y[test])
        nl, _ = r2_knn(h[fit], y[fit], h[test], y[test], k=knn)
        out.update({f"r2_hz_{name}": r2, f"r2_hz_{name}_dims": dims, f"nl_r2_hz_{name}": nl})
    return out


def _r2_bulk(h: np.ndarray, z_t, z_t1, fit_fraction: float) -> float | None:
    """``r2_hz_bulk``: r2_hz (same split: the first ``fit_fraction`` of the pairs, both
    views, fit; the rest scored) on the pairs whose ‖z‖ is within the BULK_QUANTILE
    radius quantile of the pooled eval latents: the far tail, which dominates the full
    R² of heavy-tailed laws, left out."""
    fit, test = heldout_split(len(z_t), fit_fraction)
    z = np.concatenate([z_t, z_t1])
    return r2_linear_bulk(h[fit], z[fit], h[test], z[test], BULK_QUANTILE)


def _r2_from_observations(x: np.ndarray, z: np.ndarray, fit_fraction: float) -> float | None:
    """Held-out linear R² of z from the raw observations x: how hard the mixing is (the
    paper's R²(x→z) column), the baseline an encoder must beat. x, z: the t-view of the
    pairs only (one view, the same first ``fit_fraction`` fitted)."""
    fit, test = heldout_split(len(z), fit_fraction, views=1)
    r2, _ = r2_linear(x[fit], z[fit], x[test], z[test])
    return None if r2 is None or not np.isfinite(r2) else float(r2)
