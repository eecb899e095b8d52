"""A generic batched trainer: K members, one program, no knowledge of the loss.

The trainer receives stacked parameters (each tensor has a leading member axis K), a
``loss_fn(params, batch) -> (K,)`` and a ``batches(step)`` source. Because each member's
loss depends only on its own slice of the parameters and AdamW is elementwise, the
gradient of the summed loss gives every member exactly its own update; per-member
hyper-parameters (lr, betas, eps, weight decay) are (K,) tensors.

A member whose loss becomes non-finite is frozen (lr 0, gradients masked) and reported
``diverged`` with the step it happened; the others go on unaffected. Nothing here looks
at ground truth.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

__all__ = ["Hyper", "TrainResult", "lr_factor", "train", "resolve_device"]

Params = dict[str, torch.Tensor]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU. Never assumes a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return dev


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


def lr_factor(step: int, steps: int, warmup: int, decay_start: float) -> float:
    """Linear warm-up, then constant until ``decay_start·steps``, then cosine to 0."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    start = max(int(decay_start * steps), warmup)
    if step < start:
        return 1.0
    span = max(steps - start, 1)
    return 0.5 * (1.0 + math.cos(math.pi * (step - start) / span))


@dataclass
class TrainResult:
    params: Params
    diverged: torch.Tensor                 # (K,) bool
    diverged_at: list[int | None]          # first non-finite step per member
    final_loss: list[float | None]         # mean loss over the last logged window
    history: list[list[float | None]]      # per member, loss every ``log_every`` steps
    log_every: int
    wall_s: float
    steps_per_s: float
    extra: dict = field(default_factory=dict)


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, *([1] * (like.dim() - 1)))


def _finite_per_member(params: Params, k: int) -> torch.Tensor:
    ok = torch.ones(k, dtype=torch.bool, device=next(iter(params.values())).device)
    for p in params.values():
        ok &= torch.isfinite(p.reshape(k, -1)).all(dim=1)
    return ok


def train(params: Params, loss_fn: Callable[[Params, object], torch.Tensor],
          batches: Callable[[int], object], hyper: Hyper, *, log_every: int = 50,
          progress: bool = True, desc: str = "train") -> TrainResult:
    """Run ``hyper.steps`` AdamW steps on all members at once."""
    params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    first = next(iter(params.values()))
    k_members = first.shape[0]
    dev = first.device
    alive = torch.ones(k_members, dtype=torch.bool, device=dev)
    diverged_at: list[int | None] = [None] * k_members
    m = {n: torch.zeros_like(p) for n, p in params.items()}
    v = {n: torch.zeros_like(p) for n, p in params.items()}
    window = torch.zeros(k_members, dtype=torch.float64, device=dev)
    history: list[torch.Tensor] = []
    n_window = 0
    bar = tqdm(range(hyper.steps), desc=desc, disable=not progress, leave=False,
               dynamic_ncols=True, mininterval=0.5)
    t0 = time.perf_counter()
    for step in bar:
        batch = batches(step)
        loss = loss_fn(params, batch)  # (K,)
        finite = torch.isfinite(loss)
        newly_dead = alive & ~finite
        alive = alive & finite
        total = torch.where(alive, loss, torch.zeros_like(loss)).sum()
        grads = torch.autograd.grad(total, list(params.values()), allow_unused=True)
        with torch.no_grad():
            _adamw_step(params, grads, m, v, hyper, step, alive)
            for i in torch.nonzero(newly_dead).flatten().tolist():
                diverged_at[i] = step
            window += torch.where(alive, loss.detach().double(), torch.zeros_like(window))
            n_window += 1
            if (step + 1) % log_every == 0 or step + 1 == hyper.steps:
                mean = window / n_window
                history.append(torch.where(alive, mean, torch.full_like(mean, float("nan"))))
                if progress:
                    alive_mean = mean[alive].mean().item() if bool(alive.any()) else float("nan")
                    bar.set_postfix(loss=f"{alive_mean:.4g}",
                                    diverged=int((~alive).sum().item()))
                window.zero_()
                n_window = 0
    wall = time.perf_counter() - t0
    with torch.no_grad():  # the last update is only seen here
        for i in torch.nonzero(alive & ~_finite_per_member(params, k_members)).flatten().tolist():
            alive[i] = False
            diverged_at[i] = hyper.steps
    hist = torch.stack(history, dim=1).cpu() if history else torch.empty(k_members, 0)
    hist_list = [[None if math.isnan(x) else float(x) for x in row] for row in hist.tolist()]
    final = [row[-1] if row else None for row in hist_list]
    out = {n: p.detach() for n, p in params.items()}
    return TrainResult(out, (~alive).cpu(), diverged_at, final, hist_list, log_every, wall,
                       hyper.steps / max(wall, 1e-9))


def _adamw_step(params, grads, m, v, hyper: Hyper, step: int, alive: torch.Tensor) -> None:
    """Decoupled-weight-decay Adam (Loshchilov & Hutter), per-member hyper-parameters."""
    t = step + 1
    factor = lr_factor(step, hyper.steps, hyper.warmup, hyper.decay_start)
    lr = hyper.lr * factor * alive.to(hyper.lr.dtype)  # (K,), 0 for frozen members
    bc1 = 1 - hyper.beta1**t
    bc2 = 1 - hyper.beta2**t
    for (name, p), g in zip(params.items(), grads):
        if g is None:
            continue
        g = torch.where(_bcast(alive, g), g, torch.zeros_like(g))  # no NaN into moments
        b1, b2 = _bcast(hyper.beta1, p), _bcast(hyper.beta2, p)
        m[name].mul_(b1).add_((1 - b1) * g)
        v[name].mul_(b2).addcmul_((1 - b2) * g, g)
        step_size = _bcast(lr / bc1, p)
        denom = (v[name] / _bcast(bc2, p)).sqrt_().add_(_bcast(hyper.eps, p))
        p.mul_(1 - _bcast(lr * hyper.weight_decay, p))
        p.sub_(step_size * m[name] / denom)
