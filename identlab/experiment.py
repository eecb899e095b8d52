"""From run configs to records: build an ensemble, train it as one program, evaluate.

``run_group`` takes configs that share a shape signature (``signature``), builds each
member's world, encoder and streams from its own seed, trains all members with
:func:`identlab.train.train`, evaluates each on its own held-out set and returns one
record per member. ``run_configs`` splits any list of configs into such groups and into
memory-bounded chunks.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import __version__, seeding
from .config import RunConfig, config_hash
from .encoders import stack_params
from .mixers import stack_weights
from .registry import ENCODERS, OBJECTIVES, PREDICTORS
from .schema import to_dict
from .sigreg import random_directions
from .train import Hyper, resolve_device, train
from .world import World

__all__ = ["Learner", "signature", "run_group", "run_configs", "provenance",
           "members_per_chunk"]


@dataclass
class Learner:
    """One member's encoder, predictor and objective objects (their maths is static)."""

    encoder: object
    predictor: object
    objective: object

    @classmethod
    def from_config(cls, cfg: RunConfig, in_dim: int) -> "Learner":
        n = cfg.world.dim
        lc = cfg.learner
        return cls(ENCODERS.get(lc.encoder.kind)(lc.encoder, in_dim, n),
                   PREDICTORS.get(lc.predictor.kind)(lc.predictor, n),
                   OBJECTIVES.get(lc.objective.kind)(lc.objective, n))


def signature(cfg: RunConfig) -> tuple:
    """Everything that must agree for configs to train in one batched program."""
    w, t = cfg.world, cfg.train
    mixer = (w.mixer.kind, getattr(w.mixer, "depth", None))
    learner = Learner.from_config(cfg, in_dim=_obs_dim(cfg))
    return (w.dim, mixer, learner.encoder.signature(), learner.predictor.signature(),
            learner.objective.signature(), t.steps, t.batch, t.warmup, t.decay_start,
            t.data_chunk)


def _obs_dim(cfg: RunConfig) -> int:
    return cfg.world.dim  # vector mixers keep the dimension


# ------------------------------------------------------------------ data stream
class PairStream:
    """Per-member training pairs and SIGReg directions, drawn ``chunk`` steps at a time
    from each member's own streams (so a member's data never depends on its batch)."""

    def __init__(self, worlds: list[World], cfgs: list[RunConfig], device: torch.device,
                 slices: int) -> None:
        self.worlds = worlds
        self.batch = cfgs[0].train.batch
        self.chunk = cfgs[0].train.data_chunk
        self.device = device
        self.slices = slices
        self.rngs = [seeding.rng(c.seed, "train") for c in cfgs]
        self.dir_gens = [seeding.torch_generator(c.seed, "directions") for c in cfgs]
        self.mix_cls = type(worlds[0].mixer)
        self.mix_w = stack_weights([w.mixer for w in worlds], device)
        self._chunk_id = -1

    def _fill(self, chunk_id: int) -> None:
        n = self.chunk * self.batch
        zt, zt1 = zip(*(w.sample_pairs(n, r) for w, r in zip(self.worlds, self.rngs)))
        z = torch.from_numpy(np.concatenate([np.stack(zt), np.stack(zt1)], axis=1))
        z = z.to(device=self.device, dtype=torch.float32)  # (K, 2n, N)
        x = self.mix_cls.apply(self.mix_w, z)  # (K, 2n, D)
        self.x_t, self.x_t1 = x[:, :n], x[:, n:]
        if self.slices:
            dim = self.worlds[0].dim
            d = torch.stack([random_directions(dim, self.slices, g, torch.float64,
                                               leading=(self.chunk,))
                             for g in self.dir_gens])  # (K, C, N, S)
            self.dirs = d.to(device=self.device, dtype=torch.float32)
        self._chunk_id = chunk_id

    def __call__(self, step: int):
        c, i = divmod(step, self.chunk)
        if c != self._chunk_id:
            self._fill(c)
        sl = slice(i * self.batch, (i + 1) * self.batch)
        dirs = self.dirs[:, i] if self.slices else None
        return self.x_t[:, sl], self.x_t1[:, sl], dirs


def make_loss_fn(learner: Learner, coefs: dict[str, torch.Tensor]):
    enc, pred, obj = type(learner.encoder), type(learner.predictor), learner.objective

    def loss_fn(params, batch):
        x_t, x_t1, dirs = batch
        b = x_t.shape[1]
        ep = {k: v for k, v in params.items() if not k.startswith("pred_")}
        pp = {k: v for k, v in params.items() if k.startswith("pred_")}
        h = enc.apply(ep, torch.cat([x_t, x_t1], dim=1))  # (K, 2B, N): one pass, both views
        h_t, h_t1 = h[:, :b], h[:, b:]
        return obj.loss(h_t, h_t1, pred.apply(pp, h_t), dirs, coefs)

    return loss_fn


