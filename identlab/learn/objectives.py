"""Training objectives (design §4), batched over K members.

An objective sees the embeddings of both views, h_t and h_{t+1} (each (K, B, N)), the
predicted t-view P(h_t), the member's SIGReg directions (K, N, S) and per-member
coefficients (``coefs``: each a (K,) tensor), and returns one loss per member (K,).
Structural settings (slices, knots, ...) must agree within a batched group; numeric
coefficients (λ, σ, ...) may differ per member.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F

from identlab.core.registry import OBJECTIVES, SIGREG_IMPLS
from identlab.core.schema import ConfigError, interval, param
from identlab.sigreg import epps_pulley as _sigreg
from identlab.sigreg.terms import EppsPulley, GaussianityTerm, slices_param

__all__ = ["Objective", "GaussianityObjective", "alignment", "LamSchedule", "LeJEPA",
           "SigregOnly", "AlignOnly", "Whiten", "VICReg", "InfoNCE"]

Coefs = dict[str, torch.Tensor]


def alignment(p_t: torch.Tensor, h_t1: torch.Tensor) -> torch.Tensor:
    """Mean over (view, sample, dim) of (h̄ − h_v)², h̄ the mean over the two views.

    With two views this is ¼ mean‖a − b‖² per coordinate; it is the paper code's
    alignment term, so its λ means the same here. Returns (K,).
    """
    mean = 0.5 * (p_t + h_t1)
    return 0.5 * (((mean - p_t) ** 2).mean(dim=(1, 2)) + ((mean - h_t1) ** 2).mean(dim=(1, 2)))


class Objective:
    """Base class of a training objective: one loss per member from both views' embeddings."""

    kind: ClassVar[str]
    uses_directions: ClassVar[bool] = False

    def __init__(self, params, dim: int) -> None:
        self.params = params
        self.dim = dim

    @property
    def slices(self) -> int:
        return int(getattr(self.params, "slices", 0))

    def coefs(self, step: int | None = None, steps: int | None = None) -> dict[str, float]:
        """Numeric per-member settings, stacked by the trainer into (K,) tensors; with
        ``step`` of ``steps``, their values at that step (see ``scheduled``)."""
        return {}

    @property
    def scheduled(self) -> bool:
        """Whether ``coefs`` change during training (then pass the step)."""
        return False

    def signature(self) -> tuple:
        """Structural settings shared by every member of a batched group."""
        return (self.kind,)

    def loss(self, h_t, h_t1, p_t, dirs, coefs: Coefs) -> torch.Tensor:  # (K,)
        raise NotImplementedError

    # ---- facts the rest of the package reads from the class (never from its kind) ----
    def working_bytes(self, samples: int) -> int:
        """A rough upper estimate of the loss's working set for a step over ``samples``
        embeddings, beyond the encoder's (bytes; the base objective needs none)."""
        return 0

    def attribution_setting(self, steps: int) -> dict | None:
        """The settings the attribution evaluates this objective's expected loss at
        (design §7), or None when it has no Gaussianity term beside an alignment term
        (then J says nothing about its optimum and the record has no verdict)."""
        return None

    @classmethod
    def label(cls, params: dict) -> str:
        """A readable name for reports, from the objective's config section (a mapping)."""
        return cls.kind

    def with_compiled_kernels(self) -> Objective:
        """This objective with its compiled kernels where it has them (the same loss,
        computed by torch.compile-fused kernels; ``train.compile``); itself otherwise."""
        return self


