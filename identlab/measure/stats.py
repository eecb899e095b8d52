"""Cell statistics for tables and text: levels of a sweep axis, per-cell mean/std/n,
the rows a figure or a sentence may use. Every spread over runs (seeds) is
:func:`seed_std`. Pure numbers (pandas/numpy), no plotting, so a
report's numbers never depend on a picture."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.linalg import orthogonal_procrustes

from identlab.core.fmt import fmt
from identlab.core.schema import value_label

__all__ = ["TABLE_METRICS", "SUMMARY_KEYS", "seed_std", "ok_rows", "axis_levels", "level_of",
           "numeric_levels", "cell_stats",
           "bound_rows", "bound_error", "bound_counts", "bound_counts_text",
           "align_orthogonal", "row_verdicts", "majority_verdict",
           "cell_verdicts", "verdict_mark", "VERDICT_MARKS", "VERDICT_NAMES",
           "VERDICT_PRIORITY", "VERDICT_LOSSES", "trajectory_rows", "trajectory_stats",
           "departure_step"]


# metrics of a report's cell table (more columns appear where records carry them)
TABLE_METRICS = ("r2_hz", "cca_min", "mcc", "procrustes")
# metrics `identlab run` prints for each member
SUMMARY_KEYS = ("r2_hz", "r2_target", "r2_xz", "r2_zh", "cca_mean", "cca_min", "mcc", "orth_err",
                "procrustes", "epsilon", "delta", "D", "bound", "bound_holds",
                "bound_informative", "nl_r2_hz", "sigreg_stat", "align", "h_var")


def seed_std(values, axis: int | None = None):
    """The spread of a number over runs (seeds), the ``std`` of every "mean ± std": the
    sample standard deviation (ddof=1), NaN entries skipped. For a handful of seeds the
    population std (ddof=0) understates the spread by √((n−1)/n), 29 % at two seeds.
    One run has no spread (0.0; the text prints its mean alone), no run gives NaN.
    ``axis``: as for numpy (None: one float over all values)."""
    v = np.asarray(values, dtype=float)
    n = np.sum(~np.isnan(v), axis=axis)
    with warnings.catch_warnings():  # fewer than two runs: handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        std = np.nanstd(v, axis=axis, ddof=1)
    std = np.where(n == 1, 0.0, np.where(n == 0, np.nan, std))
    return float(std) if axis is None else std


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of finished (not diverged) runs."""
    return df[df["status"] == "ok"] if "status" in df else df


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def axis_levels(df: pd.DataFrame, axis: str, grid: dict) -> list[str]:
    """The ordered labels of ``axis``: grid order for a grid key, numeric order for a
    list-expanded column ``key[i]``."""
    if axis in grid:
        return list(dict.fromkeys(value_label(v) for v in grid[axis]))
    if axis in df:
        vals = pd.to_numeric(df[axis], errors="coerce").dropna().unique()
        return [fmt(v, 6) for v in sorted(vals)]
    raise KeyError(f"{axis!r} is neither a grid key nor a results column")


def level_of(df: pd.DataFrame, axis: str, grid: dict) -> pd.Series:
    """Each row's label on ``axis`` (matches :func:`axis_levels`)."""
    if axis in grid:
        return df[f"cell.{axis}"].astype(str)
    vals = pd.to_numeric(df[axis], errors="coerce")
    return vals.map(lambda v: fmt(v, 6) if pd.notna(v) else "n/a")


def numeric_levels(df: pd.DataFrame, axis: str, grid: dict) -> list[float] | None:
    """Numeric value of every level of ``axis`` in level order, or None if not numeric."""
    if axis in grid:
        if not all(_is_number(v) for v in grid[axis]):
            return None
        by_label = {value_label(v): float(v) for v in grid[axis]}
        return [by_label[lab] for lab in axis_levels(df, axis, grid)]
    return [float(lab) for lab in axis_levels(df, axis, grid)]


def cell_stats(df: pd.DataFrame, metric: str, keys: Sequence[str], grid: dict) -> pd.DataFrame:
    """Mean, std (:func:`seed_std`) and count of ``metric`` over ok rows, per combination of
    ``keys`` levels (over seeds, and over any grid axis not in ``keys``). Columns: one
    per key (labels), ``mean``, ``std``, ``n``."""
    rows = ok_rows(df)
    vals = pd.to_numeric(rows[metric], errors="coerce") if metric in rows else pd.Series(
        np.nan, index=rows.index)
    frame = pd.DataFrame({k: level_of(rows, k, grid) for k in keys})
    frame["v"] = vals.astype(float)
    if not keys:
        v = frame["v"].dropna()
        return pd.DataFrame({"mean": [v.mean()], "std": [seed_std(v)], "n": [len(v)]})
    g = frame.dropna(subset=["v"]).groupby(list(keys), sort=False)["v"]
    out = g.agg(mean="mean", std=seed_std, n="count").reset_index()
    return out


