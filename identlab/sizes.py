"""Memory estimates of a run config: the working sets its size fields scale, checked
when the config is built so that a typo is refused before any array exists.

Each estimate comes from the classes of the config's kinds (an encoder's
``working_bytes``, an objective's ``working_bytes``, a mixer's ``data_bytes``), so a
plugin kind is sized by its own declaration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from identlab.core.limits import MAX_BYTES, gib
from identlab.core.registry import ENCODERS, MIXERS, OBJECTIVES
from identlab.core.schema import ConfigError

if TYPE_CHECKING:
    from identlab.config import RunConfig

__all__ = ["bytes_per_member", "size_estimates", "check_sizes", "check_group_size",
           "obs_dim"]


def obs_dim(world) -> int:
    """Size of one observation of a world config: the world dim for vector mixers,
    3·H·W for frames (the mixer class's ``obs_dim``)."""
    return MIXERS.get(world.mixer.kind).obs_dim(world.mixer, world.dim)


def bytes_per_member(cfg: RunConfig) -> int:
    """A rough upper estimate of one member's training working set in bytes: the
    encoder's step (its class's ``working_bytes``), the objective's (``working_bytes``)
    and the training data the mixer's class holds (``data_bytes``)."""
    t, w, lc = cfg.train, cfg.world, cfg.learner
    samples, obs = 2 * t.batch, obs_dim(w)
    enc = ENCODERS.get(lc.encoder.kind).working_bytes(lc.encoder, obs, w.dim, samples)
    obj = OBJECTIVES.get(lc.objective.kind)(lc.objective, w.dim).working_bytes(samples)
    data = MIXERS.get(w.mixer.kind).data_bytes(w.mixer, w.dim, samples, t.data_chunk)
    return int(enc + obj + data)


def size_estimates(cfg: RunConfig) -> list[tuple[str, int]]:
    """(field, bytes) for each working set that one size field of ``cfg`` scales: the
    member's training step, the evaluation set, the rendered frames, the warm start's
    pool, the planning transitions, the attribution's and trajectory's pairs. Rough upper
    estimates (float64 copies of x and z and a few per-dimension arrays), so a typo is
    refused before any array exists; the real peaks of the default configs are far
    below."""
    n, obs = cfg.world.dim, obs_dim(cfg.world)
    ev, mix = cfg.eval, cfg.world.mixer
    rendered = MIXERS.get(mix.kind).rendered
    plan = ev.plan.for_world(rendered)  # the budget the evaluation uses
    prefix = "rendered_" if rendered else ""
    row = 8 * (2 * obs + 8 * n)  # one pair: x_t, x_t+1, z, h and their scores, float64
    out = [("eval.n", 4 * ev.n * row),
           ("eval.sigreg_slices", 2 * ev.n * ev.sigreg_slices * 8 * 2),
           ("eval.grid", 4 * ev.grid ** 2 * row),
           ("eval.traj_pairs", 4 * ev.traj_pairs * row if ev.at_steps else 0),
           ("eval.attribution.pairs", (4 * ev.attribution.pairs * row
                                       + ev.attribution.pairs * ev.attribution.directions
                                       * 8 * 4) if ev.attribution.enabled else 0),
           (f"eval.plan.{prefix}transitions",
            4 * plan.transitions * row if plan.enabled else 0),
           (f"eval.plan.{prefix}pairs", plan.pairs * plan.horizon * (n * n + 4 * n) * 8
            if plan.enabled else 0),
           ("eval.plan.cem_population", _cem_bytes(cfg, plan))]
    init = cfg.learner.init
    if init.supervised:
        out.append(("learner.init.pool", 2 * init.pool * 8 * (obs + 2 * n)))
    out.extend(MIXERS.get(mix.kind).size_estimates(mix, n, 2 * cfg.train.batch,
                                                   cfg.train.data_chunk))
    # last: the training step holds the frames and the encoder too, so a huge
    # world.mixer.pairs or encoder width is named by its own field first where it has one
    out.append(("train.batch", bytes_per_member(cfg)))
    return out


def _cem_bytes(cfg: RunConfig, plan) -> int:
    """The cross-entropy planner's samples of one iteration (worlds with a reach task):
    actions and their noise, (pairs, population, horizon, dim) each, and the predicted
    states and costs, float64; ``plan`` is the budget the world uses (``for_world``)."""
    from identlab.world.control import has_task

    if not (plan.enabled and has_task(MIXERS.get(cfg.world.mixer.kind))):
        return 0
    n = cfg.world.dim
    return 8 * plan.pairs * plan.cem_population * (2 * plan.horizon * n + 2 * n + 1)


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
