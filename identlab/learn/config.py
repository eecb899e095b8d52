"""The learner and training sections of a run config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from identlab.core.registry import ENCODERS, OBJECTIVES, PREDICTORS
from identlab.core.schema import ConfigError, interval, param
from identlab.learn import encoders as _enc
from identlab.learn import objectives as _obj
from identlab.learn.train import LrDrop

__all__ = ["LearnerConfig", "TrainConfig", "InitConfig", "INIT_KINDS", "INIT_TARGETS"]

INIT_KINDS = ("random", "supervised")
INIT_TARGETS = ("latent", "gaussianized")


def _one_of(options: tuple[str, ...]):
    def check(v: str) -> str | None:
        return None if v in options else f"one of {', '.join(options)}"
    return check


@dataclass(frozen=True)
class InitConfig:
    """Where the encoder starts (:mod:`identlab.run.warmstart`).

    ``random``: the seeded initialisation of the ``init`` stream (the behaviour so far).
    ``supervised``: that initialisation, then ``steps`` AdamW steps of the mean squared
    error ‖f(g(z)) − y‖²/N on ``pool`` latents z drawn from the member's own
    ``warmstart`` stream, y = z (``latent``: a rotation start, Q = I) or y = Φ⁻¹(F(z))
    per dimension (``gaussianized``: the theorem's hard-constraint optimum for
    non-Gaussian latents); lr constant until ``decay_start`` of the steps, cosine to 0.
    """

    kind: str = param("random", check=_one_of(INIT_KINDS),
                      doc="random (seeded initialisation) or supervised (warm start)")
    target: str = param("latent", check=_one_of(INIT_TARGETS),
                        doc="supervised: regress onto z (latent) or Φ⁻¹(F(z)) (gaussianized)")
    steps: int = param(4000, check=interval(1), doc="supervised: regression steps")
    lr: float = param(1e-2, check=interval(0.0, lo_open=True), doc="supervised: peak lr")
    batch: int = param(512, check=interval(2), doc="supervised: latents per step")
    pool: int = param(50000, check=interval(100),
                      doc="supervised: latents drawn once (the last POOL_HELD_OUT share "
                          "is held out to score the warm start's R²)")
    decay_start: float = param(0.4, check=interval(0.0, 1.0),
                               doc="supervised: share of the steps before the cosine decay")

    @property
    def supervised(self) -> bool:
        return self.kind == "supervised"


@dataclass(frozen=True)
class LearnerConfig:
    """Encoder f, optional predictor P, and the objective."""

    encoder: Any = param(registry=ENCODERS, factory=lambda: _enc.MLPEncoder.Params(),
                         doc="encoder f: x -> h")
    objective: Any = param(registry=OBJECTIVES, factory=lambda: _obj.LeJEPA.Params(),
                           doc="training loss")
    predictor: Any = param(registry=PREDICTORS, factory=lambda: _enc.IdentityPredictor.Params(),
                           doc="predictor P applied to the t-view")
    init: InitConfig = param(factory=InitConfig, omit_default=True,
                             doc="encoder start: random or a supervised warm start")


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
    compile: Literal["auto", "off", "on"] = param(
        "auto", omit_default=True, doc="torch.compile the loss and its gradient: on, off, "
        "or auto (compiled on CUDA with triton; eager on CPU, where the compiled step "
        "measured slower at sweep size: reports/bench.md)")

    def __post_init__(self) -> None:
        if len(self.betas) != 2:
            raise ConfigError("train.betas", f"= {list(self.betas)}: needs 2 entries")
