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

from identlab import __version__
from identlab.config import RunConfig, config_hash
from identlab.core import seeding
from identlab.core.registry import ENCODERS, MIXERS, OBJECTIVES, PREDICTORS
from identlab.core.schema import to_dict
from identlab.learn.encoders import stack_params
from identlab.learn.sigreg import random_directions
from identlab.learn.train import Hyper, resolve_device, train
from identlab.world.mixers import stack_weights
from identlab.world.world import World

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
    mixer = (w.mixer.kind, getattr(w.mixer, "depth", None), getattr(w.mixer, "pairs", None))
    learner = Learner.from_config(cfg, in_dim=_obs_dim(cfg))
    return (w.dim, mixer, learner.encoder.signature(), learner.predictor.signature(),
            learner.objective.signature(), t.steps, t.batch, t.warmup, t.decay_start,
            t.data_chunk)


def _obs_dim(cfg: RunConfig) -> int:
    """Size of one observation: the world dim for vector mixers, 3·H·W for frames."""
    return MIXERS.get(cfg.world.mixer.kind).obs_dim(cfg.world.mixer, cfg.world.dim)


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
        self._draw_directions()
        self._chunk_id = chunk_id

    def _draw_directions(self) -> None:
        if self.slices:
            dim = self.worlds[0].dim
            d = torch.stack([random_directions(dim, self.slices, g, torch.float64,
                                               leading=(self.chunk,))
                             for g in self.dir_gens])  # (K, C, N, S)
            self.dirs = d.to(device=self.device, dtype=torch.float32)

    def __call__(self, step: int):
        c, i = divmod(step, self.chunk)
        if c != self._chunk_id:
            self._fill(c)
        sl = slice(i * self.batch, (i + 1) * self.batch)
        dirs = self.dirs[:, i] if self.slices else None
        return self.x_t[:, sl], self.x_t1[:, sl], dirs


class FramePairStream(PairStream):
    """Pixel worlds: each member trains on its own finite set of ``world.mixer.pairs``
    pre-rendered pairs (frame_t, frame_t+1), drawn once with ``World.sample_pairs`` from
    the member's ``train`` stream and kept as uint8 on the device (the encoder converts a
    batch to float). Minibatches walk through per-member random permutations of the set
    (epochs), drawn from the same stream; SIGReg directions as in :class:`PairStream`.
    The members' held-out eval frames are rendered in the same pass (never trained on)."""

    def __init__(self, worlds: list[World], cfgs: list[RunConfig], device: torch.device,
                 slices: int, progress: bool = True) -> None:
        from identlab.world import pixels

        super().__init__(worlds, cfgs, device, slices)
        self.pairs = cfgs[0].world.mixer.pairs
        root = pixels.cache_root()
        train_sets, eval_sets = [], []
        for cfg, world, rng in zip(cfgs, worlds, self.rngs):
            z_t, z_t1 = world.sample_pairs(self.pairs, rng)
            train_sets.append(frame_set(cfg, world, "train", z_t, z_t1, root))
            eval_sets.append(frame_set(cfg, world, "eval", *eval_latents(cfg, world), root))
        self.render_info = pixels.ensure_frames(train_sets + eval_sets, progress=progress)
        self.frames = torch.stack([torch.from_numpy(s.load()) for s in train_sets]).to(
            device)  # (K, 2P, 3, H, W) uint8: rows [0, P) are frame_t, [P, 2P) frame_t+1
        self._order = [np.empty(0, dtype=np.int64) for _ in cfgs]

    def _indices(self, k: int, n: int) -> np.ndarray:
        """The next n training-pair indices of member k (epoch-wise permutations)."""
        order = self._order[k]
        while len(order) < n:
            order = np.concatenate([order, self.rngs[k].permutation(self.pairs)])
        self._order[k] = order[n:]
        return order[:n]

    def _fill(self, chunk_id: int) -> None:
        n = self.chunk * self.batch
        idx = np.stack([self._indices(k, n) for k in range(len(self.worlds))])
        self.idx = torch.from_numpy(idx).to(self.device)  # (K, C·B)
        self.members = torch.arange(len(self.worlds), device=self.device)[:, None]
        self._draw_directions()
        self._chunk_id = chunk_id

    def __call__(self, step: int):
        c, i = divmod(step, self.chunk)
        if c != self._chunk_id:
            self._fill(c)
        idx = self.idx[:, i * self.batch:(i + 1) * self.batch]  # (K, B)
        x_t = self.frames[self.members, idx]  # (K, B, 3, H, W) uint8
        x_t1 = self.frames[self.members, idx + self.pairs]
        dirs = self.dirs[:, i] if self.slices else None
        return x_t, x_t1, dirs


def frame_set(cfg: RunConfig, world: World, split: str, z_t: np.ndarray, z_t1: np.ndarray,
              root) -> object:
    """The cached frames of pairs (z_t, z_t1) of one member and split: rows [0, n) are
    the frames of z_t, rows [n, 2n) those of z_t1. Records the wrap-around fraction."""
    from identlab.world.pixels import FrameSet

    z = np.concatenate([z_t, z_t1])
    world.mixer.wrap[split] = world.mixer.wrap_fraction(z)
    return FrameSet(cfg.world, cfg.seed, split, world.mixer.angles(z), root)


def eval_latents(cfg: RunConfig, world: World) -> tuple[np.ndarray, np.ndarray]:
    """The held-out evaluation pairs of a member, from its own ``eval`` stream."""
    return world.sample_pairs(cfg.eval.n, seeding.rng(cfg.seed, "eval"))