class GaussianityObjective(Objective):
    """(1 − λ)·alignment + λ·G(h) for a sliced Gaussianity term G (``term()``, an
    :class:`~identlab.sigreg.terms.GaussianityTerm`): LeJEPA's form, with any test of
    Gaussianity in SIGReg's place. Its params need ``lam`` and ``slices``; ``views``
    (``pooled``: G of the 2B pooled samples, or ``per_view``: the mean of each view's) and
    ``scale`` (``batch``: the M × distance statistic; ``sample``: divided by M) are read
    when present. The attribution evaluates J at the run's final λ with the same term,
    so every such objective gets a verdict."""

    uses_directions = True

    def term(self) -> GaussianityTerm:
        """The Gaussianity term, built from this objective's params."""
        raise NotImplementedError

    def _term(self) -> GaussianityTerm:
        """``term()``, built once per objective (the loss runs it every step)."""
        if getattr(self, "_built_term", None) is None:
            self._built_term = self.term()
        return self._built_term

    def final_lam(self, steps: int) -> float:
        """λ at the last step (the objective the run ended on)."""
        return float(self.params.lam)

    def coefs(self, step=None, steps=None):
        return {"lam": self.params.lam}

    def signature(self):
        p = self.params
        return (self.kind, p.slices, getattr(p, "views", "pooled"),
                getattr(p, "scale", "batch"), *self._term().signature())

    def sigreg(self, h_t, h_t1, dirs):
        """G of the batch; ``scale="sample"`` divides the statistic by the M samples it
        sees (2B pooled, B per view), so that its weight means the same at any batch size
        (the statistic is M × a distance, plus a finite-sample term of order 1)."""
        p = self.params
        stat = self._term().statistic
        per_sample = getattr(p, "scale", "batch") == "sample"
        if getattr(p, "views", "pooled") == "pooled":
            out = stat(torch.cat([h_t, h_t1], dim=1), dirs)
            return out / (2 * h_t.shape[1]) if per_sample else out
        out = 0.5 * (stat(h_t, dirs) + stat(h_t1, dirs))
        return out / h_t.shape[1] if per_sample else out

    def loss(self, h_t, h_t1, p_t, dirs, coefs):
        lam = coefs["lam"]
        return (1 - lam) * alignment(p_t, h_t1) + lam * self.sigreg(h_t, h_t1, dirs)

    def working_bytes(self, samples):
        return samples * self.slices * 4 * 8  # projections and their phasors, float32

    def attribution_setting(self, steps):
        p, term = self.params, self._term()
        out = {"lam": self.final_lam(steps), "slices": p.slices,
               "views": getattr(p, "views", "pooled"), "scale": getattr(p, "scale", "batch"),
               "term": None if term.closed_form else term}
        if term.closed_form:  # Epps–Pulley: the attribution's closed form needs its knots
            out.update(knots=term.params.knots, t_max=term.params.t_max)
        return out


class _SigregMixin(GaussianityObjective):
    """The built-in objectives whose Gaussianity term is Epps–Pulley (SIGReg)."""

    def term(self):
        p = self.params
        return EppsPulley(EppsPulley.Params(knots=p.knots, t_max=p.t_max, impl=p.impl))

    def with_compiled_kernels(self):
        if self.params.impl != "auto" or "compiled" not in SIGREG_IMPLS:
            return self  # an implementation chosen by name stays that one
        return type(self)(dataclasses.replace(self.params, impl="compiled"), self.dim)


@dataclass(frozen=True)
class LamSchedule:
    """λ over training: ``constant`` (the configured λ throughout), or ``ramp``: the
    configured λ until share ``start`` of the steps, log-linear to ``end`` at share
    ``stop``, ``end`` after. With u = step/steps,

        λ(u) = λ · (end/λ)^{clip((u − start)/(stop − start), 0, 1)}

    (a step to ``end`` at ``start`` when stop = start). The ramp un-mixes at a small λ
    and finishes where SIGReg acts as a constraint (design §7)."""

    kind: Literal["constant", "ramp"] = param("constant", doc="constant or ramp")
    end: float = param(0.1, check=interval(0.0, 1.0, lo_open=True), doc="λ after the ramp")
    start: float = param(0.5, check=interval(0.0, 1.0), doc="share of steps where it starts")
    stop: float = param(0.75, check=interval(0.0, 1.0), doc="share of steps where it ends")

    def __post_init__(self) -> None:
        if self.stop < self.start:
            raise ConfigError("stop", f"= {self.stop}: must be >= start ({self.start})")

    def value(self, lam: float, step: int, steps: int) -> float:
        """λ at 0-based ``step`` of ``steps``."""
        if self.kind == "constant" or lam == self.end:
            return lam
        u = step / steps
        if u < self.start:
            return lam
        if u >= self.stop:
            return self.end
        frac = (u - self.start) / (self.stop - self.start)
        return math.exp(math.log(lam) + frac * (math.log(self.end) - math.log(lam)))