# ------------------------------------------------------------------ one group
def run_group(cfgs: list[RunConfig], *, device: str | torch.device = "auto",
              progress: bool = True, desc: str = "train") -> list[dict]:
    """Train and evaluate configs sharing one signature as a single batched program."""
    sigs = {signature(c) for c in cfgs}
    if len(sigs) != 1:
        raise ValueError("run_group needs configs with one shape signature")
    dev = resolve_device(device)
    t_start = time.perf_counter()
    prog = build_program(cfgs, dev)
    worlds, learners = prog.worlds, prog.learners
    res = train(prog.params, prog.loss_fn, prog.stream, prog.hyper, progress=progress,
                desc=desc)
    records = []
    prov = provenance(dev)
    for k, (cfg, world, learner) in enumerate(zip(cfgs, worlds, learners)):
        diverged = bool(res.diverged[k])
        metrics, sample = ({}, None) if diverged else \
            _evaluate_member(cfg, world, learner, res.params, k, dev)
        records.append({
            "hash": config_hash(cfg),
            "config": to_dict(cfg),
            "seed": cfg.seed,
            "status": "diverged" if diverged else "ok",
            "diverged_at": res.diverged_at[k],
            "metrics": metrics,
            "flags": world.flags.as_dict(),
            "theorem_applies": world.theorem_applies,
            "reasons": world.reasons(),
            "mixer": world.mixer.info(),
            "sample": sample,
            "train": {"final_loss": res.final_loss[k], "log_every": res.log_every,
                      "history": res.history[k]},
            "provenance": {**prov, "wall_s": round(time.perf_counter() - t_start, 3),
                           "train_s": round(res.wall_s, 3),
                           "steps_per_s": round(res.steps_per_s, 2),
                           "group_size": len(cfgs)},
        })
    return records


@dataclass
class Program:
    """Everything the trainer needs for one batched group."""

    worlds: list
    learners: list
    params: dict
    loss_fn: object
    stream: PairStream
    hyper: Hyper


def build_program(cfgs: list[RunConfig], dev: torch.device) -> Program:
    """Worlds, learners, stacked initial parameters, data stream and optimiser settings
    of a group of configs sharing one signature."""
    worlds = [World(c.world, c.seed) for c in cfgs]
    learners = [Learner.from_config(c, _obs_dim(c)) for c in cfgs]
    params = _init_params(cfgs, learners, dev)
    coefs = _stack_coefs([lr.objective.coefs() for lr in learners], dev)
    obj = learners[0].objective
    stream = PairStream(worlds, cfgs, dev, obj.slices if obj.uses_directions else 0)
    return Program(worlds, learners, params, make_loss_fn(learners[0], coefs), stream,
                   _hyper(cfgs, dev))


def _init_params(cfgs, learners, dev):
    members = []
    for cfg, lr in zip(cfgs, learners):
        g = seeding.torch_generator(cfg.seed, "init")
        p = lr.encoder.init(g)
        p.update(lr.predictor.init(g))
        members.append(p)
    return {k: v.to(dev) for k, v in stack_params(members).items()}


def _stack_coefs(coef_list, dev):
    keys = coef_list[0].keys()
    return {k: torch.tensor([c[k] for c in coef_list], dtype=torch.float32, device=dev)
            for k in keys}


def _hyper(cfgs, dev) -> Hyper:
    t = cfgs[0].train

    def col(fn):
        return torch.tensor([fn(c.train) for c in cfgs], dtype=torch.float32, device=dev)

    return Hyper(lr=col(lambda x: x.lr), beta1=col(lambda x: x.betas[0]),
                 beta2=col(lambda x: x.betas[1]), eps=col(lambda x: x.eps),
                 weight_decay=col(lambda x: x.weight_decay), steps=t.steps,
                 warmup=t.warmup, decay_start=t.decay_start)


@torch.no_grad()
def embed(learner: Learner, params: dict, k: int, x: np.ndarray | torch.Tensor,
          dev: torch.device, chunk: int = 8192) -> np.ndarray:
    """Member ``k``'s embedding of observations x (n, D) -> (n, N) float64."""
    enc = type(learner.encoder)
    ep = {n: v[k:k + 1] for n, v in params.items() if not n.startswith("pred_")}
    x = torch.as_tensor(x, dtype=torch.float32)
    out = [enc.apply(ep, x[i:i + chunk].to(dev)[None])[0].double().cpu()
           for i in range(0, x.shape[0], chunk)]
    return torch.cat(out).numpy()


def _evaluate_member(cfg, world, learner, params, k, dev) -> dict:
    from .metrics import evaluate

    rng = seeding.rng(cfg.seed, "eval")
    z_t, z_t1 = world.sample_pairs(cfg.eval.n, rng)
    x = world.mixer.forward(torch.from_numpy(np.concatenate([z_t, z_t1])).float())
    h = embed(learner, params, k, x, dev)
    n = z_t.shape[0]
    if not np.all(np.isfinite(h)):
        return {"nonfinite_embedding": True}, None
    out = evaluate(h[:n], h[n:], z_t, z_t1, rho=world.rho,
                   fit_fraction=cfg.eval.fit_fraction, knn=cfg.eval.knn,
                   sigreg_slices=cfg.eval.sigreg_slices, seed=cfg.seed)
    out["r2_xz"] = _r2_from_observations(x.numpy()[:n], z_t, cfg.eval.fit_fraction)
    if cfg.eval.grid:
        out.update(_grid_scores(cfg, world, learner, params, k, dev))
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


