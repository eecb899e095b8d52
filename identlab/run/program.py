"""From run configs to records: build an ensemble, train it as one program, evaluate.

``run_group`` takes configs that share a shape signature
(:func:`~identlab.run.group.signature`), builds each
member's world, encoder and streams from its own seed, trains all members with
:func:`identlab.learn.train.train`, scores each on its own held-out set
(:func:`identlab.run.score.score_member`) and returns one record per member.
``run_configs`` splits any list of configs into such groups and into memory-bounded
chunks (:mod:`identlab.run.group`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from identlab.config import RunConfig, config_hash
from identlab.core import seeding
from identlab.core.provenance import provenance
from identlab.core.schema import to_dict
from identlab.learn.encoders import stack_params
from identlab.learn.learner import Learner
from identlab.learn.train import Hyper, TrainResult, resolve_compile, resolve_device, train
from identlab.record import Record
from identlab.run.data import FramePairStream, PairStream
from identlab.run.group import chunk_groups, signature
from identlab.run.score import TIMING_KEYS, attribution_setting, score_member
from identlab.run.trajectory import TrajectoryProbe, rotation_stable
from identlab.run.warmstart import warm_start
from identlab.sizes import obs_dim
from identlab.world.world import World

__all__ = ["Program", "Trained", "build_program", "train_group", "run_group", "run_configs",
           "embed", "member_embedding"]


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


@dataclass
class Program:
    """Everything the trainer needs for one batched group."""

    worlds: list
    learners: list
    params: dict
    loss_fn: object
    stream: PairStream
    hyper: Hyper
    coefs: dict | None = None
    init_scores: list[dict] | None = None   # per member: warm start's held-out R²
    probes: list[TrajectoryProbe] | None = None  # per member: trajectory metrics

    def probe(self):
        """The trainer's ``probe`` hook when ``eval.at_steps`` is set, else None: at each
        listed step it embeds every member's trajectory set with the live parameters."""
        if not self.probes:
            return None
        at = set(self.probes[0].steps)

        def hook(step: int, params: dict) -> None:
            if step in at:
                self.record_trajectory(step, params)

        return hook

    def record_trajectory(self, step: int, params: dict) -> None:
        """Every member's trajectory metrics with ``params`` (after ``step`` updates)."""
        dev = next(iter(params.values())).device
        for k, (lr, pr) in enumerate(zip(self.learners, self.probes or [])):
            pr.record(step, embed(lr, params, k, pr.x, dev))

    def on_step(self):
        """The trainer's per-step hook when some member's objective is scheduled (its
        coefficients, e.g. a λ ramp, change with the step), else None. It updates the
        stacked coefficient tensors in place; the loss closure reads the same dict."""
        if self.coefs is None or not any(lr.objective.scheduled for lr in self.learners):
            return None
        steps, dev = self.hyper.steps, self.hyper.lr.device
        coefs, learners = self.coefs, self.learners

        def hook(step: int) -> None:
            coefs.update(_stack_coefs([lr.objective.coefs(step, steps) for lr in learners],
                                      dev))

        return hook


def build_program(cfgs: list[RunConfig], dev: torch.device, progress: bool = False, *,
                  compiled_kernels: bool = False) -> Program:
    """Worlds, learners, stacked initial parameters, data stream and optimiser settings
    of a group of configs sharing one signature; ``compiled_kernels``: the loss uses the
    objective's compiled kernels (``Objective.with_compiled_kernels``), the configs and
    records unchanged."""
    worlds = [World(c.world, c.seed) for c in cfgs]
    learners = [Learner.build(c.learner, obs_dim(c.world), c.world.dim) for c in cfgs]
    params = _init_params(cfgs, learners, dev)
    init_scores = None
    if cfgs[0].learner.init.supervised:
        params, init_scores = warm_start(cfgs, worlds, learners, params, dev)
    probes = [TrajectoryProbe(c, w, attribution_setting(c))
              for c, w in zip(cfgs, worlds)] if cfgs[0].eval.at_steps else None
    coefs = _stack_coefs([lr.objective.coefs() for lr in learners], dev)
    obj = learners[0].objective
    slices = obj.slices if obj.uses_directions else 0
    if type(worlds[0].mixer).rendered:
        stream = FramePairStream(worlds, cfgs, dev, slices, progress=progress)
    else:
        stream = PairStream(worlds, cfgs, dev, slices)
    lead = learners[0]
    if compiled_kernels:
        lead = Learner(lead.encoder, lead.predictor, lead.objective.with_compiled_kernels())
    return Program(worlds, learners, params, make_loss_fn(lead, coefs), stream,
                   _hyper(cfgs, dev), coefs, init_scores, probes)


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
                 warmup=t.warmup, decay_start=t.decay_start,
                 lr_drop_at=t.lr_drop.at, lr_drop_factor=t.lr_drop.factor)


def member_embedding(learner: Learner, params: dict, k: int, dev: torch.device):
    """Member ``k``'s encoder as a callable x -> h (numpy float64)."""
    return lambda x: embed(learner, params, k, x, dev)


