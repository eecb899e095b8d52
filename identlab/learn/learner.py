"""One member's learner (encoder, predictor, objective) and the shape signature that
decides which configs can train together as one batched program."""

from __future__ import annotations

from dataclasses import dataclass

from identlab.config import RunConfig
from identlab.core.registry import ENCODERS, MIXERS, OBJECTIVES, PREDICTORS

__all__ = ["Learner", "signature", "obs_dim"]


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
    learner = Learner.from_config(cfg, in_dim=obs_dim(cfg))
    return (w.dim, mixer, learner.encoder.signature(), learner.predictor.signature(),
            learner.objective.signature(), t.steps, t.batch, t.warmup, t.decay_start,
            t.data_chunk, t.lr_drop, cfg.learner.init, cfg.eval.at_steps)


def obs_dim(cfg: RunConfig) -> int:
    """Size of one observation: the world dim for vector mixers, 3·H·W for frames."""
    return MIXERS.get(cfg.world.mixer.kind).obs_dim(cfg.world.mixer, cfg.world.dim)
