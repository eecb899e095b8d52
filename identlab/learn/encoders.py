"""Encoders f: x -> h and predictors P, as batched functional modules.

Parameters of K members live in one dict of stacked tensors (leading axis K). An encoder
class builds one member's parameters from an explicit generator (``init``) and applies a
whole ensemble with batched matmuls (``apply``), so K models train as one program.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from identlab.core.registry import ENCODERS, PREDICTORS
from identlab.core.schema import ConfigError, interval, param

__all__ = ["Encoder", "MLPEncoder", "MatchedEncoder", "CNNEncoder", "IdentityPredictor",
           "LinearPredictor", "stack_params"]

Params = dict[str, torch.Tensor]


def stack_params(members: list[Params]) -> Params:
    """One parameter dict from K members' dicts, each tensor stacked on a new first axis."""
    return {k: torch.stack([m[k] for m in members]) for k in members[0]}


def _mlp_bytes(in_dim: int, dim: int, hidden: int, depth: int, samples: int) -> int:
    """Activations of ``samples`` rows through ``depth`` layers of width ``hidden`` (with
    room for their gradients), and 4 float32 copies of the weights (value, gradient, two
    AdamW moments)."""
    acts = samples * (in_dim + 3 * hidden * depth + 4 * dim) * 4
    n_params = depth * hidden * hidden + 2 * hidden * dim
    return acts + 4 * 4 * n_params


def _uniform(shape, bound, g):
    return (torch.rand(shape, generator=g, dtype=torch.float64, device=g.device) * 2 - 1) * bound


class Encoder:
    """Base class of an encoder f: x -> h whose K members' weights are stacked tensors."""

    kind: ClassVar[str]
    images: ClassVar[bool] = False  # True: takes (K, M, 3, H, W) frames, not vectors
    # True: |det ∂h/∂x| = 1 for every weight setting (the encoder cannot shrink or grow)
    volume_preserving: ClassVar[bool] = False

    def __init__(self, params, in_dim: int, out_dim: int) -> None:
        self.params = params
        self.in_dim = in_dim
        self.out_dim = out_dim

    def init(self, g: torch.Generator) -> Params:
        raise NotImplementedError

    @staticmethod
    def apply(p: Params, x: torch.Tensor) -> torch.Tensor:  # (K, M, D) -> (K, M, N)
        raise NotImplementedError

    def signature(self) -> tuple:
        """What must agree for members to share one batched program."""
        return (self.kind, self.in_dim, self.out_dim, *self._shape())

    def _shape(self) -> tuple:
        return ()

    @classmethod
    def working_bytes(cls, params, in_dim: int, dim: int, samples: int) -> int:
        """A rough upper estimate of one member's training working set in bytes for a
        step over ``samples`` inputs: float32 activations (with their gradients) and the
        weights with their gradient and AdamW moments. The base estimate counts one
        hidden layer of width ``dim``; encoders with their own widths override it."""
        return _mlp_bytes(in_dim, dim, dim, 1, samples)


@ENCODERS.register("mlp")
class MLPEncoder(Encoder):
    """(Linear → GELU) × depth, then a Linear head to the latent dim. PyTorch's default
    init (U(±1/√fan_in) for weights and biases), drawn from the member's generator."""

    @dataclass(frozen=True)
    class Params:
        kind: str = "mlp"
        hidden: int = param(256, check=interval(1), doc="width of hidden layers")
        depth: int = param(4, check=interval(1), doc="number of Linear-GELU blocks")

    def _shape(self):
        return (self.params.hidden, self.params.depth)

    @classmethod
    def working_bytes(cls, params, in_dim, dim, samples):
        return _mlp_bytes(in_dim, dim, params.hidden, params.depth, samples)

    def init(self, g):
        dims = [self.in_dim] + [self.params.hidden] * self.params.depth + [self.out_dim]
        out = {}
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            bound = 1.0 / math.sqrt(a)
            out[f"w{i}"] = _uniform((a, b), bound, g).float()
            out[f"b{i}"] = _uniform((1, b), bound, g).float()
        return out

    @staticmethod
    def apply(p, x):
        n_layers = len(p) // 2
        for i in range(n_layers):
            x = torch.baddbmm(p[f"b{i}"], x, p[f"w{i}"])  # (K, M, width)
            if i < n_layers - 1:
                x = F.gelu(x)
        return x


