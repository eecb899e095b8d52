"""Human labels for the keys that report figures put on screen.

Figures never show a raw dotted config key (``learner.objective.lam``) or a metric's
column name (``r2_hz``): every axis label, colour-bar label, legend title and panel title
goes through :func:`label`. Keys missing from the tables fall back to something
readable: the last dotted part with underscores as spaces (``train.lr_drop.factor`` ->
``lr drop factor``). A list-expanded column ``key[i]`` is the key's label with the
dimension counted from 1 (``world.dynamics.rho[0]`` -> ``ρ₁``).
"""

from __future__ import annotations

import re

__all__ = ["label", "level_title", "AXIS_LABELS", "METRIC_LABELS"]

# dotted config / grid keys
AXIS_LABELS = {
    "seed": "seed",
    "world.dim": "latent dimension",
    "world.latent": "latent law",
    "world.latent.kind": "latent law",
    "world.latent.alpha": "α (generalized-normal shape)",
    "world.dynamics": "dynamics",
    "world.dynamics.kind": "dynamics",
    "world.dynamics.rho": "ρ",
    "world.dynamics.strength": "drift strength",
    "world.dynamics.target": "drift target",
    "world.mixer": "mixer",
    "world.mixer.kind": "mixer",
    "world.mixer.pairs": "mixer coupling pairs",
    "learner.objective": "objective",
    "learner.objective.kind": "objective",
    "learner.objective.lam": "λ",
    "learner.objective.slices": "SIGReg slices",
    "learner.objective.sigma": "InfoNCE σ",
    "learner.objective.schedule.kind": "λ schedule",
    "learner.encoder.channels": "encoder channels",
    "learner.init.target": "warm start",
    "train.lr": "learning rate",
    "train.steps": "training steps",
    "train.lr_drop.at": "lr drop at step",
    "train.lr_drop.factor": "lr drop factor",
    "eval.n": "evaluation samples",
    "eval.grid": "evaluation grid",
    "eval.plan.enabled": "planning evaluated",
}

# metric columns of the results table
METRIC_LABELS = {
    "r2_hz": "R²(h→z)",
    "nl_r2_hz": "nonlinear R²(h→z)",
    "r2_hz_gauss": "R²(h→Φ⁻¹F(z))",
    "r2_hz_bulk": "bulk R²(h→z)",
    "r2_hz_angles": "R²(h→(sin θ, cos θ))",
    "init_r2_bulk": "bulk R²(h→z) at start",
    "cca_min": "min CCA",
    "mcc": "MCC",
    "procrustes": "Procrustes error",
    "orth_err": "orthogonality error",
    "bound": "Thm-3 bound D + (ε + D)²",
    "bound_holds": "bound holds (rate)",
    "h_var": "Var(h)",
    "plan_regret": "planning regret",
    "plan_interp_ratio": "planning interpolation ratio",
    "plan_success": "reach success (LQR on h)",
    "plan_success_cem": "reach success (CEM on h)",
    "plan_success_z": "reach success (LQR on z)",
    "plan_success_z_cem": "reach success (CEM on z)",
    "plan_success_random": "reach success (untrained encoder)",
    "plan_reach_dist": "final fingertip distance (m)",
    "plan_reach_radius": "reach radius (m)",
    "final_loss": "final loss",
    "loss_learned": "J(learned h)",
    "loss_rotation": "J(best rotation)",
    "loss_gaussianized": "J(Φ⁻¹F(z))",
    "rotation_stable": "rotation kept (rate)",
    "traj_r2_hz": "R²(h→z)",
    "traj_r2_hz_gauss": "R²(h→Φ⁻¹F(z))",
    "traj_loss": "training loss J",
    "wall_s": "wall time (s)",
    "train_s": "training time (s)",
    "steps_per_s": "steps per second",
}

_EXPANDED = re.compile(r"^(?P<key>.+)\[(?P<i>\d+)\]$")
_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def label(key: str | None) -> str:
    """The on-screen name of a dotted key or metric (see the module docstring)."""
    if not key:
        return ""
    key = str(key)
    m = _EXPANDED.match(key)
    if m:
        base, i = label(m["key"]), str(int(m["i"]) + 1)
        return base + i.translate(_SUB) if len(base) <= 2 else f"{base} (dim {i})"
    for table in (METRIC_LABELS, AXIS_LABELS):
        if key in table:
            return table[key]
    if key.startswith("cfg.") or key.startswith("cell."):
        return label(key.split(".", 1)[1])
    return key.rsplit(".", 1)[-1].replace("_", " ")


def level_title(key: str | None, level) -> str:
    """A panel title for one level of ``key``: ``objective = lejepa``."""
    return f"{label(key)} = {level}" if key else ""
