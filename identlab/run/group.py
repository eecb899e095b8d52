"""Which configs train together: the shape signature, and chunks that fit the memory.

Configs whose :func:`signature` agrees can train as one batched program; a group is cut
into chunks whose estimated peak (:func:`identlab.sizes.bytes_per_member` per member)
stays under a budget (a few GB on CPU, set by IDENTLAB_CPU_BUDGET_GB; most of the free
memory on a GPU).
"""

from __future__ import annotations

import os
from collections import defaultdict

import torch

from identlab.config import RunConfig
from identlab.core.registry import MIXERS
from identlab.learn.learner import Learner
from identlab.sizes import bytes_per_member, obs_dim

__all__ = ["signature", "default_budget", "members_per_chunk", "chunk_groups"]


def signature(cfg: RunConfig) -> tuple:
    """Everything that must agree for configs to train in one batched program: the
    world's dim and its mixer's batch signature (the mixer class's ``shape_fields``), the
    learner's (each class's ``signature``) and the training schedule."""
    w, t = cfg.world, cfg.train
    mixer = MIXERS.get(w.mixer.kind).batch_signature(w.mixer)
    learner = Learner.build(cfg.learner, obs_dim(w), w.dim)
    return (w.dim, mixer, *learner.signature(), t.steps, t.batch, t.warmup, t.decay_start,
            t.data_chunk, t.lr_drop, t.compile, cfg.learner.init, cfg.eval.at_steps)


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