@ENCODERS.register("matched")
class MatchedEncoder(Encoder):
    """The exact inverse architecture of the ``coupling`` mixer: layers in reverse order,
    each b ← b − tanh(a W_l) with learnable W_l (initialised like the mixer: gain·Q).
    Volume preserving; recovers z exactly when W_l equal the mixer's."""

    volume_preserving = True

    @dataclass(frozen=True)
    class Params:
        kind: str = "matched"
        depth: int = param(4, check=interval(1), doc="coupling layers (match the mixer)")
        gain: float = param(2.0, check=interval(0.0), doc="initial W = gain·Q")

    def __init__(self, params, in_dim, out_dim):
        super().__init__(params, in_dim, out_dim)
        if in_dim != out_dim or in_dim % 2:
            raise ConfigError("learner.encoder.kind",
                              f"= 'matched': needs an even observation dim equal to the "
                              f"latent dim, got {in_dim} -> {out_dim}")

    def _shape(self):
        return (self.params.depth,)

    def init(self, g):
        half = self.in_dim // 2
        ws = []
        for _ in range(self.params.depth):
            a = torch.randn(half, half, generator=g, dtype=torch.float64, device=g.device)
            q, r = torch.linalg.qr(a)
            ws.append(q * torch.sign(torch.diagonal(r)))
        return {"W": (self.params.gain * torch.stack(ws)).float()}  # (L, h, h)

    @staticmethod
    def apply(p, x):
        W = p["W"]  # (K, L, h, h)
        h = x.shape[-1] // 2
        for i in reversed(range(W.shape[1])):
            a, b = (x[..., :h], x[..., h:]) if i % 2 == 0 else (x[..., h:], x[..., :h])
            b = b - torch.tanh(torch.bmm(a, W[:, i]))
            x = torch.cat([a, b] if i % 2 == 0 else [b, a], dim=-1)
        return x


