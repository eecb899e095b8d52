"""Named, independent random streams derived from one run seed.

Every random draw in identlab comes from a stream named here, derived with numpy's
``SeedSequence`` (``spawn_key``), so streams never overlap, adding a stream never shifts
another, and nothing touches global RNG state.
"""

from __future__ import annotations

import numpy as np
import torch

# One entry per purpose. Never renumber: records depend on these keys.
STREAMS: dict[str, int] = {
    "mixer": 1,       # frozen mixer weights
    "train": 2,       # training latents and dynamics noise
    "init": 3,        # encoder / predictor initialisation
    "directions": 4,  # SIGReg slice directions, redrawn each step
    "eval": 5,        # held-out evaluation set
    "diagnostics": 6, # `identlab world` empirical checks
    "examples": 7,    # example observations shown in reports (e.g. rendered frames)
    "samples": 8,     # World.sample_pairs without an explicit generator (Python API)
    "attribution": 9, # directions and pairs of the attribution losses
    "planning": 10,   # start-goal pairs, actions and galleries of the planning checks
    "warmstart": 11,  # latent pool and batch order of a supervised warm start
    "trajectory": 12, # held-out pairs and directions of the trajectory metrics
    "random_encoder": 13,  # the untrained encoder of the planning bound (plan_success_random)
}


def _seed_sequence(seed: int, stream: str) -> np.random.SeedSequence:
    if stream not in STREAMS:
        raise KeyError(f"unknown random stream {stream!r}")
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(STREAMS[stream],))


def rng(seed: int, stream: str) -> np.random.Generator:
    """A numpy generator for ``stream`` of run ``seed``."""
    return np.random.Generator(np.random.PCG64(_seed_sequence(seed, stream)))


def torch_generator(seed: int, stream: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator for ``stream`` of run ``seed`` on ``device``."""
    state = _seed_sequence(seed, stream).generate_state(1, np.uint64)[0]
    g = torch.Generator(device=device)
    g.manual_seed(int(state) & ((1 << 63) - 1))
    return g