def observe(cfg: RunConfig, world: World, z: np.ndarray, split: str):
    """Observations of latents z (n, N): the mixer applied in float32, or, for a
    rendered mixer, the cached frames of the pairs (z[:n/2], z[n/2:]) as uint8."""
    if not world.mixer.rendered:
        return world.mixer.forward(torch.from_numpy(z).float())
    from identlab.world.pixels import cache_root, ensure_frames

    n = len(z) // 2
    fs = frame_set(cfg, world, split, z[:n], z[n:], cache_root())
    ensure_frames([fs], progress=False)  # a no-op when the stream rendered them
    return torch.from_numpy(fs.load())


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
    prog = build_program(cfgs, dev, progress)
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


def build_program(cfgs: list[RunConfig], dev: torch.device, progress: bool = False) -> Program:
    """Worlds, learners, stacked initial parameters, data stream and optimiser settings
    of a group of configs sharing one signature."""
    worlds = [World(c.world, c.seed) for c in cfgs]
    learners = [Learner.from_config(c, _obs_dim(c)) for c in cfgs]
    params = _init_params(cfgs, learners, dev)
    coefs = _stack_coefs([lr.objective.coefs() for lr in learners], dev)
    obj = learners[0].objective
    slices = obj.slices if obj.uses_directions else 0
    if type(worlds[0].mixer).rendered:
        stream = FramePairStream(worlds, cfgs, dev, slices, progress=progress)
    else:
        stream = PairStream(worlds, cfgs, dev, slices)
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
    x = torch.as_tensor(x)
    x = x if x.dtype == torch.uint8 else x.float()  # frames stay uint8 until a chunk is used
    out = [enc.apply(ep, x[i:i + chunk].to(dev)[None])[0].double().cpu()
           for i in range(0, x.shape[0], chunk)]
    return torch.cat(out).numpy()


def _evaluate_member(cfg, world, learner, params, k, dev) -> dict:
    from identlab.measure.metrics import evaluate

    z_t, z_t1 = eval_latents(cfg, world)
    x = observe(cfg, world, np.concatenate([z_t, z_t1]), "eval")
    h = embed(learner, params, k, x, dev)
    n = z_t.shape[0]
    if not np.all(np.isfinite(h)):
        return {"nonfinite_embedding": True}, None
    out = evaluate(h[:n], h[n:], z_t, z_t1, rho=world.rho,
                   fit_fraction=cfg.eval.fit_fraction, knn=cfg.eval.knn,
                   sigreg_slices=cfg.eval.sigreg_slices, seed=cfg.seed)
    x_flat = x[:n].reshape(n, -1).float().numpy()
    out["r2_xz"] = _r2_from_observations(x_flat, z_t, cfg.eval.fit_fraction)
    out.update(_target_scores(h, world.mixer.eval_targets(np.concatenate([z_t, z_t1])), n,
                              cfg.eval.fit_fraction, cfg.eval.knn))
    if world.mixer.rendered:
        out["wrap_fraction"] = world.mixer.wrap.get("eval")
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
    from identlab.measure.metrics import r2_linear

    z = grid_latents(cfg.eval.grid, cfg.eval.grid_range)
    h = embed(learner, params, k, world.mixer.forward(torch.from_numpy(z).float()), dev)
    if not np.all(np.isfinite(h)):
        return {"r2_hz_grid": None}
    perm = seeding.rng(cfg.seed, "eval").permutation(len(z))
    n_fit = int(len(z) * cfg.eval.fit_fraction)
    fit, test = perm[:n_fit], perm[n_fit:]
    r2, _ = r2_linear(h[fit], z[fit], h[test], z[test])
    return {"r2_hz_grid": None if r2 is None or not np.isfinite(r2) else float(r2)}


def _target_scores(h: np.ndarray, targets: dict[str, np.ndarray], n: int,
                   fit_fraction: float, knn: int) -> dict:
    """Held-out linear and kNN R² of each extra target (e.g. the sin/cos of the Reacher's
    joint angles) from h, with the same split as :func:`identlab.metrics.evaluate`: fit on
    the first ``fit_fraction`` of the pairs (both views), score on the rest. Keys
    ``r2_hz_<name>``, ``r2_hz_<name>_dims``, ``nl_r2_hz_<name>``."""
    from identlab.measure.metrics import r2_knn, r2_linear

    n_fit = int(round(fit_fraction * n))
    fit = np.r_[0:n_fit, n:n + n_fit]
    test = np.r_[n_fit:n, n + n_fit:2 * n]
    out = {}
    for name, y in targets.items():
        r2, dims = r2_linear(h[fit], y[fit], h[test], y[test])
        nl, _ = r2_knn(h[fit], y[fit], h[test], y[test], k=knn)
        out.update({f"r2_hz_{name}": r2, f"r2_hz_{name}_dims": dims, f"nl_r2_hz_{name}": nl})
    return out


def _r2_from_observations(x: np.ndarray, z: np.ndarray, fit_fraction: float) -> float | None:
    """Held-out linear R² of z from the raw observations x: how hard the mixing is (the
    paper's R²(x→z) column), the baseline an encoder must beat."""
    from identlab.measure.metrics import r2_linear

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
    if MIXERS.get(cfg.world.mixer.kind).rendered:  # uint8 frames, conv activations
        data = 2 * cfg.world.mixer.pairs * _obs_dim(cfg)
        side = cfg.world.mixer.size
        chans = getattr(enc, "channels", ())
        conv = sum(c * (side >> (i + 1)) ** 2 for i, c in enumerate(chans))
        acts = m * (_obs_dim(cfg) + 4 * conv) * 4
        n_params = sum(a * b * 16 for a, b in zip((3, *chans), chans)) + conv * n
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
