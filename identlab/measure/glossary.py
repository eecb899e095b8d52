"""The glossary of record and metric keys: every key a record can hold, in one line each.

``RECORD_KEYS`` covers the top-level sections of a record (``identlab/record.py``),
``METRIC_GLOSSARY`` every key of its ``metrics`` mapping, ``PROVENANCE_GLOSSARY`` the
keys of ``provenance``. The documentation's records page is generated from these
mappings, and a test checks that every key a real record contains has an entry here, so
a new metric cannot ship undocumented. Keys built from a name (the extra targets of a
mixer, e.g. ``r2_hz_angles``) are listed in ``METRIC_PATTERNS`` with ``<name>`` in place.
"""

from __future__ import annotations

__all__ = ["RECORD_KEYS", "METRIC_GLOSSARY", "METRIC_PATTERNS", "PROVENANCE_GLOSSARY",
           "METRIC_GROUPS", "describe"]

RECORD_KEYS: dict[str, str] = {
    "hash": "hash of the fully resolved config (seed included); names the record file",
    "config": "the fully resolved run config, every default filled in",
    "seed": "the run's root seed (equal to config.seed)",
    "status": "'ok', or 'diverged' when the loss or the eval embedding was not finite",
    "diverged_at": "the training step at which the member diverged; null when ok",
    "metrics": "the evaluation scores of the member (see the metric keys below)",
    "flags": "the world's assumption flags: gaussian, stationary, additive",
    "theorem_applies": "true exactly when all three flags hold",
    "reasons": "one line per failed flag saying why the theorem does not apply",
    "mixer": "what the frozen mixer reports about itself (kind, conditioning, threshold)",
    "sample": "up to 400 eval pairs (z, h) of a 2-D world for scatter plots; null otherwise",
    "train": "final_loss, log_every and the logged loss history of the member",
    "provenance": "where and how the record was made (versions, device, timings)",
    "sweep": "sweep records only: the cell and spec the record belongs to",
}

PROVENANCE_GLOSSARY: dict[str, str] = {
    "identlab": "identlab version",
    "git_sha": "commit of the working tree (null outside a git checkout)",
    "torch": "PyTorch version",
    "python": "Python version",
    "device": "device the member was trained on (cpu, cuda:0, ...)",
    "device_name": "human name of that device",
    "threads": "torch intra-op threads",
    "wall_s": "seconds from the start of the batched group to this record",
    "train_s": "seconds spent in the training loop of the group",
    "steps_per_s": "optimizer steps per second of the group",
    "group_size": "number of members trained together in one batched program",
    "plugins": "the plugin modules imported when the record was made, as "
               "\"module==version, ...\" (absent without plugins)",
    "compiled": "how torch.compile entered the group's training (train.compile): step "
                "(the loss and its gradient) or kernels (the Gaussianity statistic's "
                "kernels); absent when it trained eagerly",
    "compile_s": "seconds of the group's first step, torch.compile included (only "
                 "when train.compile compiled the step or its kernels; within one "
                 "process the kernels compile once)",
    "plan_s": "seconds the planning evaluation took (eval.plan.enabled)",
    "plan_frames_per_s": "rendered frames per second of the planning evaluation (pixel worlds)",
}

