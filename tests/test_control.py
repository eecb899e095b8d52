"""Controlled worlds (design §8): actions move the latent as commanded, the noisy variant
keeps the world's own transition, mixers without a notion of control are refused, and
the controlled Reacher's arm is where the increments put it. The rendering test skips
only when no GL backend exists and ``CI`` is unset; under CI a missing backend fails."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from identlab.config import load_run
from identlab.core.schema import ConfigError
from identlab.measure.config import PlanConfig
from identlab.world import pixels
from identlab.world.control import ControlledWorld
from identlab.world.world import World


def _world(*overrides: str) -> World:
    return World(load_run(None, ["world.latent.kind=gaussian", *overrides]).world, 0)


@given(st.integers(0, 2**16), st.floats(0.1, 3.0))
def test_actions_move_the_latent_by_b_u(seed, scale):
    rng = np.random.default_rng(seed)
    cw = ControlledWorld(_world(), PlanConfig(action_scale=scale))
    z, u = cw.sample_latents(5, rng), rng.standard_normal((5, 2))
    np.testing.assert_allclose(cw.step(z, u), z + u @ cw.B.T, rtol=1e-12)
    np.testing.assert_allclose(cw.observe(z), cw.world.observe(z))  # the world's own mixer


def test_noisy_control_keeps_the_world_transition():
    """With ``noise``, z' − B u is the world's OU step: regression slope ρ on z and
    residual variance 1 − ρ²; the same generator state gives the same draws."""
    cw = ControlledWorld(_world("world.dynamics.rho=0.8"), PlanConfig(noise=True))
    rng = np.random.default_rng(0)
    z, u = cw.sample_latents(40000, rng), rng.standard_normal((40000, 2))
    free = cw.step(z, u, np.random.default_rng(1)) - u @ cw.B.T
    slope = np.sum(z * free, axis=0) / np.sum(z * z, axis=0)
    np.testing.assert_allclose(slope, 0.8, atol=0.01)
    np.testing.assert_allclose((free - slope * z).var(axis=0), 1 - 0.8**2, atol=0.01)
    again = cw.step(z, u, np.random.default_rng(1)) - u @ cw.B.T
    assert np.array_equal(free, again)
    with pytest.raises(ValueError, match="rng"):
        cw.step(z, u)


def test_time_varying_world_with_noise_is_refused():
    world = _world("world.dynamics.kind=drift", "world.dynamics.strength=1.0")
    with pytest.raises(ConfigError, match="drift") as e:
        ControlledWorld(world, PlanConfig(noise=True))
    assert e.value.field == "world.dynamics.kind"
    ControlledWorld(world, PlanConfig())  # without noise the transition is the integrator: fine


def test_rendered_mixer_without_control_is_refused_by_name():
    world = _world()

    class Film:  # a rendered observation with no notion of an action
        kind, rendered = "film", True

    world.mixer = Film()
    with pytest.raises(ConfigError) as e:
        ControlledWorld(world, PlanConfig())
    assert e.value.field == "world.mixer.kind" and "'film'" in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_action_scale():
    with pytest.raises(ConfigError) as e:
        PlanConfig(action_scale=0.0)
    assert e.value.field in ("action_scale", "eval.plan.action_scale")


def test_reacher_gain_is_radians_per_unit_action():
    world = _world("world.mixer.kind=reacher", "world.mixer.scale=0.5",
                   "learner.encoder.kind=cnn")
    cw = ControlledWorld(world, PlanConfig(action_scale=0.2))
    np.testing.assert_allclose(cw.B, 0.4 * np.eye(2))  # θ = 0.5 z moves by 0.2 u


def _wrap(a):
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def test_controlled_reacher_moves_the_arm_as_commanded(gl):
    """Joint-angle increments u (radians) applied step by step: the physics reads back
    θ = θ_0 + Σu, the hand sits at angle θ₁ about the shoulder and the forearm points
    at θ₁ + θ₂; every frame is the renderer's frame of those angles, and frames change."""
    world = _world("world.mixer.kind=reacher", "world.mixer.scale=0.7",
                   "learner.encoder.kind=cnn")
    rng = np.random.default_rng(0)
    with ControlledWorld(world, PlanConfig()) as cw:
        z = cw.sample_latents(1, rng)
        theta, frames = 0.7 * z[0], [cw.observe(z)]
        for u in rng.uniform(-0.4, 0.4, size=(4, 1, 2)):
            z = cw.step(z, u)
            theta = theta + u[0]
            frames.append(cw.observe(z))
            pose = cw.renderer.pose()
            np.testing.assert_allclose(pose["theta"], theta, atol=1e-12)
            hand, finger = pose["hand"], pose["finger"]
            np.testing.assert_allclose(_wrap(np.arctan2(hand[1], hand[0]) - theta[0]), 0,
                                       atol=1e-9)
            fore = finger - hand
            np.testing.assert_allclose(_wrap(np.arctan2(fore[1], fore[0]) - theta.sum()), 0,
                                       atol=1e-9)
        expected = pixels.render_frames(world.mixer.params, 0.7 * z)
    assert np.array_equal(frames[-1], expected)
    for a, b in zip(frames, frames[1:]):
        assert np.abs(a.astype(int) - b).sum() > 100