@OBJECTIVES.register("lejepa")
class LeJEPA(_SigregMixin):
    """(1 − λ)·alignment + λ·SIGReg."""

    @dataclass(frozen=True)
    class Params:
        kind: str = "lejepa"
        lam: float = param(1e-3, check=interval(0.0, 1.0), doc="SIGReg weight λ in [0, 1]")
        slices: int = slices_param()
        knots: int = _sigreg.knots_param()
        t_max: float = _sigreg.t_max_param()
        views: Literal["pooled", "per_view"] = param("pooled", doc="SIGReg on pooled views "
                                                     "(2B samples) or averaged per view")
        impl: str = param("auto", check=EppsPulley.Params.__dataclass_fields__["impl"]
                          .metadata["check"], doc="SIGReg implementation (all agree to 1e-5)")
        schedule: LamSchedule = param(factory=LamSchedule, omit_default=True,
                                      doc="λ over training (constant or ramp)")
        scale: Literal["batch", "sample"] = param(
            "batch", omit_default=True, doc="SIGReg as M × distance (batch, the paper's) "
            "or per sample (λ means the same at any batch size)")

        def __post_init__(self) -> None:
            if self.schedule.kind == "ramp" and self.lam == 0.0:
                raise ConfigError("schedule.kind", "= 'ramp': a log-linear ramp needs "
                                  "lam > 0")

    def coefs(self, step=None, steps=None):
        lam = self.params.lam
        if step is None or steps is None:
            return {"lam": lam}
        return {"lam": self.params.schedule.value(lam, step, steps)}

    @property
    def scheduled(self):
        return self.params.schedule.kind != "constant"

    def final_lam(self, steps):
        return self.params.schedule.value(self.params.lam, steps - 1, steps)

    @classmethod
    def label(cls, params):
        return f"SIGReg λ={float(params['lam']):g}"


@OBJECTIVES.register("sigreg_only")
class SigregOnly(_SigregMixin):
    """SIGReg alone: no temporal signal at all."""

    @dataclass(frozen=True)
    class Params:
        kind: str = "sigreg_only"
        slices: int = slices_param()
        knots: int = _sigreg.knots_param()
        t_max: float = _sigreg.t_max_param()
        views: Literal["pooled", "per_view"] = param("pooled", doc="see lejepa")
        impl: str = param("auto", check=LeJEPA.Params.__dataclass_fields__["impl"]
                          .metadata["check"], doc="see lejepa")

    def coefs(self, step=None, steps=None):
        return {}

    def final_lam(self, steps):
        return 1.0  # LeJEPA at λ = 1: no alignment weight

    def loss(self, h_t, h_t1, p_t, dirs, coefs):
        return self.sigreg(h_t, h_t1, dirs)

    @classmethod
    def label(cls, params):
        return "SIGReg only"


@OBJECTIVES.register("align_only")
class AlignOnly(Objective):
    """Alignment alone: collapses (the embedding variance goes to 0)."""

    @classmethod
    def label(cls, params):
        return "align only"

    @dataclass(frozen=True)
    class Params:
        kind: str = "align_only"

    def loss(self, h_t, h_t1, p_t, dirs, coefs):
        return alignment(p_t, h_t1)


def _cov(h: torch.Tensor) -> torch.Tensor:  # (K, M, N) -> (K, N, N)
    hc = h - h.mean(dim=1, keepdim=True)
    return hc.transpose(1, 2) @ hc / (h.shape[1] - 1)


