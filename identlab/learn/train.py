"""A generic batched trainer: K members, one program, no knowledge of the loss.

The trainer receives stacked parameters (each tensor has a leading member axis K), a
``loss_fn(params, batch) -> (K,)`` and a ``batches(step)`` source. Because each member's
loss depends only on its own slice of the parameters and AdamW is elementwise, the
gradient of the summed loss gives every member exactly its own update; per-member
hyper-parameters (lr, betas, eps, weight decay) are (K,) tensors.

A member diverges when its loss becomes non-finite or blows up: ``|L_s| >
DIVERGENCE_FACTOR · max(|L_0|, LOSS_FLOOR)`` with L_0 its first-step loss (losses of the
objectives here shrink from L_0 or stay within a few units of it; a factor 10⁴ above is a
runaway, e.g. lr = 30 ends near 1e10). Such a member is frozen (lr 0, gradients masked)
and reported ``diverged`` with the step it happened; the others go on unaffected.
Nothing here looks at ground truth.
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from identlab.core.progress import tqdm
from identlab.core.schema import ConfigError, interval, param

__all__ = ["Hyper", "LrDrop", "TrainResult", "lr_factor", "train", "resolve_device",
           "resolve_compile", "blown_up", "divergence_limit", "DIVERGENCE_FACTOR",
           "LOSS_FLOOR", "AUTO_COMPILE_MEMBER_STEPS"]

Params = dict[str, torch.Tensor]

DIVERGENCE_FACTOR = 1e4  # |loss| above this multiple of the first-step loss: diverged
LOSS_FLOOR = 1.0         # first-step losses below this count as this (no 0·factor)


def divergence_limit(first: torch.Tensor) -> torch.Tensor:
    """(K,) ``DIVERGENCE_FACTOR · max(|L_0|, LOSS_FLOOR)``; a non-finite L_0 counts as 0."""
    first = torch.where(torch.isfinite(first), first, torch.zeros_like(first))
    return DIVERGENCE_FACTOR * first.abs().clamp_min(LOSS_FLOOR)


def blown_up(loss: torch.Tensor, limit: torch.Tensor) -> torch.Tensor:
    """(K,) bool: the loss is non-finite or ``|loss| > limit`` (see divergence_limit)."""
    return ~torch.isfinite(loss) | (loss.abs() > limit)


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU. Never assumes a GPU. A torch.device is
    returned as it is."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError("--device", f"= {name!r}: use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device", f"= {name!r}: CUDA is not available here; use auto or cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError("--device", f"= {name!r}: use auto, cpu, cuda or cuda:N")
    return dev


def _compiler_problem(dev: torch.device) -> str | None:
    """Why torch.compile cannot run here (None: it can): inductor needs a C/C++ compiler
    on CPU and triton on CUDA."""
    if not hasattr(torch, "compile"):
        return "this torch has no torch.compile"
    if dev.type == "cuda":
        return None if importlib.util.find_spec("triton") else "triton is not installed"
    cc = os.environ.get("CXX") or "g++"
    if shutil.which(cc) or shutil.which("c++") or shutil.which("clang++"):
        return None
    return "no C/C++ compiler found (inductor needs one on CPU; install g++)"


# ``train.compile: auto`` on CPU compiles the Gaussianity statistic's kernels for groups
# of at least this many member-steps (K × train.steps). Measured on 2 cores at the
# sweeps' size (MLP 4×64, 64 slices, K = 64): the compiled SIGReg kernels make a step
# 1.8× faster (64 ms against 117 ms), and their first compilation takes 67 s from a
# cold cache (29 s more when a second group size makes the shapes dynamic, none after,
# within one process); a 48-member drift group of 1500 steps (72,000 member-steps)
# trained in 197 s against 216 s eager, compilation included. Smaller groups stay eager.
AUTO_COMPILE_MEMBER_STEPS = 50_000


def resolve_compile(mode: str, dev: torch.device, member_steps: int = 0,
                    say: Callable[[str], None] = print) -> str:
    """How a group trains: ``"eager"``, ``"step"`` (the loss and its gradient through
    torch.compile; CUDA graphs on a GPU) or ``"kernels"`` (eager, with the Gaussianity
    statistic's compiled kernels). ``off``: eager; ``on``: the compiled step, or a
    ConfigError naming ``train.compile`` when torch.compile cannot run here; ``auto``:
    the compiled step on CUDA when triton is there (else eager, with one line saying so),
    and on CPU the compiled kernels for groups of at least AUTO_COMPILE_MEMBER_STEPS
    member-steps when a C/C++ compiler is there (the whole compiled step measured slower
    than eager on CPU: ``identlab bench``, ``step_*``)."""
    if mode == "off":
        return "eager"
    problem = _compiler_problem(dev)
    if mode == "on":
        if problem:
            raise ConfigError("train.compile", f"= 'on': {problem}; use auto or off")
        return "step"
    plan = "step" if dev.type == "cuda" else \
        "kernels" if member_steps >= AUTO_COMPILE_MEMBER_STEPS else "eager"
    if plan != "eager" and problem:
        say(f"identlab: train.compile auto: {problem}, training eagerly")
        return "eager"
    return plan


@dataclass(frozen=True)
class LrDrop:
    """Multiply the learning rate by ``factor`` from share ``at`` of the steps on (on top
    of warm-up and cosine decay); ``at: null`` is off. Used with a λ ramp: a small lr
    lets the run settle where SIGReg acts as a constraint (design §7)."""

    at: float | None = param(None, check=interval(0.0, 1.0),
                             doc="share of the steps from which the lr drops (null: off)")
    factor: float = param(1.0, check=interval(0.0, lo_open=True), doc="lr multiplier")


@dataclass
class Hyper:
    """Per-member optimiser settings (each (K,)) and the shared schedule."""

    lr: torch.Tensor
    beta1: torch.Tensor
    beta2: torch.Tensor
    eps: torch.Tensor
    weight_decay: torch.Tensor
    steps: int
    warmup: int = 0
    decay_start: float = 0.5
    lr_drop_at: float | None = None
    lr_drop_factor: float = 1.0


def lr_factor(step: int, steps: int, warmup: int, decay_start: float,
              drop_at: float | None = None, drop_factor: float = 1.0) -> float:
    """Linear warm-up, then constant until ``decay_start·steps``, then cosine to 0; times
    ``drop_factor`` at steps ≥ ``drop_at·steps`` (no drop when ``drop_at`` is None)."""
    drop = drop_factor if drop_at is not None and step >= drop_at * steps else 1.0
    if warmup > 0 and step < warmup:
        return drop * (step + 1) / warmup
    start = max(int(decay_start * steps), warmup)
    if step < start:
        return drop
    span = max(steps - start, 1)
    return drop * 0.5 * (1.0 + math.cos(math.pi * (step - start) / span))


@dataclass
class TrainResult:
    """What training a group returns: stacked weights, divergence, losses and timings."""

    params: Params
    diverged: torch.Tensor                 # (K,) bool
    diverged_at: list[int | None]          # first non-finite step per member
    final_loss: list[float | None]         # mean loss over the last logged window
    history: list[list[float | None]]      # per member, loss every ``log_every`` steps
    log_every: int
    wall_s: float
    steps_per_s: float
    extra: dict = field(default_factory=dict)


def _finite_per_member(params: Params, k: int) -> torch.Tensor:
    ok = torch.ones(k, dtype=torch.bool, device=next(iter(params.values())).device)
    for p in params.values():
        ok &= torch.isfinite(p.reshape(k, -1)).all(dim=1)
    return ok


class _FlatAdamW:
    """AdamW over one flat buffer holding every member's parameters.

    Parameters are laid out parameter-major (each parameter's (K, ...) block is
    contiguous), and the tensors handed to the loss are views into the buffer, so an
    update is a handful of elementwise ops on one tensor instead of a few per parameter.
    A setting shared by all members stays a Python scalar; one that differs is expanded
    once to a per-element vector.
    """

    def __init__(self, params: Params, hyper: Hyper) -> None:
        first = next(iter(params.values()))
        self.k = first.shape[0]
        dev = first.device
        self.flat = torch.cat([p.detach().reshape(-1) for p in params.values()]).clone()
        self.views: Params = {}
        member = []
        offset = 0
        for name, p in params.items():
            n = p.numel()
            self.views[name] = self.flat[offset:offset + n].view(p.shape).requires_grad_(True)
            member.append(torch.arange(self.k, device=dev).repeat_interleave(n // self.k))
            offset += n
        self.member = torch.cat(member)  # (P,) member index of every element
        self.hyper = hyper
        self.m = torch.zeros_like(self.flat)
        self.v = torch.zeros_like(self.flat)
        self.lr = self._per_element(hyper.lr)
        self.b1 = self._per_element(hyper.beta1)
        self.b2 = self._per_element(hyper.beta2)
        self.eps = self._per_element(hyper.eps)
        self.wd = self._per_element(hyper.weight_decay)
        self.alive_el: torch.Tensor | None = None  # None while every member is alive

    def _per_element(self, v: torch.Tensor) -> float | torch.Tensor:
        if bool((v == v[0]).all()):
            return float(v[0])
        return v[self.member]

    def set_alive(self, alive: torch.Tensor) -> None:
        self.alive_el = None if bool(alive.all()) else alive[self.member]

    def mask_alive(self, alive: torch.Tensor) -> None:
        """``set_alive`` without reading ``alive`` on the host (no device synchronisation:
        the per-element mask is applied at every step, also while all are alive)."""
        self.alive_el = alive[self.member]

    @torch.no_grad()
    def step(self, grads, step: int) -> None:
        """Decoupled-weight-decay Adam (Loshchilov & Hutter); frozen members get lr 0 and
        zero gradients so no NaN reaches the moments."""
        g = torch.cat([(torch.zeros_like(p) if gr is None else gr).reshape(-1)
                       for p, gr in zip(self.views.values(), grads)])
        h = self.hyper
        lr = self.lr * lr_factor(step, h.steps, h.warmup, h.decay_start, h.lr_drop_at,
                                 h.lr_drop_factor)
        if self.alive_el is not None:
            g = torch.where(self.alive_el, g, torch.zeros_like(g))
            lr = lr * self.alive_el
        t = step + 1
        b1, b2 = self.b1, self.b2
        if isinstance(b1, float):
            self.m.mul_(b1).add_(g, alpha=1 - b1)
        else:
            self.m.mul_(b1).addcmul_(1 - b1, g)
        if isinstance(b2, float):
            self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        else:
            self.v.mul_(b2).addcmul_((1 - b2) * g, g)
        denom = (self.v / (1 - b2**t)).sqrt_().add_(self.eps)
        if not (isinstance(self.wd, float) and self.wd == 0.0):
            self.flat.mul_(1 - lr * self.wd)
        step_size = lr / (1 - b1**t)
        if isinstance(step_size, float):
            self.flat.addcdiv_(self.m, denom, value=-step_size)
        else:
            self.flat.addcdiv_(self.m * step_size, denom, value=-1.0)


def train(params: Params, loss_fn: Callable[[Params, object], torch.Tensor],
          batches: Callable[[int], object], hyper: Hyper, *, log_every: int = 50,
          progress: bool = True, desc: str = "train",
          on_step: Callable[[int], None] | None = None,
          probe: Callable[[int, Params], None] | None = None,
          on_log: Callable[[int, list[float | None]], None] | None = None,
          compiled: bool = False, sync_free: bool | None = None,
          time_first: bool = False) -> TrainResult:
    """Run ``hyper.steps`` AdamW steps on all members at once. ``on_step(step)`` runs
    before each step's loss (e.g. to set scheduled loss coefficients); ``probe(step,
    params)`` too, with the live stacked parameters after ``step`` updates, under
    ``torch.no_grad`` (to measure, never to modify them). ``on_log(steps_done, losses)``
    runs at every logged step with each member's window mean (the value its history
    gets; None once it diverged), e.g. to stream loss curves to a tracker. ``compiled``:
    the loss (and through AOTAutograd its gradient) runs through ``torch.compile``, once
    per shape (CUDA graphs on a GPU); the first step's seconds, compilation included,
    are ``extra["compile_s"]`` (also with ``time_first``, e.g. for compiled kernels).
    ``sync_free`` (default: on CUDA) keeps the divergence masks on the device instead of
    reading them on the host at every step."""
    opt = _FlatAdamW(params, hyper)
    if compiled:
        mode = "reduce-overhead" if opt.flat.device.type == "cuda" else None
        loss_fn = torch.compile(loss_fn, dynamic=False, mode=mode)
    extra: dict = {}
    params = opt.views
    k_members = opt.k
    dev = opt.flat.device
    alive = torch.ones(k_members, dtype=torch.bool, device=dev)
    # the step each member diverged at (-1: alive), kept on the device; on CUDA the step
    # never reads a tensor on the host (divergence masks stay on the device), on CPU,
    # where reading is free, a step only builds the mask once a member has diverged
    died = torch.full((k_members,), -1, dtype=torch.long, device=dev)
    on_device = dev.type == "cuda" if sync_free is None else sync_free
    window = torch.zeros(k_members, dtype=torch.float64, device=dev)
    history: list[torch.Tensor] = []
    n_window = 0
    bar = tqdm(range(hyper.steps), desc=desc, disable=not progress, leave=False,
               dynamic_ncols=True, mininterval=0.5)
    t0 = time.perf_counter()
    limit: torch.Tensor | None = None
    for step in bar:
        if on_step is not None:
            on_step(step)
        if probe is not None:
            with torch.no_grad():
                probe(step, params)
        batch = batches(step)
        t_first = time.perf_counter() if step == 0 and (compiled or time_first) else None
        loss = loss_fn(params, batch)  # (K,)
        if limit is None:
            limit = divergence_limit(loss.detach())
        ok = ~blown_up(loss.detach(), limit)
        newly_dead = alive & ~ok
        alive = alive & ok
        total = torch.where(alive, loss, torch.zeros_like(loss)).sum()
        grads = torch.autograd.grad(total, list(params.values()), allow_unused=True)
        if t_first is not None:
            extra["compile_s"] = round(time.perf_counter() - t_first, 3)
        if on_device:
            opt.mask_alive(alive)
        elif bool(newly_dead.any()):
            opt.set_alive(alive)
        opt.step(grads, step)
        with torch.no_grad():
            died = torch.where(newly_dead, torch.full_like(died, step), died)
            window += torch.where(alive, loss.detach().double(), torch.zeros_like(window))
            n_window += 1
            if (step + 1) % log_every == 0 or step + 1 == hyper.steps:
                mean = window / n_window
                history.append(torch.where(alive, mean, torch.full_like(mean, float("nan"))))
                if on_log is not None:
                    on_log(step + 1, [None if math.isnan(x) else x
                                      for x in history[-1].tolist()])
                if progress:
                    alive_mean = mean[alive].mean().item() if bool(alive.any()) else float("nan")
                    bar.set_postfix(loss=f"{alive_mean:.4g}",
                                    diverged=int((~alive).sum().item()))
                window.zero_()
                n_window = 0
    wall = time.perf_counter() - t0
    diverged_at: list[int | None] = [None if d < 0 else int(d) for d in died.tolist()]
    with torch.no_grad():  # the last update is only seen here
        for i in torch.nonzero(alive & ~_finite_per_member(params, k_members)).flatten().tolist():
            alive[i] = False
            diverged_at[i] = hyper.steps
    hist = torch.stack(history, dim=1).cpu() if history else torch.empty(k_members, 0, device="cpu")
    hist_list = [[None if math.isnan(x) else float(x) for x in row] for row in hist.tolist()]
    final = [row[-1] if row else None for row in hist_list]
    out = {n: p.detach() for n, p in params.items()}
    return TrainResult(out, (~alive).cpu(), diverged_at, final, hist_list, log_every, wall,
                       hyper.steps / max(wall, 1e-9), extra)