# ------------------------------------------------------------------ metrics, by group
_RECOVERY = {
    "r2_hz": "held-out linear R² of z from h (pooled over dimensions): 1 for any invertible "
             "affine map of z",
    "r2_zh": "held-out linear R² of h from z",
    "r2_hz_dims": "per-dimension R² of z from h (list)",
    "r2_zh_dims": "per-dimension R² of h from z (list)",
    "r2_hz_bulk": "r2_hz fitted and scored on the pairs whose ‖z‖ is within the 99.5 % "
                  "radius quantile (heavy tails left out)",
    "r2_hz_grid": "eval.grid: linear R² of z from h on a regular 2-D latent grid",
    "r2_xz": "held-out linear R² of z from the raw observation x: the baseline an encoder "
             "must beat",
    "nl_r2_hz": "held-out kNN R² of z from h: how much of z survives in h at all",
    "cca_mean": "mean canonical correlation between h and z",
    "cca_min": "smallest canonical correlation between h and z",
    "cca_corrs": "all canonical correlations, largest first (list): all 1 iff h is an "
                 "invertible affine map of z",
    "mcc": "mean |Pearson correlation| of h and z after the best one-to-one matching",
    "mcc_spearman": "mcc with rank (Spearman) correlations",
    "orth_err": "‖AᵀA − I‖_F / √N for the least-squares map h ≈ zA + b: 0 iff A is "
                "orthogonal",
    "procrustes": "min over rotations Q of E‖(h − h̄) − (z − z̄)Q‖²: the theorem's left side",
    "procrustes_se": "standard error of procrustes over the eval pairs",
}
_BOUND = {
    "epsilon": "ε = ‖Cov(h) − I‖_F: how far h is from white (null, like every bound key, "
               "when the world has no one-step ρ)",
    "delta": "δ = E‖h(z') − h(z)‖² − 2(1−ρ)·tr Cov(h): alignment spent on nonlinear parts",
    "delta_se": "standard error of δ over the eval pairs",
    "D": "D = δ / (2ρ(1−ρ))",
    "bound": "the theorem's right side D + (ε + D)²",
    "bound_se": "standard error of bound (delta method)",
    "bound_holds": "procrustes ≤ bound + 3·√(bound_se² + procrustes_se²); null when the "
                   "world has no one-step ρ",
}
_EMBEDDING = {
    "sigreg_stat": "SIGReg statistic of the pooled eval embedding over eval.sigreg_slices "
                   "directions",
    "sigreg_stat_expected": "its expectation for an exact Gaussian sample (about 1.05, not 0)",
    "sigreg_stat_expected_pairs": "its expectation for pooled pairs of a Gaussian OU world "
                                  "with the world's ρ",
    "align": "LeJEPA alignment term of the eval pairs (identity predictor)",
    "h_var": "mean variance of the embedding's dimensions",
    "h_std_min": "smallest standard deviation among the embedding's dimensions",
    "h_finite": "the eval embedding was finite",
    "nonfinite_embedding": "set (true) when the eval embedding had a non-finite value",
    "wrap_fraction": "pixel worlds: share of eval latents whose joint angles wrap past ±π",
    "train_frames": ("pixel worlds: distinct rendered frames of the training set (pairs "
                     "from runs of world.mixer.trajectory transitions share frames)"),
}
_ATTRIBUTION = {
    "loss_learned": "expected training loss J of the learned h at the run's final λ",
    "loss_rotation": "J of the best rescaled rotation of the theorem's target (z where there "
                     "is none; per-dimension or scalar scale, fitted on other pairs and "
                     "directions)",
    "loss_rotation_scalar": "J of the best rotation of the target with one scalar scale",
    "loss_rotation_dims": "J of the best rotation of the target with one scale per dimension",
    "loss_alternative": "J of the best-scaled alternative parametrization (see alternative)",
    "alternative": "the non-rotation oracle: gaussianized (Φ⁻¹(F(z))), gaussianized_pooled "
                   "(Φ⁻¹ of the pooled empirical CDF, for a moving marginal) or z (for a u "
                   "target)",
    "oracle_target": "what the rotation oracle rotates: z, or u = Φ⁻¹(F(z))",
    "loss_z": "J of the best-scaled rotation of z, whatever the target",
    "loss_gaussianized": "J of the best-scaled Φ⁻¹(F(z)) with the law's F (null for a moving "
                         "marginal)",
    "loss_path_best": "J of the cheapest point of the path (1−s)·target + s·alternative",
    "path_s_best": "the s of that cheapest path point",
    "loss_se": "standard error of loss_learned (pairs and directions)",
    "gap": "loss_learned minus the cheapest oracle's J",
    "gap_se": "standard error of gap (paired: same pairs and directions)",
    "gap_rotation": "loss_learned minus the best rotation's J (negative: h is cheaper)",
    "gap_rotation_se": "standard error of gap_rotation (paired)",
    "resolution": "the largest 3 SE, as a share of the rotation's J, among the comparisons "
                  "with the rotation that did not exceed the margin (0: all decided)",
    "directions_used": "directions J was scored on (doubled while underpowered, capped)",
    "lam_star": "the λ in [0, 1] at which the learned h and the best rotation cost the same "
                "(null when they do not cross)",
    "lam_effective": "weight of SIGReg's distance term: λ·M (batch scale) or λ (sample scale)",
    "scale_rotation": "the fitted scale of the best rotation oracle",
    "r2_hz_gauss": "held-out linear R² of Φ⁻¹(F(z)) from h",
    "verdict": "attribution class: recovered, optimizer_gap, nonrotation_optimum, "
               "optimizer_gap+nonrotation, near_rotation_optimum, underpowered, "
               "inconclusive, collapsed or diverged",
}
_TARGET = {
    "theorem_target": "the variable the theorem is about: z, u (= Φ⁻¹(F(z)), copula OU) or "
                      "null (no componentwise reparametrization is Gaussian OU)",
    "r2_target": "held-out linear R² of the theorem's target from h (null without a target)",
    "cca_target": "mean held-out canonical correlation of h and the target",
    "procrustes_target": "Procrustes error of h against the target (the bound's left side)",
    "bound_trivial": "Procrustes error of a constant embedding: the target's total variance",
    "bound_informative": "the bound is below bound_trivial, so it could fail",
}
_PLANNING = {
    "plan_regret": "median over start–goal pairs of J/J* − 1 of latent LQR against LQR on z",
    "plan_regret_p90": "90th percentile of the same regret",
    "plan_interp_ratio": "median cost of the decoded straight latent line over the "
                         "minimiser's cost",
    "plan_frames": "pixel worlds: frames rendered for the planning evaluation",
    "plan_success": "reach task (Reacher): share of start–goal pairs, the goal given only "
                    "as a frame, whose fingertip ends within plan_reach_radius of the "
                    "goal's after latent LQR on h, closed loop on re-encoded frames",
    "plan_success_cem": "the same share for the receding-horizon cross-entropy planner on "
                        "h (eval.plan.cem_*)",
    "plan_success_z": "the same share for LQR fitted and run on the true z (the bound of a "
                      "perfect encoder)",
    "plan_success_z_cem": "the same share for the cross-entropy planner on the true z",
    "plan_success_random": "the same share for latent LQR on an untrained encoder of the "
                           "same architecture (random_encoder stream)",
    "plan_reach_dist": "median final fingertip-to-goal distance (m) of latent LQR on h",
    "plan_reach_radius": "the reach radius (m): the rendered target geom's size plus the "
                         "finger geom's (dm_control Reacher's test; 0.06)",
}
_START = {
    "init_r2": "warm start: held-out R² of its regression target from h after the start",
    "init_r2_bulk": "warm start: the same on the bulk (99.5 % radius) pairs",
    "rotation_stable": "rotation start: final bulk R² at most 0.02 below the start's and J "
                       "within 3 SE of the rotation oracle's",
}
_TRAJECTORY = {
    "traj_steps": "eval.at_steps: the steps at which the trajectory was logged",
    "traj_r2_hz": "R² of z from h at each logged step",
    "traj_r2_hz_gauss": "R² of Φ⁻¹(F(z)) from h at each logged step",
    "traj_loss": "J of the best-rescaled h at each logged step",
    "traj_loss_rotation": "J of the best rotation oracle on the same trajectory pairs",
    "traj_loss_gaussianized": "J of the Gaussianized oracle on the same trajectory pairs",
}

