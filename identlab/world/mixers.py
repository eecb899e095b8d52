"""Frozen invertible mixers g: z -> x (design §3).

A mixer is built once from an explicit generator and never trained. Its weights live in
``self.weights`` (a dict of tensors); the maths lives in the static methods
``apply(weights, z)`` and ``apply_inverse(weights, x)``, which take weights with a
leading member axis K and inputs of shape (K, M, N). ``stack`` joins K mixers of one kind
so a whole ensemble is mixed in one batched call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch

from identlab.core.limits import MAX_BYTES
from identlab.core.registry import MIXERS
from identlab.core.schema import ConfigError, interval, param

__all__ = ["Mixer", "MLPMixer", "Coupling", "Spiral", "Banana", "Sinusoid", "Identity",
           "Linear", "Reacher", "stack_weights"]

Weights = dict[str, torch.Tensor]

# |turns|, |bend|, |amplitude|, |frequency| above this fold the 2-D plane so finely that
# float32 observations of unit-scale latents lose the latent (refused at config time)
SHAPE_LIMIT = 100.0
# a world whose mixer weights would need more than this is refused when it is configured
MAX_MIXER_BYTES = MAX_BYTES  # the one memory bound (identlab.core.limits)


class Mixer:
    """Base class of a frozen mixer for one member."""

    kind: ClassVar[str]
    two_d: ClassVar[bool] = False
    has_inverse: ClassVar[bool] = True
    # rendered mixers produce images that cannot be drawn inside the training loop: their
    # worlds train on a finite pre-rendered set (``world.mixer.pairs``, identlab.pixels)
    rendered: ClassVar[bool] = False
    # True: |det ∂g/∂z| = 1 everywhere (see :meth:`preserves_volume`)
    volume_preserving: ClassVar[bool] = False

    def __init__(self, params, dim: int, rng: np.random.Generator) -> None:
        self.params = params
        self.dim = dim
        self.weights: Weights = {}
        self.cond: list[float] = []  # realized condition numbers, where meaningful

    @property
    def out_dim(self) -> int:
        return type(self).obs_dim(self.params, self.dim)

    @classmethod
    def obs_dim(cls, params, dim: int) -> int:
        """Size of one observation x = g(z) for these params (vector mixers keep dim)."""
        return dim

    @classmethod
    def preserves_volume(cls, params) -> bool:
        """Whether x = g(z) has |det ∂g/∂z| = 1 everywhere for these params."""
        return cls.volume_preserving

    # ---- facts the rest of the package reads from the class (never from its kind) ----
    # the params fields that change the shape of the stacked weights: configs that differ
    # in one of them cannot train in one batched program
    shape_fields: ClassVar[tuple[str, ...]] = ()
    # what an action means in a rendered world (planning): None, no notion of one; vector
    # mixers need none (an action moves z, in latent units)
    control: ClassVar[str | None] = None

    @classmethod
    def batch_signature(cls, params) -> tuple:
        """What must agree between mixers of members that train as one batched program."""
        return (cls.kind, *(getattr(params, f) for f in cls.shape_fields))

    @classmethod
    def weight_bytes(cls, params, dim: int) -> int:
        """Upper estimate of one member's mixer weights in bytes (float64 matrices, each
        held as a draw, itself and its inverse); 0 for mixers without matrices."""
        return 0

    @classmethod
    def data_bytes(cls, params, dim: int, samples: int, chunk: int) -> int:
        """One member's training data in bytes: ``chunk`` steps of ``samples``
        observations and latents, float32, drawn ahead (rendered mixers: their frames)."""
        return chunk * samples * (cls.obs_dim(params, dim) + dim) * 4 * 2

    @classmethod
    def size_estimates(cls, params, dim: int, samples: int, chunk: int
                       ) -> list[tuple[str, int]]:
        """(field, bytes) for each working set one of this mixer's own size fields scales
        (checked against the memory bound when a config is built, by field name)."""
        return []

    @classmethod
    def check(cls, params, dim: int, path: str) -> None:
        """Refuse params that cannot mix ``dim`` latents (ConfigError naming the field)."""
        if cls.two_d and dim != 2:
            raise ConfigError(f"{path}.kind", f"= {cls.kind!r}: a 2-D mixer; needs "
                              f"world.dim = 2, got {dim}")

    @classmethod
    def action_gain(cls, params, action_scale: float) -> float:
        """b in B = b·I: the latent displacement of a unit action (planning)."""
        return action_scale

    def eval_targets(self, z: np.ndarray) -> dict[str, np.ndarray]:
        """Extra ground-truth variables to score h against, beyond z (name -> (n, m))."""
        return {}

    @staticmethod
    def apply(weights: Weights, z: torch.Tensor) -> torch.Tensor:  # (K, M, N) -> (K, M, D)
        raise NotImplementedError

    @staticmethod
    def apply_inverse(weights: Weights, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # ---- single-member convenience (numpy or torch in, same out) ---------
    def forward(self, z):
        return self._one(type(self).apply, z)

    def inverse(self, x):
        if not self.has_inverse:
            raise NotImplementedError(f"mixer {self.kind!r} has no exact inverse")
        return self._one(type(self).apply_inverse, x)

    def _one(self, fn, a):
        is_np = isinstance(a, np.ndarray)
        t = a if isinstance(a, torch.Tensor) else torch.as_tensor(a, device="cpu")
        if not t.is_floating_point():
            t = t.double()
        w = {k: v.to(dtype=t.dtype, device=t.device)[None] for k, v in self.weights.items()}
        out = fn(w, t[None])[0]
        return out.cpu().numpy() if is_np else out

    def info(self) -> dict:
        return {"kind": self.kind, "cond": [round(c, 4) for c in self.cond]}


def stack_weights(mixers: list[Mixer], device, dtype=torch.float32) -> Weights:
    """Stack the weights of K same-kind mixers along a new leading axis."""
    keys = mixers[0].weights.keys()
    return {k: torch.stack([m.weights[k] for m in mixers]).to(device=device, dtype=dtype)
            for k in keys}


def _leaky(x, slope):
    return torch.where(x >= 0, x, slope * x)


def _normalized_uniform(n: int, rng: np.random.Generator) -> np.ndarray:
    w = rng.uniform(-1.0, 1.0, size=(n, n))
    return w / np.linalg.norm(w, axis=0, keepdims=True)


@MIXERS.register("mlp")
class MLPMixer(Mixer):
    """The Hyvärinen/Zimmermann invertible MLP: L square layers, no bias.

    Entries U(−1, 1), columns L2-normalized, each layer redrawn until its condition
    number is at most ``cond_threshold`` (or, if null, the ``cond_quantile`` of
    ``cond_draws`` random draws); leaky-ReLU between layers, none after the last.
    """

    @dataclass(frozen=True)
    class Params:
        kind: str = "mlp"
        depth: int = param(3, check=interval(1), doc="number of square layers L")
        slope: float = param(0.2, check=interval(0.0, 1.0, lo_open=True),
                             doc="leaky-ReLU negative slope between layers")
        cond_threshold: float | None = param(None, check=interval(1.0),
                                             doc="max condition number per layer")
        cond_quantile: float = param(0.25, check=interval(0.0, 1.0, lo_open=True),
                                     doc="threshold = this quantile of random draws")
        cond_draws: int = param(200, check=interval(1), doc="draws for the quantile")
        max_tries: int = param(10000, check=interval(1), doc="rejection-sampling cap")

    shape_fields = ("depth",)

    @classmethod
    def weight_bytes(cls, params, dim):
        return 3 * 8 * params.depth * dim * dim

    @classmethod
    def size_estimates(cls, params, dim, samples, chunk):
        return [("world.mixer.cond_draws", 3 * params.cond_draws * dim * dim * 8)]

    def __init__(self, params, dim, rng):
        super().__init__(params, dim, rng)
        thr = params.cond_threshold
        if thr is None:
            conds = [np.linalg.cond(_normalized_uniform(dim, rng))
                     for _ in range(params.cond_draws)]
            thr = float(np.quantile(conds, params.cond_quantile))
        self.threshold = float(thr)
        mats = []
        for layer in range(params.depth):
            for _ in range(params.max_tries):
                w = _normalized_uniform(dim, rng)
                c = float(np.linalg.cond(w))
                if c <= self.threshold:
                    break
            else:
                raise ConfigError("world.mixer.cond_threshold",
                                  f"= {self.threshold:g}: no layer {layer} met it in "
                                  f"{params.max_tries} draws; raise it")
            mats.append(w)
            self.cond.append(c)
        w = torch.as_tensor(np.stack(mats), device="cpu")  # (L, N, N), applied as z @ W
        self.weights = {"W": w, "Winv": torch.linalg.inv(w),
                        "slope": torch.tensor(float(params.slope), dtype=torch.float64,
                                              device="cpu")}

    @staticmethod
    def apply(weights, z):
        W, slope = weights["W"], weights["slope"]  # (K, L, N, N), (K,)
        s = slope.reshape(-1, 1, 1)
        depth = W.shape[1]
        for i in range(depth):
            z = torch.bmm(z, W[:, i])
            if i < depth - 1:
                z = _leaky(z, s)
        return z

    @staticmethod
    def apply_inverse(weights, x):
        Winv, slope = weights["Winv"], weights["slope"]
        s = slope.reshape(-1, 1, 1)
        depth = Winv.shape[1]
        for i in reversed(range(depth)):
            x = torch.bmm(x, Winv[:, i])
            if i > 0:
                x = _leaky(x, 1.0 / s)
        return x

    def info(self):
        return {**super().info(), "threshold": round(self.threshold, 4)}


@MIXERS.register("coupling")
class Coupling(Mixer):
    """Additive tanh coupling (the paper's "nvp" mixer), any even dim.

    Layer l splits z into halves (a, b), alternating which half conditions:
    b ← b + tanh(a W_l), W_l = 2·Q_l with Q_l from the QR of a Gaussian matrix.
    Volume preserving; the exact inverse subtracts the same term.
    """

    volume_preserving = True  # additive coupling: triangular Jacobian, unit diagonal

    @dataclass(frozen=True)
    class Params:
        kind: str = "coupling"
        depth: int = param(4, check=interval(1), doc="number of coupling layers")
        gain: float = param(2.0, check=interval(0.0, lo_open=True), doc="W = gain·Q")

    shape_fields = ("depth",)

    @classmethod
    def weight_bytes(cls, params, dim):
        return 3 * 8 * params.depth * (dim // 2) ** 2

    @classmethod
    def check(cls, params, dim, path):
        super().check(params, dim, path)
        if dim % 2:
            raise ConfigError(f"{path}.kind", f"= 'coupling': needs an even world.dim, got {dim}")

    def __init__(self, params, dim, rng):
        super().__init__(params, dim, rng)
        half = dim // 2
        qs = []
        for _ in range(params.depth):
            q, r = np.linalg.qr(rng.standard_normal((half, half)))
            qs.append(q * np.sign(np.diag(r)))  # Haar-distributed orthogonal
        # (L, h, h)
        self.weights = {"W": torch.as_tensor(params.gain * np.stack(qs), device="cpu")}
        self.cond = [1.0] * params.depth

    @staticmethod
    def _halves(z, layer):
        h = z.shape[-1] // 2
        a, b = z[..., :h], z[..., h:]
        return (a, b) if layer % 2 == 0 else (b, a)

    @staticmethod
    def _join(a, b, layer):
        return torch.cat([a, b] if layer % 2 == 0 else [b, a], dim=-1)

    @staticmethod
    def apply(weights, z):
        W = weights["W"]
        for i in range(W.shape[1]):
            a, b = Coupling._halves(z, i)
            z = Coupling._join(a, b + torch.tanh(torch.bmm(a, W[:, i])), i)
        return z

    @staticmethod
    def apply_inverse(weights, x):
        W = weights["W"]
        for i in reversed(range(W.shape[1])):
            a, b = Coupling._halves(x, i)
            x = Coupling._join(a, b - torch.tanh(torch.bmm(a, W[:, i])), i)
        return x


def _rot(theta):
    c, s = torch.cos(theta), torch.sin(theta)
    return c, s


@MIXERS.register("spiral")
class Spiral(Mixer):
    """g(z) = R(π‖z‖)·z: rotate by an angle growing with the radius. Preserves N(0, I)."""

    volume_preserving = True  # in polar coordinates (r, θ) -> (r, θ + π·turns·r)

    @dataclass(frozen=True)
    class Params:
        kind: str = "spiral"
        turns: float = param(1.0, check=interval(-SHAPE_LIMIT, SHAPE_LIMIT),
                             doc="angle = turns·π·‖z‖")

    two_d = True

    def __init__(self, params, dim, rng):
        super().__init__(params, dim, rng)
        self.weights = {"turns": torch.tensor(float(params.turns), dtype=torch.float64,
                                                device="cpu")}

    @staticmethod
    def _rotate(weights, z, sign):
        k = weights["turns"].reshape(-1, 1)  # (K, 1)
        r = torch.linalg.vector_norm(z, dim=-1)  # (K, M)
        c, s = _rot(sign * math.pi * k * r)
        x0 = c * z[..., 0] - s * z[..., 1]
        x1 = s * z[..., 0] + c * z[..., 1]
        return torch.stack([x0, x1], dim=-1)

    @staticmethod
    def apply(weights, z):
        return Spiral._rotate(weights, z, 1.0)

    @staticmethod
    def apply_inverse(weights, x):
        return Spiral._rotate(weights, x, -1.0)  # ‖x‖ = ‖z‖


@MIXERS.register("banana")
class Banana(Mixer):
    """g(z) = (z₀, z₁ + b·z₀²)."""

    volume_preserving = True  # a shear

    @dataclass(frozen=True)
    class Params:
        kind: str = "banana"
        bend: float = param(1.0, check=interval(-SHAPE_LIMIT, SHAPE_LIMIT), doc="curvature b")

    two_d = True

    def __init__(self, params, dim, rng):
        super().__init__(params, dim, rng)
        self.weights = {"bend": torch.tensor(float(params.bend), dtype=torch.float64,
                                               device="cpu")}

    @staticmethod
    def apply(weights, z):
        b = weights["bend"].reshape(-1, 1)
        return torch.stack([z[..., 0], z[..., 1] + b * z[..., 0] ** 2], dim=-1)

    @staticmethod
    def apply_inverse(weights, x):
        b = weights["bend"].reshape(-1, 1)
        return torch.stack([x[..., 0], x[..., 1] - b * x[..., 0] ** 2], dim=-1)


@MIXERS.register("sinusoid")
class Sinusoid(Mixer):
    """g(z) = (z₀ + a·sin(f·z₁), z₁)."""

    volume_preserving = True  # a shear

    @dataclass(frozen=True)
    class Params:
        kind: str = "sinusoid"
        amplitude: float = param(1.0, check=interval(-SHAPE_LIMIT, SHAPE_LIMIT), doc="a")
        frequency: float = param(1.5, check=interval(-SHAPE_LIMIT, SHAPE_LIMIT), doc="f")

    two_d = True

    def __init__(self, params, dim, rng):
        super().__init__(params, dim, rng)
        self.weights = {"af": torch.tensor([params.amplitude, params.frequency],
                                           dtype=torch.float64, device="cpu")}

    @staticmethod
    def _shift(weights, z, sign):
        a = weights["af"][:, 0:1]
        f = weights["af"][:, 1:2]
        return torch.stack([z[..., 0] + sign * a * torch.sin(f * z[..., 1]), z[..., 1]], -1)

    @staticmethod
    def apply(weights, z):
        return Sinusoid._shift(weights, z, 1.0)

    @staticmethod
    def apply_inverse(weights, x):
        return Sinusoid._shift(weights, x, -1.0)


@MIXERS.register("identity")
class Identity(Mixer):
    """g(z) = z."""

    volume_preserving = True

    @dataclass(frozen=True)
    class Params:
        kind: str = "identity"

    def __init__(self, params, dim, rng):
        super().__init__(params, dim, rng)
        self.weights = {"one": torch.ones((), dtype=torch.float64, device="cpu")}

    @staticmethod
    def apply(weights, z):
        return z.clone()

    @staticmethod
    def apply_inverse(weights, x):
        return x.clone()


@MIXERS.register("linear")
class Linear(Mixer):
    """g(z) = z A: a random orthogonal matrix, or a random matrix of bounded condition."""

    @classmethod
    def preserves_volume(cls, params) -> bool:
        return params.mode == "orthogonal"

    @dataclass(frozen=True)
    class Params:
        kind: str = "linear"
        mode: Literal["orthogonal", "conditioned"] = param("orthogonal", doc="matrix family")
        cond_threshold: float = param(10.0, check=interval(1.0),
                                      doc="max condition number ('conditioned')")

    @classmethod
    def weight_bytes(cls, params, dim):
        return 3 * 8 * dim * dim

    def __init__(self, params, dim, rng):
        super().__init__(params, dim, rng)
        if params.mode == "orthogonal":
            q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
            a = q * np.sign(np.diag(r))
        else:
            for _ in range(100000):
                a = rng.standard_normal((dim, dim)) / np.sqrt(dim)
                if np.linalg.cond(a) <= params.cond_threshold:
                    break
            else:
                raise ConfigError("world.mixer.cond_threshold",
                                  f"= {params.cond_threshold:g}: unreachable; raise it")
        self.cond = [float(np.linalg.cond(a))]
        a = torch.as_tensor(a, device="cpu")
        self.weights = {"A": a, "Ainv": torch.linalg.inv(a)}

    @staticmethod
    def apply(weights, z):
        return torch.bmm(z, weights["A"])

    @staticmethod
    def apply_inverse(weights, x):
        return torch.bmm(x, weights["Ainv"])


@MIXERS.register("reacher")
class Reacher(Mixer):
    """dm_control's Reacher (``reacher``, task ``hard``) rendered from its joint angles.

    θ = scale·z gives the (shoulder, wrist) angles in radians; the target sits at a fixed
    position, velocities are zero, and the fixed top-down camera renders a size×size RGB
    frame, returned channels-first as uint8 (M, 3, size, size), in the ``render`` mode
    ``fast`` (kinematics only, one reused renderer, no shadows, reflections or skybox) or
    ``full`` (dm_control's own render). Frames are periodic in θ,
    so g is injective only while every |θ_i| < π: ``scale`` should make wrap-around rare
    (``info()`` reports the measured fraction). Rendering needs ``identlab[pixels]`` and
    a headless GL backend; see :mod:`identlab.pixels`, which also caches frames on disk.
    """

    @dataclass(frozen=True)
    class Params:
        kind: str = "reacher"
        size: Literal[32, 64] = param(32, doc="frame side in pixels (square RGB frames)")
        scale: float = param(1.0, check=interval(0.0, lo_open=True),
                             doc="joint angles θ = scale·z in radians (1.0: a unit-variance "
                                 "Gaussian latent wraps past ±π in 0.34% of frames)")
        target: tuple[float, ...] = param((0.1, 0.1), check=interval(-0.2, 0.2),
                                          doc="fixed target position (x, y) in metres")
        pairs: int = param(4000, check=interval(2),
                           doc="training pairs rendered ahead of training: the finite "
                               "training set that minibatches are drawn from (epochs)")
        render: Literal["fast", "full"] = param(
            "fast", doc="fast: pose by mj_kinematics, one reused mujoco.Renderer per "
                        "process, shadows, reflections and skybox off (≈8x the frames/s); "
                        "full: dm_control's physics.render with every lighting effect")
        trajectory: int = param(64, check=interval(1),
                                doc="training pairs are consecutive frames of runs of this "
                                    "many transitions of the world's own dynamics, so one "
                                    "frame serves two pairs (pairs·(1 + 1/T) frames); 1: "
                                    "independent pairs, two frames each")

        def __post_init__(self) -> None:
            if len(self.target) != 2:
                raise ConfigError("target", f"= {list(self.target)}: needs 2 entries (x, y)")

    two_d = True
    has_inverse = False
    rendered = True
    shape_fields = ("size", "pairs", "trajectory")
    control = "joint-angle increments in radians"

    @staticmethod
    def train_frames(params) -> int:
        """Distinct frames of the training set: pairs + runs for runs of ``trajectory``
        transitions (the last run may be shorter), 2·pairs for independent pairs."""
        if params.trajectory == 1:
            return 2 * params.pairs
        return params.pairs + -(-params.pairs // params.trajectory)

    @classmethod
    def data_bytes(cls, params, dim, samples, chunk):
        return cls.train_frames(params) * cls.obs_dim(params, dim)  # uint8 frames

    @classmethod
    def size_estimates(cls, params, dim, samples, chunk):
        return [("world.mixer.pairs", cls.data_bytes(params, dim, samples, chunk))]

    @classmethod
    def action_gain(cls, params, action_scale):
        return action_scale / params.scale  # θ = scale·z: u in radians moves z by u/scale

    def __init__(self, params, dim, rng):
        super().__init__(params, dim, rng)
        self.wrap: dict[str, float] = {}  # measured wrap-around fraction per rendered split

    @classmethod
    def obs_dim(cls, params, dim):
        return 3 * params.size * params.size

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.params.size, self.params.size)

    def angles(self, z) -> np.ndarray:
        """θ = scale·z, (n, 2) float64."""
        return self.params.scale * np.asarray(z, dtype=np.float64)

    def wrap_fraction(self, z) -> float:
        """Share of rows of z with some |θ_i| > π (where frames repeat)."""
        return float(np.mean(np.any(np.abs(self.angles(z)) > math.pi, axis=-1)))

    def gaussian_wrap_fraction(self) -> float:
        """The same share for a unit-variance Gaussian latent: 1 − (1 − 2Φ(−π/scale))²."""
        tail = math.erfc(math.pi / self.params.scale / math.sqrt(2))  # P(|scale·Z| > π)
        return 1.0 - (1.0 - tail) ** 2

    def eval_targets(self, z):
        """(sin θ₁, cos θ₁, sin θ₂, cos θ₂): what a frame determines even past ±π."""
        th = self.angles(z)
        return {"angles": np.concatenate([np.sin(th), np.cos(th)], axis=1)}

    def forward(self, z):
        """Render frames of z in this process, uncached: uint8 (M, 3, size, size)."""
        from identlab.world.pixels import render_frames

        return render_frames(self.params, self.angles(torch.as_tensor(z, device="cpu").numpy()))

    @staticmethod
    def apply(weights, z):
        raise NotImplementedError("reacher frames are rendered ahead of training "
                                  "(identlab.pixels), not inside a batched program")

    def info(self):
        out = {"kind": self.kind, "size": self.params.size, "scale": self.params.scale,
               "render": self.params.render, "train_pairs": self.params.pairs,
               "train_frames": self.train_frames(self.params),
               "wrap_fraction_gaussian": round(self.gaussian_wrap_fraction(), 6)}
        out.update({f"wrap_fraction_{k}": round(v, 6) for k, v in self.wrap.items()})
        return out


def check_compat(mixer_params, dim: int, path: str) -> None:
    """The mixer class's own checks, then the memory bound on its weights."""
    cls = MIXERS.get(mixer_params.kind)
    cls.check(mixer_params, dim, path)
    need = cls.weight_bytes(mixer_params, dim)
    if need > MAX_MIXER_BYTES:
        raise ConfigError("world.dim", f"= {dim}: the {mixer_params.kind!r} mixer would need "
                          f"about {need / 2**30:,.0f} GiB for its weights (limit "
                          f"{MAX_MIXER_BYTES / 2**30:g} GiB); use a smaller world.dim")


def mixer_bytes(mixer_params, dim: int) -> int:
    """Upper estimate of a mixer's weight memory in bytes (its class's ``weight_bytes``)."""
    return MIXERS.get(mixer_params.kind).weight_bytes(mixer_params, dim)
