"""The learner and training sections of a run config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from identlab.core.registry import ENCODERS, OBJECTIVES, PREDICTORS
from identlab.core.schema import ConfigError, interval, param
from identlab.learn import encoders as _enc
from identlab.learn import objectives as _obj
from identlab.learn.train import LrDrop

__all__ = ["LearnerConfig", "TrainConfig"]


@dataclass(frozen=True)
class LearnerConfig:
    """Encoder f, optional predictor P, and the objective."""

    encoder: Any = param(registry=ENCODERS, factory=lambda: _enc.MLPEncoder.Params(),
                         doc="encoder f: x -> h")
    objective: Any = param(registry=OBJECTIVES, factory=lambda: _obj.LeJEPA.Params(),
                           doc="training loss")
    predictor: Any = param(registry=PREDICTORS, factory=lambda: _enc.IdentityPredictor.Params(),
                           doc="predictor P applied to the t-view")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: AdamW, lr constant then cosine decay to 0 (the paper's schedule)."""

    steps: int = param(2000, check=interval(1), doc="optimizer steps")
    batch: int = param(256, check=interval(2), doc="pairs per step")
    lr: float = param(3e-3, check=interval(0.0, lo_open=True), doc="peak learning rate")
    weight_decay: float = param(0.0, check=interval(0.0), doc="AdamW decoupled weight decay")
    betas: tuple[float, ...] = param((0.9, 0.999), check=interval(0.0, 1.0, hi_open=True),
                                     doc="AdamW (beta1, beta2)")
    eps: float = param(1e-8, check=interval(0.0, lo_open=True), doc="AdamW epsilon")
    warmup: int = param(0, check=interval(0), doc="linear warm-up steps")
    decay_start: float = param(0.5, check=interval(0.0, 1.0),
                               doc="fraction of steps at constant lr before cosine decay")
    data_chunk: int = param(25, check=interval(1),
                            doc="steps of data drawn per generator call (part of the "
                                "random stream, so it is part of the config)")
    lr_drop: LrDrop = param(factory=LrDrop, omit_default=True,
                            doc="multiply the lr by a factor from a share of the steps on")

    def __post_init__(self) -> None:
        if len(self.betas) != 2:
            raise ConfigError("train.betas", f"= {list(self.betas)}: needs 2 entries")
