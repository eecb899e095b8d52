"""The tiny run config the bad-input and fault tests train (MLP 2×16, 30 steps)."""

TINY_RUN = {
    "world": {"dim": 2, "mixer": {"kind": "mlp", "depth": 2}},
    "learner": {"encoder": {"kind": "mlp", "hidden": 16, "depth": 2},
                "objective": {"kind": "lejepa", "slices": 16}},
    "train": {"steps": 30, "batch": 32},
    "eval": {"n": 200, "knn": 5, "sigreg_slices": 16},
}
