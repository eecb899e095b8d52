"""Shared test settings: hypothesis profiles and small helpers."""

import os

import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# one thread: tests are many tiny ops, and a busy machine makes OpenMP spin-waits costly
torch.set_num_threads(1)