@OBJECTIVES.register("whiten")
class Whiten(Objective):
    """(1 − λ)·alignment + λ·‖Cov(h) − I‖²_F / N² on the pooled views."""

    @classmethod
    def label(cls, params):
        return "whitening"

    @dataclass(frozen=True)
    class Params:
        kind: str = "whiten"
        lam: float = param(0.5, check=interval(0.0, 1.0), doc="whitening weight λ")

    def coefs(self):
        return {"lam": self.params.lam}

    def loss(self, h_t, h_t1, p_t, dirs, coefs):
        lam = coefs["lam"]
        n = h_t.shape[-1]
        c = _cov(torch.cat([h_t, h_t1], dim=1))
        eye = torch.eye(n, dtype=c.dtype, device=c.device)
        white = ((c - eye) ** 2).sum(dim=(1, 2)) / n**2
        return (1 - lam) * alignment(p_t, h_t1) + lam * white


@OBJECTIVES.register("vicreg")
class VICReg(Objective):
    """VICReg (Bardes et al. 2022): sim·MSE(a, b) + var·Σ_views mean_d relu(γ − std_d)
    + cov·Σ_views Σ_{i≠j} Cov_ij² / N, with the paper's weights 25 / 25 / 1."""

    @classmethod
    def label(cls, params):
        return "VICReg"

    @dataclass(frozen=True)
    class Params:
        kind: str = "vicreg"
        sim: float = param(25.0, check=interval(0.0), doc="invariance weight")
        var: float = param(25.0, check=interval(0.0), doc="variance-hinge weight")
        cov: float = param(1.0, check=interval(0.0), doc="off-diagonal covariance weight")
        gamma: float = param(1.0, check=interval(0.0, lo_open=True), doc="target std")

    def coefs(self):
        p = self.params
        return {"sim": p.sim, "var": p.var, "cov": p.cov, "gamma": p.gamma}

    def loss(self, h_t, h_t1, p_t, dirs, coefs):
        n = h_t.shape[-1]
        inv = ((p_t - h_t1) ** 2).mean(dim=(1, 2))
        var = torch.zeros_like(inv)
        cov = torch.zeros_like(inv)
        eye = torch.eye(n, dtype=h_t.dtype, device=h_t.device)
        for h in (h_t, h_t1):
            std = torch.sqrt(h.var(dim=1) + 1e-4)  # (K, N)
            var = var + F.relu(coefs["gamma"][:, None] - std).mean(dim=1)
            c = _cov(h)
            cov = cov + ((c * (1 - eye)) ** 2).sum(dim=(1, 2)) / n
        return coefs["sim"] * inv + coefs["var"] * var + coefs["cov"] * cov


@OBJECTIVES.register("infonce")
class InfoNCE(Objective):
    """Symmetric InfoNCE with a Gaussian kernel: logits −‖u − v‖²/(2σ²), in-batch
    negatives, cross-entropy in both directions, averaged."""

    @classmethod
    def label(cls, params):
        return "InfoNCE"

    @dataclass(frozen=True)
    class Params:
        kind: str = "infonce"
        sigma: float = param(1.0, check=interval(0.0, lo_open=True), doc="kernel width σ")

    def coefs(self):
        return {"sigma": self.params.sigma}

    def working_bytes(self, samples):
        # samples counts both views (2B): the B × B distances, logits and two
        # log-softmaxes, with their gradients (8 float32 matrices; autograd alone saves 3)
        b = samples // 2
        return 8 * 4 * b * b

    def loss(self, h_t, h_t1, p_t, dirs, coefs):
        d2 = torch.cdist(p_t, h_t1) ** 2  # (K, B, B)
        logits = -d2 / (2 * coefs["sigma"][:, None, None] ** 2)
        target = torch.arange(h_t.shape[1], device=h_t.device)
        lp_rows = torch.log_softmax(logits, dim=2)
        lp_cols = torch.log_softmax(logits, dim=1)
        diag_r = lp_rows[:, target, target]
        diag_c = lp_cols[:, target, target]
        return -0.5 * (diag_r.mean(dim=1) + diag_c.mean(dim=1))
