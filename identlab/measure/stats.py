"""Cell statistics for tables and text: levels of a sweep axis, per-cell mean/std/n,
the rows a figure or a sentence may use. Pure numbers (pandas/numpy), no plotting, so a
report's numbers never depend on a picture."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.linalg import orthogonal_procrustes

from identlab.core.fmt import fmt
from identlab.core.schema import value_label

__all__ = ["ok_rows", "axis_levels", "level_of", "numeric_levels", "cell_stats",
           "bound_rows", "align_orthogonal"]


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
    """Mean, std (ddof 0) and count of ``metric`` over ok rows, per combination of
    ``keys`` levels (over seeds, and over any grid axis not in ``keys``). Columns: one
    per key (labels), ``mean``, ``std``, ``n``."""
    rows = ok_rows(df)
    vals = pd.to_numeric(rows[metric], errors="coerce") if metric in rows else pd.Series(
        np.nan, index=rows.index)
    frame = pd.DataFrame({k: level_of(rows, k, grid) for k in keys})
    frame["v"] = vals.astype(float)
    if not keys:
        v = frame["v"].dropna()
        return pd.DataFrame({"mean": [v.mean()], "std": [v.std(ddof=0)], "n": [len(v)]})
    g = frame.dropna(subset=["v"]).groupby(list(keys), sort=False)["v"]
    out = g.agg(mean="mean", std=lambda s: s.std(ddof=0), n="count").reset_index()
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
def bound_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Ok rows with a finite, positive bound and a finite Procrustes error."""
    rows = ok_rows(df)
    if "bound" not in rows or "procrustes" not in rows:
        return rows.iloc[0:0]
    b = pd.to_numeric(rows["bound"], errors="coerce")
    p = pd.to_numeric(rows["procrustes"], errors="coerce")
    return rows[np.isfinite(b) & (b > 0) & np.isfinite(p)]
