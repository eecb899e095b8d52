"""Report text of the warm-start stability test: the trajectory plots' paragraphs and
the section "Is the rotation a stable solution?" (Gaussian vs non-Gaussian worlds side
by side). Numbers come from :mod:`identlab.measure.stats`; the verdict of one run is its
``rotation_stable`` metric (:mod:`identlab.run.trajectory`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from identlab.core.fmt import fmt
from identlab.measure.stats import (
    axis_levels,
    departure_step,
    level_of,
    ok_rows,
    trajectory_rows,
    trajectory_stats,
)
from identlab.measure.thresholds import STABLE_R2_TOL, STABLE_SE_MULTIPLE

__all__ = ["describe_trajectory", "stability_section", "WORLD_AXIS", "LAM_AXIS",
           "START_AXIS"]

WORLD_AXIS = "world.latent"
LAM_AXIS = "learner.objective.lam"
START_AXIS = "learner.init.target"


def _split(df: pd.DataFrame, key: str | None, grid: dict):
    if not key or key not in grid:
        return [(None, df)]
    lev = level_of(df, key, grid)
    return [(lab, df[lev == lab]) for lab in axis_levels(df, key, grid)]


def describe_trajectory(df: pd.DataFrame, grid: dict, p: dict) -> str:
    """One paragraph: per panel and group, the metric at the first and last logged step."""
    metric = p["metric"]
    parts = [f"{metric} at the logged steps (eval.at_steps; mean ± seed std, faint band)."]
    for flab, fsub in _split(df, p.get("facet"), grid):
        for ylab, ysub in _split(fsub, p.get("y"), grid):
            bits = []
            for glab, gsub in _split(ysub, p.get("group"), grid):
                st = trajectory_stats(gsub, metric)
                if len(st):
                    a, b = st.iloc[0], st.iloc[-1]
                    bits.append(f"{glab or 'all'}: {fmt(a['mean'])} at step {int(a['step'])} → "
                                f"{fmt(b['mean'])} at {int(b['step'])}")
            where = ", ".join(str(v) for v in (flab, ylab) if v is not None)
            if bits:
                parts.append(f"{where}: " + "; ".join(bits) + ".")
    return " ".join(parts)


def _mean(rows: pd.DataFrame, key: str) -> float:
    v = pd.to_numeric(rows.get(key, pd.Series(dtype=float)), errors="coerce")
    return float(v.mean()) if v.notna().any() else float("nan")


def _departure(rows: pd.DataFrame) -> str:
    """Median first logged step at which R²(h→z) fell > STABLE_R2_TOL below its start."""
    steps, vals = trajectory_rows(rows, "traj_r2_hz")
    if not len(vals):
        return "–"
    hits = [departure_step(steps[1:], v[1:], v[0], STABLE_R2_TOL) if len(v) > 1 else None
            for v in vals]
    hits = [np.nan if h is None else h for h in hits]
    if all(np.isnan(hits)):
        return "never"
    return f"{fmt(float(np.nanmedian(hits)))} ({sum(np.isfinite(hits))}/{len(hits)})"


def _rel(a: float, b: float) -> str:
    return "–" if not (np.isfinite(a) and np.isfinite(b) and b) else f"{100 * (a / b - 1):+.1f} %"


def _rotation_row(world, lam, rot: pd.DataFrame, gauss: pd.DataFrame) -> str:
    kept = pd.to_numeric(rot.get("rotation_stable"), errors="coerce").dropna()
    j_z = _mean(rot, "loss_z") if "loss_z" in rot else _mean(rot, "loss_rotation")
    se_units = (_mean(rot, "loss_learned") - j_z) / _mean(rot, "loss_se")
    cells = [world, lam, f"{int(kept.sum())}/{len(kept)}",
             f"{fmt(_mean(rot, 'init_r2_bulk'))} → {fmt(_mean(rot, 'r2_hz_bulk'))}",
             f"{_rel(_mean(rot, 'loss_learned'), j_z)} "
             f"({fmt(se_units)} SE)",
             _rel(_mean(rot, "loss_learned"), _mean(rot, "loss_gaussianized")),
             _departure(rot),
             fmt(_mean(rot, "r2_hz_gauss")),
             f"{fmt(_mean(gauss, 'init_r2_bulk'))} → {fmt(_mean(gauss, 'r2_hz_gauss'))}",
             _rel(_mean(gauss, "loss_learned"), _mean(gauss, "loss_gaussianized"))]
    return "| " + " | ".join(str(c) for c in cells) + " |"


_HEAD = ("| world | λ | rotation kept | R²(h→z) bulk: start → end | J − J_rotation | "
         "J − J_Φ⁻¹F | left at step (runs) | end R²(h→Φ⁻¹F) | "
         "Φ⁻¹F start: R²(h→Φ⁻¹F) start (bulk) → end | Φ⁻¹F start: J − J_Φ⁻¹F |\n|" + "---|" * 10)


def stability_section(df: pd.DataFrame, grid: dict) -> str | None:
    """The section "Is the rotation a stable solution?", or None without rotation starts."""
    rows = ok_rows(df)
    if "rotation_stable" not in rows or START_AXIS not in grid:
        return None
    start = level_of(rows, START_AXIS, grid)
    table, kept = [_HEAD], {True: [0, 0], False: [0, 0]}
    for world, wsub in _split(rows, WORLD_AXIS, grid):
        for lam, lsub in _split(wsub, LAM_AXIS, grid):
            rot = lsub[start[lsub.index] == "latent"]
            gauss = lsub[start[lsub.index] == "gaussianized"]
            table.append(_rotation_row(world, lam, rot, gauss))
            flags = pd.to_numeric(rot.get("rotation_stable"), errors="coerce").dropna()
            gaussian = bool(rot["flag.gaussian"].all()) if "flag.gaussian" in rot else False
            kept[gaussian][0] += int(flags.sum())
            kept[gaussian][1] += len(flags)
    lead = (f"A rotation start counts as kept when the run ends with its bulk R²(h→z) at "
            f"most {STABLE_R2_TOL} below the warm start's and its J within "
            f"{fmt(STABLE_SE_MULTIPLE)} SE of the best-scaled rotation oracle's. Gaussian "
            f"worlds: {kept[True][0]}/{kept[True][1]} rotation starts kept; non-Gaussian "
            f"worlds: {kept[False][0]}/{kept[False][1]}. 'left at step' is the median first "
            f"logged step whose R²(h→z) is more than {STABLE_R2_TOL} below the step-0 value "
            "(in how many runs it happened); J − J_x is the final expected loss relative to "
            "the oracle x (negative: the run found something cheaper than x).")
    return "\n".join(["## Is the rotation a stable solution?", "", lead, "", *table, ""])
