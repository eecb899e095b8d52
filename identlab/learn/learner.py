"""One member's learner: its encoder, predictor and objective, built from the
``learner`` section of a run config alone."""

from __future__ import annotations

from dataclasses import dataclass

from identlab.core.registry import ENCODERS, OBJECTIVES, PREDICTORS

__all__ = ["Learner"]


@dataclass
class Learner:
    """One member's encoder, predictor and objective objects (their maths is static)."""

    encoder: object
    predictor: object
    objective: object

    @classmethod
    def build(cls, learner_cfg, in_dim: int, dim: int) -> "Learner":
        """The learner of ``learner_cfg`` (a LearnerConfig) for observations of size
        ``in_dim`` and latents of dimension ``dim``."""
        lc = learner_cfg
        return cls(ENCODERS.get(lc.encoder.kind)(lc.encoder, in_dim, dim),
                   PREDICTORS.get(lc.predictor.kind)(lc.predictor, dim),
                   OBJECTIVES.get(lc.objective.kind)(lc.objective, dim))

    def signature(self) -> tuple:
        """What must agree for learners to train in one batched program."""
        return (self.encoder.signature(), self.predictor.signature(),
                self.objective.signature())
