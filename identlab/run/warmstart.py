"""Supervised warm starts: put each member's encoder at a known solution before LeJEPA.

A member with ``learner.init.kind: supervised`` draws ``pool`` latents z from its own
``warmstart`` stream (the latent law, i.e. the stationary marginal of its dynamics),
observes x = g(z) with its own mixer and regresses the encoder output onto a target y:

    min_θ  E ‖f_θ(x) − y‖² / N,    y = z (``latent``)  or  y = Φ⁻¹(F(z)) (``gaussianized``),

with the batched AdamW of :func:`identlab.learn.train.train` (betas, eps and weight decay
at TrainConfig's defaults, ``ADAM``; batches of ``batch`` indices into the first
(1 − POOL_HELD_OUT) of the pool, drawn from the same stream), constant lr until
``decay_start`` of the steps, cosine to 0. The rest of the pool is held out: the warm
start's R² to its target (``init_r2``) and on its bulk (``init_r2_bulk``,
thresholds.BULK_QUANTILE) are the held-out linear R² of y from f(x) (fit on the first
half of the held-out latents, scored on the second: :mod:`identlab.measure.split`'s
split of one view). All members of a group share ``learner.init`` (it is part of the
shape signature).
"""

from __future__ import annotations

import numpy as np
import torch

from identlab.core import seeding
from identlab.learn.config import TrainConfig
from identlab.learn.train import Hyper, train
from identlab.measure.metrics import r2_linear, r2_linear_bulk
from identlab.measure.split import heldout_split, n_fit
from identlab.measure.thresholds import BULK_QUANTILE

__all__ = ["warm_start", "warm_target", "POOL_HELD_OUT"]

# Share of the pool held out to score the warm start (never trained on).
POOL_HELD_OUT = 0.2
# The warm start's AdamW betas, eps and weight decay: TrainConfig's field defaults (the
# member's own train.* settings are those of its LeJEPA run, not of this regression).
ADAM = TrainConfig()


def warm_target(z: np.ndarray, world, target: str) -> np.ndarray:
    """The regression target of latents z (n, N): z itself or Φ⁻¹(F(z)) per dimension."""
    return np.asarray(z, np.float64) if target == "latent" else world.latent.gaussianize(z)


def _pool(cfg, world, dev):
    init = cfg.learner.init
    rng = seeding.rng(cfg.seed, "warmstart")
    z = world.latent.sample(init.pool, rng)
    x = world.observe(torch.from_numpy(np.asarray(z)).float())
    y = warm_target(z, world, init.target)
    return x.float().to(dev), torch.from_numpy(y).float().to(dev)


def _batches(cfgs, n_fit: int, batch: int, dev):
    gens = [seeding.torch_generator(c.seed, "warmstart") for c in cfgs]

    def draw(step: int) -> torch.Tensor:
        del step
        return torch.stack([torch.randint(n_fit, (batch,), generator=g, device=g.device)
                            for g in gens]).to(dev)

    return draw


def _held_out_r2(h: np.ndarray, y: np.ndarray) -> dict:
    fit, test = heldout_split(len(y), 0.5, views=1)
    full, _ = r2_linear(h[fit], y[fit], h[test], y[test])
    bulk = r2_linear_bulk(h[fit], y[fit], h[test], y[test], BULK_QUANTILE)
    full = None if full is None or not np.isfinite(full) else float(full)
    return {"init_r2": full, "init_r2_bulk": bulk}


def warm_start(cfgs, worlds, learners, params: dict, dev) -> tuple[dict, list[dict]]:
    """Regress every member's encoder onto its target (see the module docstring).

    Returns the stacked parameters after the warm start and, per member, its held-out
    ``init_r2`` and ``init_r2_bulk`` (None for a non-finite embedding)."""
    init = cfgs[0].learner.init
    pools = [_pool(c, w, dev) for c, w in zip(cfgs, worlds)]
    fit = n_fit(init.pool, 1 - POOL_HELD_OUT)
    xs = torch.stack([p[0] for p in pools])  # (K, pool, D)
    ys = torch.stack([p[1] for p in pools])  # (K, pool, N)
    enc = type(learners[0].encoder)
    draw = _batches(cfgs, fit, init.batch, dev)
    rows = torch.arange(len(cfgs), device=dev)[:, None]

    def batches(step: int):
        idx = draw(step)
        return xs[rows, idx], ys[rows, idx]

    def loss_fn(p, batch):
        xb, yb = batch
        ep = {k: v for k, v in p.items() if not k.startswith("pred_")}
        return ((enc.apply(ep, xb) - yb) ** 2).mean(dim=(1, 2))

    k = len(cfgs)

    def col(v: float) -> torch.Tensor:
        return torch.full((k,), v, dtype=torch.float32, device=dev)

    hyper = Hyper(lr=col(init.lr), beta1=col(ADAM.betas[0]), beta2=col(ADAM.betas[1]),
                  eps=col(ADAM.eps), weight_decay=col(ADAM.weight_decay), steps=init.steps,
                  decay_start=init.decay_start)
    res = train(params, loss_fn, batches, hyper, progress=False, desc="warm start")
    out = {n: v.clone() for n, v in res.params.items()}
    scores = []
    with torch.no_grad():
        ep = {n: v for n, v in out.items() if not n.startswith("pred_")}
        h = enc.apply(ep, xs[:, fit:]).double().cpu().numpy()
    for j in range(k):
        ok = np.isfinite(h[j]).all()
        scores.append(_held_out_r2(h[j], ys[j, fit:].double().cpu().numpy()) if ok
                      else {"init_r2": None, "init_r2_bulk": None})
    return out, scores
