"""Memory budgeting: how many members of a group fit in one batched program.

A batch's working set grows linearly with the number of members K; groups of configs
sharing a signature are cut into chunks whose estimated peak stays under a budget (a few
GB on CPU, set by IDENTLAB_CPU_BUDGET_GB; most of the free memory on a GPU).
"""

from __future__ import annotations

import os
from collections import defaultdict

import torch

from identlab.config import RunConfig
from identlab.core.limits import MAX_BYTES, gib
from identlab.core.registry import MIXERS
from identlab.core.schema import ConfigError
from identlab.learn.learner import obs_dim, signature

__all__ = ["bytes_per_member", "default_budget", "members_per_chunk", "chunk_groups",
           "size_estimates", "check_sizes", "check_group_size"]


def bytes_per_member(cfg: RunConfig) -> int:
    """A rough upper estimate of one member's training working set in bytes."""
    t, n = cfg.train, cfg.world.dim
    enc = cfg.learner.encoder
    width = getattr(enc, "hidden", n) * getattr(enc, "depth", 1)
    m = 2 * t.batch
    acts = m * (obs_dim(cfg) + 3 * width + 4 * n) * 4
    slices = getattr(cfg.learner.objective, "slices", 0)
    sig = m * slices * 4 * 8
    data = t.data_chunk * m * (obs_dim(cfg) + n) * 4 * 2
    hidden = getattr(enc, "hidden", n)
    n_params = getattr(enc, "depth", 1) * hidden * hidden + 2 * hidden * n
    if MIXERS.get(cfg.world.mixer.kind).rendered:  # uint8 frames, conv activations
        data = 2 * cfg.world.mixer.pairs * obs_dim(cfg)
        side = cfg.world.mixer.size
        chans = getattr(enc, "channels", ())
        conv = sum(c * (side >> (i + 1)) ** 2 for i, c in enumerate(chans))
        acts = m * (obs_dim(cfg) + 4 * conv) * 4
        n_params = sum(a * b * 16 for a, b in zip((3, *chans), chans)) + conv * n
    return int(acts + sig + data + 4 * 4 * n_params)


def size_estimates(cfg: RunConfig) -> list[tuple[str, int]]:
    """(field, bytes) for each working set that one size field of ``cfg`` scales: the
    member's training step, the evaluation set, the rendered frames, the warm start's
    pool, the planning transitions, the attribution's and trajectory's pairs. Rough upper
    estimates (float64 copies of x and z and a few per-dimension arrays), so a typo is
    refused before any array exists; the real peaks of the default configs are far
    below."""
    n, obs = cfg.world.dim, obs_dim(cfg)
    ev, mix = cfg.eval, cfg.world.mixer
    row = 8 * (2 * obs + 8 * n)  # one pair: x_t, x_t+1, z, h and their scores, float64
    out = [("eval.n", 4 * ev.n * row),
           ("eval.sigreg_slices", 2 * ev.n * ev.sigreg_slices * 8 * 2),
           ("eval.grid", 4 * ev.grid ** 2 * row),
           ("eval.traj_pairs", 4 * ev.traj_pairs * row if ev.at_steps else 0),
           ("eval.attribution.pairs", (4 * ev.attribution.pairs * row
                                       + ev.attribution.pairs * ev.attribution.directions
                                       * 8 * 4) if ev.attribution.enabled else 0),
           ("eval.plan.transitions", 4 * ev.plan.transitions * row if ev.plan.enabled else 0),
           ("eval.plan.pairs", ev.plan.pairs * ev.plan.horizon * (n * n + 4 * n) * 8
            if ev.plan.enabled else 0)]
    init = cfg.learner.init
    if init.supervised:
        out.append(("learner.init.pool", 2 * init.pool * 8 * (obs + 2 * n)))
    if MIXERS.get(mix.kind).rendered:
        out.append(("world.mixer.pairs", 2 * mix.pairs * obs))  # uint8 frames, two views
    if hasattr(mix, "cond_draws"):
        out.append(("world.mixer.cond_draws", 3 * mix.cond_draws * n * n * 8))
    # last: the training step holds the frames and the encoder too, so a huge
    # world.mixer.pairs or encoder width is named by its own field first where it has one
    out.append(("train.batch", bytes_per_member(cfg)))
    return out


def check_sizes(cfg: RunConfig) -> None:
    """Refuse ``cfg`` when one of its working sets would exceed MAX_BYTES, naming the
    field and the estimate."""
    for field, need in size_estimates(cfg):
        if need > MAX_BYTES:
            value = _field_value(cfg, field)
            raise ConfigError(field, f"= {value:,}: needs about {gib(need)} (limit "
                              f"{gib(MAX_BYTES)}); use a smaller {field}")


def check_group_size(cfg: RunConfig, members: int, option: str) -> None:
    """Refuse ``members`` copies of ``cfg`` meant to train as one batched program
    (``identlab run seeds=[...]``) when together they exceed MAX_BYTES, naming
    ``option``."""
    need = members * bytes_per_member(cfg)
    if need > MAX_BYTES:
        raise ConfigError(option, f"{members:,} members in one batched program need about "
                          f"{gib(need)} (limit {gib(MAX_BYTES)}); use fewer seeds or run a "
                          "sweep (it cuts members into chunks)")


def _field_value(cfg, dotted: str):
    node = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def default_budget(dev: torch.device) -> int:
    """The memory budget in bytes: 70 % of free GPU memory, or IDENTLAB_CPU_BUDGET_GB (3) GiB."""
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(0.7 * free)
    return int(float(os.environ.get("IDENTLAB_CPU_BUDGET_GB", "3")) * 2**30)


def members_per_chunk(cfg: RunConfig, dev: torch.device, budget: int | None = None,
                      cap: int = 256) -> int:
    """How many members of ``cfg``'s shape fit the budget at once (1 to ``cap``)."""
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