METRIC_GROUPS: dict[str, dict[str, str]] = {
    "Linear recovery": _RECOVERY,
    "The approximation bound": _BOUND,
    "The theorem's target": _TARGET,
    "The embedding itself": _EMBEDDING,
    "Attribution": _ATTRIBUTION,
    "Planning": _PLANNING,
    "Warm starts": _START,
    "Trajectories": _TRAJECTORY,
}

METRIC_GLOSSARY: dict[str, str] = {k: v for group in METRIC_GROUPS.values()
                                   for k, v in group.items()}

METRIC_PATTERNS: dict[str, str] = {
    "r2_hz_<name>": "linear R² of a mixer's extra target <name> (e.g. the Reacher's angles) "
                    "from h",
    "r2_hz_<name>_dims": "per-dimension R² of that target (list)",
    "nl_r2_hz_<name>": "kNN R² of that target from h",
}


def describe(key: str) -> str | None:
    """The one-line definition of a metric key (pattern keys included), or None."""
    if key in METRIC_GLOSSARY:
        return METRIC_GLOSSARY[key]
    for prefix, suffix, pattern in (("nl_r2_hz_", "", "nl_r2_hz_<name>"),
                                    ("r2_hz_", "_dims", "r2_hz_<name>_dims"),
                                    ("r2_hz_", "", "r2_hz_<name>")):
        if key.startswith(prefix) and key.endswith(suffix) and len(key) > len(prefix + suffix):
            return METRIC_PATTERNS[pattern]
    return None