def _image_side(in_dim: int) -> int | None:
    """H for square RGB observations of ``in_dim = 3·H·H`` values, else None."""
    side = math.isqrt(in_dim // 3) if in_dim % 3 == 0 else 0
    return side if side and 3 * side * side == in_dim else None


@ENCODERS.register("cnn")
class CNNEncoder(Encoder):
    """Pixels -> h: (strided 4×4 convolution → GroupNorm → GELU) per entry of
    ``channels``, each halving the frame side, then flatten and a linear head.

    Input x: frames (K, M, 3, H, W), uint8 in [0, 255] (converted to [0, 1] here, so
    frames stay uint8 until a batch is used) or float in [0, 1]. On CUDA the K members run
    as one grouped convolution (members stacked along channels, ``groups=K``; GroupNorm's
    groups never straddle two members, so a member's output depends on its own weights
    only); on CPU a loop over members is faster (grouped convolutions measured 1.2-1.4x
    slower per member at K=4, see reports/bench.md), so ``grouped`` is None = by device.
    Init: PyTorch's defaults (U(±1/√fan_in) for weights and biases, GroupNorm scale
    1 and shift 0), drawn from the member's generator.
    """

    images = True
    grouped: ClassVar[bool | None] = None  # None: grouped convolution on CUDA, loop on CPU

    @dataclass(frozen=True)
    class Params:
        kind: str = "cnn"
        channels: tuple[int, ...] = param((32, 64, 128), check=interval(1),
                                          doc="output channels of each strided conv layer")
        groups: int = param(8, check=interval(1),
                            doc="GroupNorm groups per layer (must divide every channel count)")

        def __post_init__(self) -> None:
            if not self.channels:
                raise ConfigError("channels", "= []: needs at least one layer")
            bad = [c for c in self.channels if c % self.groups]
            if bad:
                raise ConfigError("groups", f"= {self.groups}: must divide every entry of "
                                  f"channels {list(self.channels)} (not {bad[0]})")

    def __init__(self, params, in_dim, out_dim):
        super().__init__(params, in_dim, out_dim)
        side = _image_side(in_dim)
        layers = len(params.channels)
        if side is None or side % 2**layers:
            raise ConfigError("learner.encoder.kind",
                              f"= 'cnn': needs square RGB frames whose side is divisible by "
                              f"2^{layers} (a pixel mixer such as reacher), got observations "
                              f"of {in_dim} values")
        self.side = side

    def _shape(self):
        return (self.params.channels, self.params.groups)

    @classmethod
    def working_bytes(cls, params, in_dim, dim, samples):
        side = _image_side(in_dim) or 0
        chans = params.channels
        conv = sum(c * (side >> (i + 1)) ** 2 for i, c in enumerate(chans))
        n_params = sum(a * b * 16 for a, b in zip((3, *chans), chans)) + conv * dim
        return samples * (in_dim + 4 * conv) * 4 + 4 * 4 * n_params

    def init(self, g):
        out = {}
        c_in = 3
        for i, c in enumerate(self.params.channels):
            bound = 1.0 / math.sqrt(c_in * 16)
            out[f"conv{i}_w"] = _uniform((c, c_in, 4, 4), bound, g).float()
            out[f"conv{i}_b"] = _uniform((c,), bound, g).float()
            groups = self.params.groups  # the (groups, C/groups) shape tells apply()
            out[f"norm{i}_w"] = torch.ones(groups, c // groups, device=g.device)
            out[f"norm{i}_b"] = torch.zeros(groups, c // groups, device=g.device)
            c_in = c
        feat = c_in * (self.side // 2 ** len(self.params.channels)) ** 2
        bound = 1.0 / math.sqrt(feat)
        out["head_w"] = _uniform((feat, self.out_dim), bound, g).float()
        out["head_b"] = _uniform((1, self.out_dim), bound, g).float()
        return out

    @staticmethod
    def apply(p, x):
        grouped = CNNEncoder.grouped
        if grouped is None:
            grouped = x.is_cuda
        if grouped or x.shape[0] == 1:
            return CNNEncoder._apply_grouped(p, x)
        return torch.cat([CNNEncoder._apply_grouped({n: v[k:k + 1] for n, v in p.items()},
                                                    x[k:k + 1]) for k in range(x.shape[0])])

    @staticmethod
    def _apply_grouped(p, x):
        k, m = x.shape[:2]
        if not x.is_floating_point():
            x = x.float().div_(255.0)
        h = x.transpose(0, 1).reshape(m, k * x.shape[2], *x.shape[3:])  # (M, K·3, H, W)
        n_layers = sum(1 for name in p if name.startswith("conv") and name.endswith("_w"))
        for i in range(n_layers):
            w = p[f"conv{i}_w"]  # (K, C, C_in, 4, 4)
            c = w.shape[1]
            h = F.conv2d(h, w.reshape(k * c, *w.shape[2:]), p[f"conv{i}_b"].reshape(-1),
                         stride=2, padding=1, groups=k)  # (M, K·C, H/2, W/2)
            gw = p[f"norm{i}_w"]  # (K, G, C/G)
            h = F.group_norm(h, k * gw.shape[1], gw.reshape(-1), p[f"norm{i}_b"].reshape(-1))
            h = F.gelu(h)
        h = h.reshape(m, k, -1).transpose(0, 1)  # (K, M, C·h·w), each member's own block
        return torch.baddbmm(p["head_b"], h, p["head_w"])  # (K, M, N)


class Predictor:
    kind: ClassVar[str]

    def __init__(self, params, dim: int) -> None:
        self.params = params
        self.dim = dim

    def init(self, g: torch.Generator) -> Params:
        return {}

    @staticmethod
    def apply(p: Params, h: torch.Tensor) -> torch.Tensor:
        return h

    def signature(self) -> tuple:
        return (self.kind,)


@PREDICTORS.register("identity")
class IdentityPredictor(Predictor):
    """P(h) = h."""

    @dataclass(frozen=True)
    class Params:
        kind: str = "identity"


@PREDICTORS.register("linear")
class LinearPredictor(Predictor):
    """P(h) = h A + c, initialised at the identity."""

    @dataclass(frozen=True)
    class Params:
        kind: str = "linear"

    def init(self, g):
        return {"pred_A": torch.eye(self.dim, device=g.device),
                "pred_c": torch.zeros(1, self.dim, device=g.device)}

    @staticmethod
    def apply(p, h):
        return torch.baddbmm(p["pred_c"], h, p["pred_A"])
