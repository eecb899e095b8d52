"""Controlled worlds for planning evaluation (design §8).

A :class:`ControlledWorld` adds an action u to a world's latent transition,

    z_{t+1} = z_t + B u_t                      (``noise`` false: a pure integrator)
    z_{t+1} = m(z_t) + η_t + B u_t             (``noise`` true: the world's own transition)

with B = b·I, observed through the world's own mixer, x = g(z). For vector mixers u lives
in latent units, b = ``action_scale``. For the ``reacher`` mixer u is a joint-angle
increment in radians: θ = scale·z, so θ' = θ + action_scale·u and b = action_scale/scale;
its observations are frames rendered on the fly by one renderer that loads once
(:class:`identlab.pixels.LiveRenderer`), which also reports the pose it last set.

A world **has a task** (:func:`has_task`) when its mixer is rendered and knows what an
action is (the Reacher): then the controlled world also exposes the effector the task is
about, ``effector(z)`` (the fingertip's x–y position in metres, by kinematics, nothing
rendered) and ``reach_radius`` (the distance under which the effector has reached a goal
position), both read from the live renderer's scene. ``frames`` counts the observations
rendered so far (a rendered world's cost).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from identlab.core.registry import MIXERS
from identlab.core.schema import ConfigError

__all__ = ["ControlSpec", "ControlledWorld", "controls", "control_problem", "has_task"]


def controls() -> dict[str, str]:
    """The rendered mixers that know what an action is, with its meaning (their class's
    ``control``); vector mixers all do: u moves z."""
    return {k: MIXERS.get(k).control for k in MIXERS.kinds()
            if MIXERS.get(k).rendered and MIXERS.get(k).control}


def has_task(mixer: type) -> bool:
    """Whether worlds of this mixer class carry a reach task for planning: a rendered
    mixer that knows what an action is (its ``control``), whose live renderer reports the
    effector's position (``fingertip``) and the reach radius. Vector mixers have none."""
    return bool(getattr(mixer, "rendered", False) and getattr(mixer, "control", None))


class ControlSpec(Protocol):
    """How an action enters the transition: ``action_scale`` (b in B = b·I, reacher:
    radians per unit u) and ``noise`` (add the world's own transition). The run config's
    ``eval.plan`` section (:class:`identlab.measure.config.PlanConfig`) is one; its
    defaults are the only ones."""

    action_scale: float
    noise: bool


def control_problem(mixer: type, dynamics: str, strength: float,
                    noise: bool) -> tuple[str, str] | None:
    """(field, message) when a world cannot be controlled as asked, else None: a rendered
    mixer whose class (``mixer``) has no ``control`` has no notion of an action, and with
    ``noise`` the world's transition must not vary in time (drift strength 0)."""
    if mixer.rendered and not getattr(mixer, "control", None):
        known = ", ".join(sorted(controls()))
        return ("world.mixer.kind", f"= {mixer.kind!r}: this rendered mixer has no notion of "
                f"control (controllable: vector mixers, {known})")
    if noise and strength > 0:
        return ("world.dynamics.kind", f"= {dynamics!r}: a time-varying transition "
                f"(strength {strength:g}); control with noise needs a fixed one")
    return None


class ControlledWorld:
    """A world driven by actions: ``sample_latents``, ``step`` and ``observe``."""

    def __init__(self, world: Any, cfg: ControlSpec) -> None:
        self.world = world
        self.cfg = cfg
        problem = control_problem(type(world.mixer), world.dynamics.kind,
                                  getattr(world.dynamics.params, "strength", 0.0), cfg.noise)
        if problem:
            raise ConfigError(*problem)
        mixer = world.mixer
        self.dim = world.dim
        self.action_dim = world.dim
        self.gain = type(mixer).action_gain(mixer.params, self.cfg.action_scale)  # B = b·I
        self.has_task = has_task(type(mixer))
        self.frames = 0  # observations rendered so far (rendered worlds)
        self._renderer = None

    @property
    def B(self) -> np.ndarray:
        return self.gain * np.eye(self.dim)

    def sample_latents(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, N) latents from the world's law."""
        return self.world.latent.sample(n, rng)

    def step(self, z: np.ndarray, u: np.ndarray, rng: np.random.Generator | None = None
             ) -> np.ndarray:
        """z' = z + B u, or the world's transition of z plus B u when ``noise`` is on (then
        ``rng`` draws the noise)."""
        z = np.asarray(z, dtype=np.float64)
        drive = self.gain * np.asarray(u, dtype=np.float64)
        if not self.cfg.noise:
            return z + drive
        if rng is None:
            raise ValueError("a noisy controlled world needs rng for its transition noise")
        t = np.zeros(len(z), dtype=np.int64)
        return self.world.dynamics.step(z, t, rng) + drive

    def observe(self, z: np.ndarray) -> np.ndarray:
        """x = g(z); reacher frames are rendered now, uint8 (M, 3, size, size)."""
        mixer = self.world.mixer
        if not mixer.rendered:
            return self.world.observe(np.asarray(z, dtype=np.float64))
        frames = self._live()(mixer.angles(z))
        self.frames += len(frames)
        return frames

    def _live(self):
        """The live renderer, loaded on first use (rendered worlds only)."""
        if self._renderer is None:
            from identlab.world.pixels import LiveRenderer

            self._renderer = LiveRenderer(self.world.mixer.params)
        return self._renderer

    @property
    def renderer(self):
        """The live renderer (reacher), or None before the first observation."""
        return self._renderer

    def effector(self, z: np.ndarray) -> np.ndarray:
        """The task's effector at latents z (n, N): the fingertip's x–y position (n, 2) in
        metres at the joint angles θ = scale·z, by kinematics (nothing is rendered, nothing
        counted in ``frames``). Only for worlds with a task (:func:`has_task`)."""
        self._need_task("effector")
        return self._live().fingertip(self.world.mixer.angles(z))

    @property
    def reach_radius(self) -> float:
        """The distance (metres) under which the effector has reached a goal position:
        the renderer's target geom size plus its finger geom size, dm_control Reacher's
        own success test (the renderer's scene never resets the task, so the target keeps
        the size of the model's XML)."""
        self._need_task("reach_radius")
        return float(self._live().reach_radius)

    def _need_task(self, what: str) -> None:
        if not self.has_task:
            raise ValueError(f"{what}: the {self.world.mixer.kind!r} world has no task "
                             "(only rendered worlds with a notion of control do)")

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> "ControlledWorld":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