# ------------------------------------------------------------------ scatter
def align_orthogonal(h: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre both and rotate h onto z by the orthogonal Procrustes solution R
    (argmin ‖hc R − zc‖_F, as in :func:`identlab.metrics.procrustes`); returns
    (hc R, centred z)."""
    hc, zc = h - h.mean(axis=0), z - z.mean(axis=0)
    r, _ = orthogonal_procrustes(hc, zc)
    return hc @ r, zc


# ------------------------------------------------------------------ bound
def bound_error(rows: pd.DataFrame) -> pd.Series:
    """The recovery error the bound is about: the Procrustes error against the theorem's
    target (``procrustes_target``; z or u), against z for records without it."""
    p = pd.to_numeric(rows["procrustes"], errors="coerce") if "procrustes" in rows else \
        pd.Series(np.nan, index=rows.index)
    if "procrustes_target" in rows:
        p = pd.to_numeric(rows["procrustes_target"], errors="coerce").fillna(p)
    return p


def bound_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Ok rows with a finite, positive bound and a finite recovery error (bound_error)."""
    rows = ok_rows(df)
    if "bound" not in rows or "procrustes" not in rows:
        return rows.iloc[0:0]
    b = pd.to_numeric(rows["bound"], errors="coerce")
    return rows[np.isfinite(b) & (b > 0) & np.isfinite(bound_error(rows))]


def bound_counts(rows: pd.DataFrame) -> dict:
    """How often the bound holds among ``rows`` with a bound verdict, and among those
    whose bound is informative (below the error of a constant embedding, the target's
    total variance): ``holds``, ``checked``, ``informative``, ``informative_holds`` (the
    last two None for records without ``bound_informative``)."""
    keep = rows["bound_holds"].notna() if "bound_holds" in rows else \
        pd.Series(False, index=rows.index)
    held = rows.loc[keep, "bound_holds"].astype(bool) if keep.any() else pd.Series([], dtype=bool)
    out = {"holds": int(held.sum()), "checked": len(held), "informative": None,
           "informative_holds": None}
    if "bound_informative" in rows and rows.loc[keep, "bound_informative"].notna().any():
        info = rows.loc[keep, "bound_informative"].astype("boolean").fillna(False).astype(bool)
        out["informative"] = int(info.sum())
        out["informative_holds"] = int(held[info].sum())
    return out


def bound_counts_text(c: dict) -> str:
    """'holds in 90/90 runs; 12 of them informative (bound below a constant embedding's
    error), holds in 12/12'."""
    text = f"holds in {c['holds']}/{c['checked']} runs"
    if c["informative"] is not None:
        text += (f"; {c['informative']} of them informative (bound below a constant "
                 f"embedding's error), holds in {c['informative_holds']}/{c['informative']}")
    return text


# ------------------------------------------------------------------ attribution verdicts
# Marks of the attribution classes (design §7) on heatmaps and in text.
VERDICT_MARKS = {"recovered": "✓", "optimizer_gap": "⚙", "nonrotation_optimum": "✗",
                 "optimizer_gap+nonrotation": "⚙✗", "near_rotation_optimum": "≈",
                 "underpowered": "○", "inconclusive": "?", "collapsed": "∅", "diverged": "†"}
VERDICT_NAMES = {"recovered": "recovered",
                 "optimizer_gap": "optimizer gap",
                 "nonrotation_optimum": "non-rotation optimum",
                 "optimizer_gap+nonrotation": "optimizer gap and non-rotation optimum",
                 "near_rotation_optimum": "near-rotation optimum (an h close to the target "
                                          "that the objective prefers to the rotation)",
                 "underpowered": "underpowered (the losses could not resolve 5 % of J)",
                 "inconclusive": "inconclusive (a non-rotation that ties with the rotation)",
                 "collapsed": "collapsed (the embedding, or the best rotation's scale, "
                              "shrinks to nothing)",
                 "diverged": "diverged"}
# A tie between classes goes to the first of these (the more severe reading).
VERDICT_PRIORITY = ("diverged", "collapsed", "optimizer_gap+nonrotation",
                    "nonrotation_optimum", "near_rotation_optimum", "optimizer_gap",
                    "underpowered", "inconclusive", "recovered")
# Per-cell means of these record keys go with the verdict counts.
VERDICT_LOSSES = ("loss_learned", "loss_rotation", "loss_alternative", "loss_path_best",
                  "lam_star", "lam_effective")


def row_verdicts(df: pd.DataFrame) -> pd.Series:
    """Each row's attribution class: ``diverged`` for a diverged run (its metrics may be
    empty) or a non-finite embedding, else the record's ``verdict`` (None where the
    record has none: an older record, or an objective without SIGReg)."""
    v = df["verdict"].astype(object) if "verdict" in df else pd.Series(None, index=df.index,
                                                                        dtype=object)
    v = v.where(v.isin(list(VERDICT_MARKS)), None)
    dead = df["status"] == "diverged" if "status" in df else pd.Series(False, index=df.index)
    if "nonfinite_embedding" in df:
        dead = dead | df["nonfinite_embedding"].astype("boolean").fillna(False).astype(bool)
    return v.mask(dead, "diverged")


def majority_verdict(counts: dict[str, int]) -> str | None:
    """The most frequent class; ties go to the earlier class of VERDICT_PRIORITY."""
    best = max(counts.values(), default=0)
    if best == 0:
        return None
    return next(v for v in VERDICT_PRIORITY if counts.get(v, 0) == best)


def cell_verdicts(df: pd.DataFrame, keys: Sequence[str], grid: dict) -> pd.DataFrame:
    """Per combination of ``keys`` levels (over seeds): the majority verdict, its count
    ``k`` out of ``n`` rows with a verdict, one count column ``n_<class>`` per class and
    the mean of each VERDICT_LOSSES key over the cell's finished rows. Cells without any
    verdict are left out."""
    v = row_verdicts(df)
    frame = pd.DataFrame({k: level_of(df, k, grid) for k in keys}, index=df.index)
    frame["verdict"] = v
    for key in VERDICT_LOSSES:
        vals = pd.to_numeric(df[key], errors="coerce") if key in df else np.nan
        frame[key] = np.where(v != "diverged", vals, np.nan)
    frame = frame[frame["verdict"].notna()]
    rows = []
    for lv, sub in (frame.groupby(list(keys), sort=False) if keys else [((), frame)]):
        counts = sub["verdict"].value_counts().to_dict()
        major = majority_verdict(counts)
        if major is None:
            continue
        lv = lv if isinstance(lv, tuple) else (lv,)
        row = dict(zip(keys, lv))
        row.update(verdict=major, k=counts[major], n=len(sub),
                   **{f"n_{c}": int(counts.get(c, 0)) for c in VERDICT_MARKS},
                   **{key: sub[key].astype(float).mean() for key in VERDICT_LOSSES})
        rows.append(row)
    cols = list(keys) + ["verdict", "k", "n"] + [f"n_{c}" for c in VERDICT_MARKS] + list(
        VERDICT_LOSSES)
    return pd.DataFrame(rows, columns=cols)


def verdict_mark(row) -> str:
    """``✓ 3/3``: the majority class's mark and its count over the cell's runs."""
    return f"{VERDICT_MARKS[row['verdict']]} {int(row['k'])}/{int(row['n'])}"


# ------------------------------------------------------------------ trajectories
def _series(v) -> list[float] | None:
    """A list-valued metric as floats: a list, or the ';'-joined text of a results row."""
    if isinstance(v, (list, tuple)):
        items = list(v)
    elif isinstance(v, str) and v:
        items = v.split(";")
    else:
        return None
    try:
        return [float("nan") if x is None or x == "None" else float(x) for x in items]
    except ValueError:
        return None


def trajectory_rows(df: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps (T,), values (runs, T)) of a trajectory metric (``traj_*``) over the ok rows
    whose logged steps equal the first run's (rows with other steps are left out)."""
    rows = ok_rows(df)
    if metric not in rows or "traj_steps" not in rows:
        return np.empty(0), np.empty((0, 0))
    steps, vals = None, []
    for st, v in zip(rows["traj_steps"], rows[metric]):
        st, v = _series(st), _series(v)
        if st is None or v is None or len(st) != len(v):
            continue
        steps = st if steps is None else steps
        if st == steps:
            vals.append(v)
    if steps is None:
        return np.empty(0), np.empty((0, 0))
    return np.asarray(steps), np.asarray(vals, dtype=float).reshape(len(vals), len(steps))


def trajectory_stats(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per logged step: mean, std (:func:`seed_std`) and count of a trajectory metric over
    runs."""
    steps, vals = trajectory_rows(df, metric)
    if not len(steps) or not len(vals):
        return pd.DataFrame(columns=["step", "mean", "std", "n"])
    ok = np.isfinite(vals)
    n = ok.sum(0)
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(np.where(ok, vals, np.nan), axis=0) if ok.any() else n * np.nan
        std = seed_std(np.where(ok, vals, np.nan), axis=0) if ok.any() else n * np.nan
    return pd.DataFrame({"step": steps, "mean": mean, "std": std, "n": n})


def departure_step(steps: np.ndarray, r2: np.ndarray, start: float, tol: float) -> float | None:
    """The first logged step at which R² has fallen more than ``tol`` below ``start`` (the
    speed of a departure), or None when it never does."""
    below = np.flatnonzero(np.asarray(r2, float) < start - tol)
    return float(steps[below[0]]) if len(below) else None
