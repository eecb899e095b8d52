"""Shared test settings: hypothesis profiles and small helpers."""

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

from identlab.core.schema import ConfigError

settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# one thread: tests are many tiny ops, and a busy machine makes OpenMP spin-waits costly
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def gl():
    """Render one frame to prove a GL backend exists (skip without one, unless CI)."""
    from identlab.world import pixels
    from identlab.world.mixers import Reacher

    try:
        pixels.render_frames(Reacher.Params(), np.zeros((1, 2)))
    except ConfigError as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a GL backend for the pixel tests: {e}")
        pytest.skip(f"no GL backend: {e}")


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if anything starts training (a refusal or a dry run must come
    first)."""
    import identlab.run.program as program

    def refuse(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(program, "run_group", refuse)
    monkeypatch.setattr(program, "train_group", refuse)
