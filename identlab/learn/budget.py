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
from identlab.core.registry import MIXERS
from identlab.learn.learner import obs_dim, signature

__all__ = ["bytes_per_member", "default_budget", "members_per_chunk", "chunk_groups"]


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