def _grid_scores(cfg, world, learner, params, k, dev) -> dict:
    """Linear recovery scored on a regular latent grid instead of samples of the latent
    law (the paper's gennorm protocol): every region of [-r, r]^2 weighs the same, so the
    score emphasises the tails the law itself rarely visits. The regression is fitted on
    a random ``fit_fraction`` of the grid points and scored on the rest."""
    from .metrics import r2_linear

    z = grid_latents(cfg.eval.grid, cfg.eval.grid_range)
    h = embed(learner, params, k, world.mixer.forward(torch.from_numpy(z).float()), dev)
    if not np.all(np.isfinite(h)):
        return {"r2_hz_grid": None}
    perm = seeding.rng(cfg.seed, "eval").permutation(len(z))
    n_fit = int(len(z) * cfg.eval.fit_fraction)
    fit, test = perm[:n_fit], perm[n_fit:]
    r2, _ = r2_linear(h[fit], z[fit], h[test], z[test])
    return {"r2_hz_grid": None if r2 is None or not np.isfinite(r2) else float(r2)}


def _r2_from_observations(x: np.ndarray, z: np.ndarray, fit_fraction: float) -> float | None:
    """Held-out linear R² of z from the raw observations x: how hard the mixing is (the
    paper's R²(x→z) column), the baseline an encoder must beat."""
    from .metrics import r2_linear

    n_fit = int(len(z) * fit_fraction)
    r2, _ = r2_linear(x[:n_fit], z[:n_fit], x[n_fit:], z[n_fit:])
    return None if r2 is None or not np.isfinite(r2) else float(r2)


# ------------------------------------------------------------------ many groups
def bytes_per_member(cfg: RunConfig) -> int:
    """A rough upper estimate of one member's training working set in bytes."""
    t, n = cfg.train, cfg.world.dim
    enc = cfg.learner.encoder
    width = getattr(enc, "hidden", n) * getattr(enc, "depth", 1)
    m = 2 * t.batch
    acts = m * (_obs_dim(cfg) + 3 * width + 4 * n) * 4
    slices = getattr(cfg.learner.objective, "slices", 0)
    sig = m * slices * 4 * 8
    data = t.data_chunk * m * (_obs_dim(cfg) + n) * 4 * 2
    hidden = getattr(enc, "hidden", n)
    n_params = getattr(enc, "depth", 1) * hidden * hidden + 2 * hidden * n
    return int(acts + sig + data + 4 * 4 * n_params)


def default_budget(dev: torch.device) -> int:
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(0.7 * free)
    return int(float(os.environ.get("IDENTLAB_CPU_BUDGET_GB", "3")) * 2**30)


def members_per_chunk(cfg: RunConfig, dev: torch.device, budget: int | None = None,
                      cap: int = 256) -> int:
    budget = default_budget(dev) if budget is None else budget
    return max(1, min(cap, budget // max(bytes_per_member(cfg), 1)))


def chunk_groups(cfgs: list[RunConfig], dev: torch.device, budget: int | None = None,
                 max_members: int | None = None) -> list[list[int]]:
    """Indices into ``cfgs``: grouped by shape signature, each group cut into chunks that
    fit the memory budget (and ``max_members``)."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, c in enumerate(cfgs):
        groups[signature(c)].append(i)
    out = []
    for idx in groups.values():
        size = members_per_chunk(cfgs[idx[0]], dev, budget)
        if max_members:
            size = min(size, max_members)
        out.extend(idx[i:i + size] for i in range(0, len(idx), size))
    return out


def run_configs(cfgs: list[RunConfig], *, device: str | torch.device = "auto",
                progress: bool = True, budget: int | None = None,
                max_members: int | None = None, on_records=None) -> list[dict]:
    """Run any configs: grouped by signature, chunked to the memory budget."""
    dev = resolve_device(device)
    out = []
    for idx in chunk_groups(cfgs, dev, budget, max_members):
        recs = run_group([cfgs[i] for i in idx], device=dev, progress=progress,
                         desc=f"train K={len(idx)}")
        if on_records is not None:
            on_records(recs)
        out.extend(recs)
    return out


_PROV_CACHE: dict[str, str | None] = {}


def git_sha() -> str | None:
    if "sha" not in _PROV_CACHE:
        try:
            sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True, cwd=Path(__file__).resolve().parent, timeout=5)
            _PROV_CACHE["sha"] = sha.stdout.strip() or None if sha.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            _PROV_CACHE["sha"] = None
    return _PROV_CACHE["sha"]


def provenance(dev: torch.device) -> dict:
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor()
    return {"identlab": __version__, "git_sha": git_sha(), "torch": torch.__version__,
            "python": platform.python_version(), "device": str(dev),
            "device_name": name or platform.machine(), "threads": torch.get_num_threads()}
