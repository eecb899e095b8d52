"""The tiny run config the bad-input and fault tests train (MLP 2×16, 30 steps)."""

TINY_RUN = {
    "world": {"dim": 2, "mixer": {"kind": "mlp", "depth": 2}},
    "learner": {"encoder": {"kind": "mlp", "hidden": 16, "depth": 2},
                "objective": {"kind": "lejepa", "slices": 16}},
    "train": {"steps": 30, "batch": 32},
    "eval": {"n": 200, "knn": 5, "sigreg_slices": 16},
}

# The smallest spiral run the sweep and CLI tests train (MLP 1x8, 6 steps).
TINY_SPIRAL = {
    "world": {"dim": 2, "latent": {"kind": "gaussian"}, "dynamics": {"kind": "ou", "rho": 0.9},
              "mixer": {"kind": "spiral"}},
    "learner": {"encoder": {"kind": "mlp", "hidden": 8, "depth": 1},
                "objective": {"kind": "lejepa", "slices": 8}},
    "train": {"steps": 6, "batch": 32, "data_chunk": 3},
    "eval": {"n": 200, "sigreg_slices": 8, "knn": 5},
}


def whole_record(config: dict, key: str) -> dict:
    """A minimal record with every section of the on-disk layout (the store trusts only
    whole records), for store tests that need no training."""
    return {"hash": key, "config": config, "seed": config.get("seed", 0), "status": "ok",
            "diverged_at": None, "metrics": {"r2_hz": 0.5}, "flags": {"gaussian": True},
            "theorem_applies": True, "reasons": [], "mixer": {"kind": "mlp"},
            "sample": None, "train": {"final_loss": 0.1, "log_every": 10, "history": [0.1]},
            "provenance": {"device": "cpu", "wall_s": 1.0}}