@torch.no_grad()
def embed(learner: Learner, params: dict, k: int, x: np.ndarray | torch.Tensor,
          dev: torch.device, chunk: int = 8192) -> np.ndarray:
    """Member ``k``'s embedding of observations x (n, D) -> (n, N) float64."""
    enc = type(learner.encoder)
    ep = {n: v[k:k + 1] for n, v in params.items() if not n.startswith("pred_")}
    x = x if isinstance(x, torch.Tensor) else torch.as_tensor(x, device="cpu")
    x = x if x.dtype == torch.uint8 else x.float()  # frames stay uint8 until a chunk is used
    out = [enc.apply(ep, x[i:i + chunk].to(dev)[None])[0].double().cpu()
           for i in range(0, x.shape[0], chunk)]
    return torch.cat(out).numpy()


@dataclass
class Trained:
    """A trained group: its configs, the program (worlds, learners) and the training
    result (stacked parameters, loss histories). ``record(k)`` scores member k."""

    cfgs: list[RunConfig]
    program: Program
    result: TrainResult
    device: torch.device
    started: float

    def embedding(self, k: int):
        """Member k's encoder as a callable x -> h (numpy float64)."""
        return member_embedding(self.program.learners[k], self.result.params, k, self.device)

    def record(self, k: int, prov: dict | None = None) -> dict:
        """Member k's record (the on-disk JSON layout, :meth:`identlab.record.Record.build`):
        metrics on its held-out pairs.

        The member is ``diverged`` (empty metrics, so no verdict) when training blew up
        (``TrainResult.diverged``, at step ``diverged_at``) or when its embedding of the
        evaluation set is not finite (``diverged_at`` = the last step)."""
        cfg, world, res = self.cfgs[k], self.program.worlds[k], self.result
        diverged, diverged_at = bool(res.diverged[k]), res.diverged_at[k]
        metrics, sample = ({}, None) if diverged else \
            score_member(cfg, world, self.embedding(k))
        if metrics.get("nonfinite_embedding"):  # finite weights, non-finite outputs
            diverged, diverged_at, metrics, sample = True, cfg.train.steps, {}, None
        if not diverged:
            metrics.update(self._start_metrics(k, metrics))
        timing = {key: metrics.pop(key) for key in TIMING_KEYS if key in metrics}
        prov = provenance(self.device) if prov is None else prov
        return Record.build(
            hash=config_hash(cfg), config=to_dict(cfg), seed=cfg.seed, diverged=diverged,
            diverged_at=diverged_at, metrics=metrics, flags=world.flags.as_dict(),
            theorem_applies=world.theorem_applies, reasons=world.reasons(),
            mixer=world.mixer.info(), sample=sample, final_loss=res.final_loss[k],
            log_every=res.log_every, history=res.history[k],
            provenance={**prov, "wall_s": round(time.perf_counter() - self.started, 3),
                        "train_s": round(res.wall_s, 3),
                        "steps_per_s": round(res.steps_per_s, 2),
                        "group_size": len(self.cfgs), **res.extra, **timing},
        ).to_json()


    def _start_metrics(self, k: int, metrics: dict) -> dict:
        """Member k's warm-start scores, trajectory and stability keys (when configured)."""
        prog, cfg = self.program, self.cfgs[k]
        out: dict = {}
        if prog.init_scores is not None:
            out.update(prog.init_scores[k])
            if cfg.learner.init.target == "latent":
                out["rotation_stable"] = rotation_stable(metrics, out["init_r2_bulk"])
        if prog.probes:
            out.update(prog.probes[k].metrics())
        return out


def train_group(cfgs: list[RunConfig], *, device: str | torch.device = "auto",
                progress: bool = True, desc: str = "train", on_log=None) -> Trained:
    """Train configs sharing one signature as a single batched program. ``on_log(step,
    losses)``: called at every logged step with one loss per member (see ``train``)."""
    if len({signature(c) for c in cfgs}) != 1:
        raise ValueError("run_group needs configs with one shape signature")
    dev = resolve_device(device)
    plan = resolve_compile(cfgs[0].train.compile, dev, len(cfgs) * cfgs[0].train.steps)
    started = time.perf_counter()
    prog = build_program(cfgs, dev, progress, compiled_kernels=plan == "kernels")
    res = train(prog.params, prog.loss_fn, prog.stream, prog.hyper, progress=progress,
                desc=desc, on_step=prog.on_step(), probe=prog.probe(), on_log=on_log,
                compiled=plan == "step", time_first=plan == "kernels")
    if plan != "eager":
        res.extra["compiled"] = plan
    if cfgs[0].train.steps in cfgs[0].eval.at_steps:  # after the last update
        prog.record_trajectory(cfgs[0].train.steps, res.params)
    return Trained(list(cfgs), prog, res, dev, started)


def run_group(cfgs: list[RunConfig], *, device: str | torch.device = "auto",
              progress: bool = True, desc: str = "train", on_log=None) -> list[dict]:
    """Train and evaluate configs sharing one signature; one record per member."""
    trained = train_group(cfgs, device=device, progress=progress, desc=desc, on_log=on_log)
    prov = provenance(trained.device)
    return [trained.record(k, prov) for k in range(len(cfgs))]


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


