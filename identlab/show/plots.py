"""Figures for sweep reports: heatmaps, lines, h-vs-z scatters and the Thm-3 bound.

Every function takes the flat results table of :func:`identlab.report.load_records`
(one row per record) plus the sweep's ``grid`` (axis -> list of raw values, in spec
order) and returns a :class:`matplotlib.figure.Figure`. Figures are built without
``pyplot``, so nothing here touches global matplotlib state (no backend switch, no
rcParams changes, no open-figure registry); :func:`save` writes PNG + SVG atomically.

Conventions shared by all plots:

* Only ``status == "ok"`` rows enter means; diverged rows are counted by the report.
* An axis is a grid key (its levels are the cell labels, in grid order) or a
  list-expanded column such as ``world.dynamics.rho[0]`` (levels are its sorted numbers).
* Axes not named by a plot are pooled: their runs count as extra samples of a level.
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from identlab.core.fmt import fmt
from identlab.core.io import write_bytes_atomic
from identlab.measure.stats import (
    VERDICT_MARKS,
    VERDICT_NAMES,
    align_orthogonal,
    axis_levels,
    bound_rows,
    cell_stats,
    cell_verdicts,
    level_of,
    numeric_levels,
    ok_rows,
    trajectory_stats,
    verdict_mark,
)
from identlab.measure.thresholds import BOUND_MARK_R2

__all__ = ["heatmap", "line", "trajectory", "scatter", "bound", "versus", "save", "is_unit_metric",
           "scatter_cells", "message_figure", "short_axis", "DPI"]

DPI = 120
UNIT_RE = re.compile(r"^(nl_)?(r2|cca|mcc)|_rate$|^bound_holds$")
EXPANDED_RE = re.compile(r"^(?P<key>.+)\[(?P<i>\d+)\]$")
CMAP = "viridis"


def is_unit_metric(metric: str) -> bool:
    """Metrics that live in [0, 1] (R², canonical correlations, MCC, rates)."""
    return bool(UNIT_RE.search(metric))


def short_axis(axis: str) -> str:
    """``learner.objective.lam`` -> ``lam``; ``world.dynamics.rho[0]`` -> ``rho[0]``."""
    return axis.rsplit(".", 1)[-1]


def _rotate_if_long(ax, labels: Sequence[str]) -> None:
    """Slant the x tick labels when they would not fit side by side."""
    if max((len(s) for s in labels), default=0) * len(labels) > 40:
        for t in ax.get_xticklabels():
            t.set_rotation(30)
            t.set_horizontalalignment("right")


def _text_colour(rgba) -> str:
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _facets(df: pd.DataFrame, facet: str | None, grid: dict) -> list[tuple[str | None,
                                                                          pd.DataFrame]]:
    if not facet:
        return [(None, df)]
    lev = level_of(df, facet, grid)
    return [(lab, df[lev == lab]) for lab in axis_levels(df, facet, grid)]


def message_figure(fig: Figure, msg: str) -> Figure:
    """``fig`` with one centred message instead of a plot."""
    ax = fig.add_subplot(1, 1, 1)
    ax.axis("off")
    ax.text(0.5, 0.5, msg, ha="center", va="center", wrap=True, fontsize=11)
    return fig


# ------------------------------------------------------------------ heatmap
def heatmap(df: pd.DataFrame, grid: dict, *, metric: str, x: str, y: str,
            facet: str | None = None, overlay: str | None = None,
            title: str | None = None, threshold: float | None = None) -> Figure:
    """Mean of ``metric`` over seeds in each (x, y) cell, annotated ``mean ± std``.

    ``overlay='rho_sq'`` draws the slow-feature boundary ρ_max² = ρ_min on a heatmap of
    two per-dimension rhos; ``overlay='theorem'`` outlines cells where the theorem's
    assumptions hold for every record. ``threshold`` marks cells whose mean reaches it.
    Where records carry attribution verdicts (DESIGN §7) each cell also shows the
    majority class's mark and count over its seeds (:func:`stats.cell_verdicts`), with a
    legend of the marks.
    """
    xl, yl = axis_levels(df, x, grid), axis_levels(df, y, grid)
    panels = _facets(df, facet, grid)
    stats = [cell_stats(sub, metric, [x, y], grid) for _, sub in panels]
    vmin, vmax = _colour_range(metric, stats)
    npan = len(panels)
    marks_of = [_verdict_marks(sub, grid, x, y) for _, sub in panels]
    w = max(3.6, 0.95 * len(xl) + 1.8)
    h = max(3.0, 0.62 * len(yl) + 1.9)
    # the legend (verdict marks, overlays) sits right of the panels, in its own column
    legend_w = 3.4 if overlay or any(marks_of) else 0.0
    fig = Figure(figsize=(w * npan + 1.2 + legend_w, max(h, 3.4 if legend_w else h)),
                 layout="constrained")
    axes = fig.subplots(1, npan, squeeze=False)[0]
    norm = Normalize(vmin, vmax)
    im, handles = None, {}
    for ax, (flab, sub), st, marks in zip(axes, panels, stats, marks_of):
        im = _heat_panel(ax, sub, st, grid, xl, yl, x, y, norm, threshold, marks)
        if marks:
            handles.update(_verdict_legend())
        if overlay == "theorem":
            handles.update(_overlay_theorem(ax, sub, grid, x, y, xl, yl))
        elif overlay == "rho_sq":
            handles.update(_overlay_rho_sq(ax, df, grid, x, y))
        ax.set_title(f"{short_axis(facet)} = {flab}" if facet else "", fontsize=10)
    cb = fig.colorbar(im, ax=list(axes), shrink=0.9)
    cb.set_label(f"{metric} (mean)")
    if threshold is not None and vmin <= threshold <= vmax:  # bold cells reach this line
        cb.ax.axhline(threshold, color="black", linewidth=1.2)
    if handles:
        fig.legend(handles=list(handles.values()), loc="outside right upper", fontsize=8,
                   frameon=False)
    head = title or f"{metric} over {short_axis(x)} × {short_axis(y)}"
    fig.suptitle("\n".join(textwrap.wrap(head, int(45 * npan + 15))), fontsize=12)
    return fig


def _colour_range(metric: str, stats: list[pd.DataFrame]) -> tuple[float, float]:
    if is_unit_metric(metric):
        return 0.0, 1.0
    vals = np.concatenate([s["mean"].to_numpy(float) for s in stats]) if stats else []
    vals = vals[np.isfinite(vals)] if len(vals) else vals
    if not len(vals):
        return 0.0, 1.0
    lo, hi = float(vals.min()), float(vals.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def _verdict_marks(sub: pd.DataFrame, grid: dict, x: str, y: str) -> dict:
    """{(y label, x label): '✓ 3/3'} for the panel's cells with attribution verdicts."""
    cv = cell_verdicts(sub, [x, y], grid)
    return {(r[y], r[x]): verdict_mark(r) for _, r in cv.iterrows()}


def _verdict_legend() -> dict:
    """Legend entries (text only) for the verdict marks."""
    return {f"verdict {v}": Patch(facecolor="none", edgecolor="none",
                                  label=f"{m} {VERDICT_NAMES[v]}")
            for v, m in VERDICT_MARKS.items()} | {
        "verdict note": Patch(facecolor="none", edgecolor="none",
                              label="(mark: majority verdict over seeds, k/n)")}


def _heat_panel(ax, sub, st, grid, xl, yl, x, y, norm, threshold, marks=None):
    """One heatmap panel; returns the image (for the colour bar). ``marks``: verdict
    mark text per (y label, x label), shown as a last line of the cell."""
    marks = marks or {}
    mat = np.full((len(yl), len(xl)), np.nan)
    sd = np.full_like(mat, np.nan)
    cnt = np.zeros(mat.shape, int)
    for _, r in st.iterrows():
        if r[x] in xl and r[y] in yl:
            ij = yl.index(r[y]), xl.index(r[x])
            mat[ij], sd[ij], cnt[ij] = r["mean"], r["std"], r["n"]
    cmap = colormaps[CMAP].with_extremes(bad="#d9d9d9")
    im = ax.imshow(np.ma.masked_invalid(mat), cmap=cmap, norm=norm, origin="lower",
                   aspect="auto")
    diverged = _diverged_cells(sub, grid, x, y)
    fs = 8.0 if len(xl) <= 12 else 6.5
    for i in range(len(yl)):
        for j in range(len(xl)):
            if np.isfinite(mat[i, j]):
                txt = fmt(mat[i, j], 2) + (f"\n±{fmt(sd[i, j], 1)}" if cnt[i, j] > 1 else "")
                face = im.cmap(norm(mat[i, j]))
                col = _text_colour(face)
                weight = "bold" if threshold is not None and mat[i, j] >= threshold else None
            else:
                txt = "diverged" if (yl[i], xl[j]) in diverged else "no runs"
                face, col, weight = "#d9d9d9", "black", None
            if (yl[i], xl[j]) in marks:
                txt += "\n" + marks[(yl[i], xl[j])]
            # a cell-coloured box keeps the numbers readable under overlay curves
            ax.text(j, i, txt, ha="center", va="center", fontsize=fs, color=col,
                    fontweight=weight, zorder=5,
                    bbox={"boxstyle": "round,pad=0.15", "fc": face, "ec": "none", "alpha": 0.8})
    ax.set_xticks(range(len(xl)), xl)
    ax.set_yticks(range(len(yl)), yl)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    _rotate_if_long(ax, xl)
    return im


def _diverged_cells(sub, grid, x, y) -> set[tuple[str, str]]:
    if "status" not in sub or not len(sub):
        return set()
    lx, ly = level_of(sub, x, grid), level_of(sub, y, grid)
    return {(b, a) for a, b, s in zip(lx, ly, sub["status"]) if s == "diverged"}


def _overlay_theorem(ax, sub, grid, x, y, xl, yl) -> dict:
    """Outline cells where theorem_applies is true for every record; returns the legend
    handle (empty when no cell qualifies)."""
    if "theorem_applies" not in sub or not len(sub):
        return {}
    applies = sub["theorem_applies"].astype("boolean").fillna(False).astype(bool)
    frame = pd.DataFrame({"x": level_of(sub, x, grid), "y": level_of(sub, y, grid),
                          "t": applies})
    n = 0
    for (lx, ly), t in frame.groupby(["x", "y"])["t"]:
        if t.all() and lx in xl and ly in yl:
            corner = (xl.index(lx) - 0.44, yl.index(ly) - 0.44)
            ax.add_patch(Rectangle(corner, 0.88, 0.88, fill=False, edgecolor="white",
                                   linewidth=3.2, zorder=2))
            ax.add_patch(Rectangle(corner, 0.88, 0.88, fill=False, edgecolor="crimson",
                                   linewidth=1.6, zorder=2))
            n += 1
    if not n:
        return {}
    return {"theorem": Patch(fill=False, edgecolor="crimson", linewidth=1.6,
                             label="outlined: theorem's assumptions hold (every run)")}


def _to_index(values: np.ndarray, levels: list[float]) -> np.ndarray:
    """Numeric axis values -> fractional cell indices (linear between level centres)."""
    lv = np.asarray(levels, float)
    order = np.argsort(lv)
    return np.interp(values, lv[order], np.arange(len(lv), dtype=float)[order],
                     left=np.nan, right=np.nan)


def _overlay_rho_sq(ax, df, grid, x, y) -> dict:
    """The curve ρ_max² = ρ_min on a heatmap of two per-dimension rhos (both branches);
    returns its legend handle."""
    xv, yv = numeric_levels(df, x, grid), numeric_levels(df, y, grid)
    if not xv or not yv or len(xv) < 2 or len(yv) < 2:
        return {}
    drawn = False
    for branch in ("y=x^2", "x=y^2"):
        if branch == "y=x^2":
            xs = np.linspace(min(xv), max(xv), 400)
            ys = xs**2
        else:
            ys = np.linspace(min(yv), max(yv), 400)
            xs = ys**2
        xi, yi = _to_index(xs, xv), _to_index(ys, yv)
        keep = np.isfinite(xi) & np.isfinite(yi)
        if keep.sum() < 2:
            continue
        ax.plot(xi[keep], yi[keep], color="white", lw=3.0, alpha=0.7, zorder=3)
        ax.plot(xi[keep], yi[keep], color="crimson", lw=1.6, ls="--", zorder=4)
        drawn = True
    if not drawn:
        return {}
    return {"rho_sq": Line2D([], [], color="crimson", ls="--", lw=1.6,
                             label="ρ_max² = ρ_min: whitening predicted to fail beyond")}


# ------------------------------------------------------------------ line
def _numeric_axis(df, x, grid) -> list[float] | None:
    vals = numeric_levels(df, x, grid)
    return vals if vals is not None and all(math.isfinite(v) for v in vals) else None


def line(df: pd.DataFrame, grid: dict, *, metric: str, x: str, group: str | None = None,
         facet: str | None = None, title: str | None = None,
         threshold: float | None = None) -> Figure:
    """``metric`` vs ``x``: one line per ``group`` level, mean ± 1 seed-std band, seeds
    as faint dots; numeric x on a linear or (if > 2 decades) log scale."""
    panels = _facets(df, facet, grid)
    fig = Figure(figsize=(5.6 * len(panels) + 1.6, 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    xl = axis_levels(df, x, grid)
    xnum = _numeric_axis(df, x, grid)
    logx = bool(xnum and min(xnum) > 0 and max(xnum) / min(xnum) > 100)
    pos = dict(zip(xl, xnum if xnum else range(len(xl))))
    groups = axis_levels(df, group, grid) if group else [None]
    colours = _palette(len(groups))
    for ax, (flab, sub) in zip(axes, panels):
        for glab, col in zip(groups, colours):
            part = sub if glab is None else sub[level_of(sub, group, grid) == glab]
            _line_series(ax, part, metric, x, grid, pos, col, glab)
        _line_axes(ax, metric, x, xl, xnum, logx, threshold)
        ax.set_title(f"{short_axis(facet)} = {flab}" if facet else "", fontsize=10)
    if group or threshold is not None:
        axes[-1].legend(fontsize=8, loc="best", title_fontsize=8,
                        title=short_axis(group) if group else None)
    fig.suptitle("\n".join(textwrap.wrap(title or f"{metric} vs {short_axis(x)}", 70)),
                 fontsize=12)
    return fig


# ------------------------------------------------------------------ trajectory
TRAJ_ORACLES = {"traj_loss": (("traj_loss_rotation", "--", "rotation oracle"),
                              ("traj_loss_gaussianized", ":", "Gaussianized oracle"))}


def trajectory(df: pd.DataFrame, grid: dict, *, metric: str, group: str | None = None,
               facet: str | None = None, y: str | None = None,
               title: str | None = None) -> Figure:
    """A trajectory metric (``traj_*``) against the logged training step: columns are
    ``facet`` levels, rows ``y`` levels, one line per ``group`` level (mean ± 1 seed-std
    band, every run as a faint line). For ``traj_loss`` the mean oracle losses of the
    same runs are drawn in the group's colour (dashed: rotation; dotted: Gaussianized)."""
    cols = _facets(df, facet, grid)
    rows = _facets(df, y, grid)
    fig = Figure(figsize=(3.6 * len(cols) + 1.4, 3.0 * len(rows) + 0.8), layout="constrained")
    axes = fig.subplots(len(rows), len(cols), squeeze=False, sharex=True, sharey="row")
    groups = axis_levels(df, group, grid) if group else [None]
    colours = _palette(len(groups))
    for i, (ylab, ysub) in enumerate(rows):
        for j, (flab, _) in enumerate(cols):
            ax = axes[i][j]
            sub = ysub if facet is None else ysub[level_of(ysub, facet, grid) == flab]
            for glab, col in zip(groups, colours):
                part = sub if glab is None else sub[level_of(sub, group, grid) == glab]
                _trajectory_series(ax, part, metric, col, glab)
            head = [f"{short_axis(facet)} = {flab}" if facet else "",
                    f"{short_axis(y)} = {ylab}" if y else ""]
            ax.set_title("\n".join(h for h in head if h), fontsize=9)
            ax.grid(alpha=0.3)
            ax.set_xlabel("step" if i == len(rows) - 1 else "")
            ax.set_ylabel(metric if j == 0 else "")
    if group:
        axes[0][-1].legend(fontsize=7, loc="best", title=short_axis(group), title_fontsize=7)
    fig.suptitle("\n".join(textwrap.wrap(title or f"{metric} along training", 80)),
                 fontsize=11)
    return fig


def _trajectory_series(ax, part: pd.DataFrame, metric: str, colour, label) -> None:
    st = trajectory_stats(part, metric)
    if not len(st):
        return
    x, m, s = (st[c].to_numpy(float) for c in ("step", "mean", "std"))
    ax.plot(x, m, "-o", color=colour, lw=1.8, ms=3, label=label, zorder=3)
    ax.fill_between(x, m - s, m + s, color=colour, alpha=0.2, lw=0)
    for key, style, _ in TRAJ_ORACLES.get(metric, ()):
        v = pd.to_numeric(ok_rows(part).get(key), errors="coerce")
        if v is not None and v.notna().any():
            ax.axhline(float(v.mean()), color=colour, ls=style, lw=1, alpha=0.8)


def _palette(n: int) -> list:
    cmap = colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(i if n <= 10 else i / max(n - 1, 1)) for i in range(n)]


def _line_series(ax, part, metric, x, grid, pos, colour, label) -> None:
    st = cell_stats(part, metric, [x], grid)
    st = st[st[x].isin(list(pos))]
    st = st.assign(p=st[x].map(pos)).sort_values("p")
    if not len(st):
        return
    xs, m, s = st["p"].to_numpy(float), st["mean"].to_numpy(float), st["std"].to_numpy(float)
    ax.plot(xs, m, "-o", color=colour, lw=1.8, ms=4, label=label, zorder=3)
    if np.any(s > 0):
        ax.fill_between(xs, m - s, m + s, color=colour, alpha=0.2, lw=0)
    rows = ok_rows(part)
    if metric in rows and len(rows):
        px = level_of(rows, x, grid).map(pos)
        py = pd.to_numeric(rows[metric], errors="coerce")
        ax.scatter(px, py, s=10, color=colour, alpha=0.35, lw=0, zorder=2, rasterized=True)


def _line_axes(ax, metric, x, xl, xnum, logx, threshold) -> None:
    if xnum:
        if logx:
            ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(xl)), xl)
        _rotate_if_long(ax, xl)
    if threshold is not None:
        ax.axhline(threshold, color="grey", ls=":", lw=1, label=f"threshold {fmt(threshold)}")
    if is_unit_metric(metric):
        lo, hi = ax.get_ylim()
        ax.set_ylim(min(lo, 0.0), max(hi, 1.02))
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)


def scatter_cells(df: pd.DataFrame, max_cells: int = 6) -> pd.DataFrame:
    """Up to ``max_cells`` rows spread evenly over the cell order (smallest ok seed of each
    cell that has a 2-D sample)."""
    rows = ok_rows(df)
    if "has_sample" in rows:
        rows = rows[rows["has_sample"].astype(bool)]
    if not len(rows):
        return rows
    first = rows.sort_values(["cell_index", "seed"]).groupby("cell_index", sort=True).head(1)
    if len(first) <= max_cells:
        return first
    pick = np.unique(np.round(np.linspace(0, len(first) - 1, max_cells)).astype(int))
    return first.iloc[pick]


def scatter(df: pd.DataFrame, samples: dict[str, dict], grid: dict, *,
            title: str | None = None, max_cells: int = 6) -> Figure:
    """h against z after the best orthogonal alignment, one panel per chosen cell:
    (z₁, (hQᵀ)₁) and (z₂, (hQᵀ)₂); a straight diagonal means h is a rotation of z.
    ``samples`` maps a record hash to its ``sample`` ({z, h} lists)."""
    chosen = scatter_cells(df[df["hash"].isin(list(samples))] if len(df) else df, max_cells)
    if not len(chosen):
        return message_figure(Figure(figsize=(6, 3)),
                              "no 2-D samples to show (not a 2-D world, or every run diverged)")
    n = len(chosen)
    ncol = min(3, n)
    nrow = math.ceil(n / ncol)
    fig = Figure(figsize=(3.6 * ncol, 3.7 * nrow + 0.5), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax, (_, row) in zip(axes, chosen.iterrows()):
        _scatter_panel(ax, row, samples[row["hash"]], grid)
    for ax in axes[n:]:
        ax.axis("off")
    fig.suptitle(title or "h vs z after orthogonal (Procrustes) alignment", fontsize=12)
    return fig


def cell_text(row: pd.Series, grid: dict) -> str:
    return ", ".join(f"{short_axis(a)}={row.get(f'cell.{a}', '?')}" for a in grid)


def _scatter_panel(ax, row, sample, grid) -> None:
    z, h = np.asarray(sample["z"], float), np.asarray(sample["h"], float)
    ha, zc = align_orthogonal(h, z)
    colours = ("tab:blue", "tab:orange")
    for d in range(min(2, z.shape[1])):
        ax.scatter(zc[:, d], ha[:, d], s=5, alpha=0.5, color=colours[d], lw=0,
                   label=f"dim {d + 1}", rasterized=True)
    lim = float(np.nanmax(np.abs(np.concatenate([zc.ravel(), ha.ravel()])))) * 1.05 or 1.0
    ax.plot([-lim, lim], [-lim, lim], color="grey", lw=0.8, ls="--")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("z_i (centred)")
    ax.set_ylabel("(h Qᵀ)_i")
    r2 = row.get("r2_hz")
    head = f"{cell_text(row, grid)} (seed {int(row['seed'])})"
    ax.set_title("\n".join(textwrap.wrap(head, 38)) + f"\nr2_hz = {fmt(r2)}", fontsize=8.5)
    ax.legend(fontsize=7, loc="upper left", markerscale=2)


# ------------------------------------------------------------------ frames
def frames(images: np.ndarray, z: np.ndarray, *, title: str | None = None) -> Figure:
    """A grid of RGB observations: images (rows, cols, 3, H, W) uint8, each titled with
    its latent z (rows, cols, N)."""
    rows, cols = images.shape[:2]
    fig = Figure(figsize=(1.6 * cols, 1.75 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(np.transpose(images[r, c], (1, 2, 0)), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title("z = (" + ", ".join(f"{v:.2f}" for v in z[r, c]) + ")", fontsize=7)
        axes[r, 0].set_ylabel(f"x_t+{r}" if r else "x_t", fontsize=9)
    fig.suptitle(title or "example observations", fontsize=11)
    return fig


def bound(df: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Measured error (procrustes) vs the Thm-3 bound D + (ε + D)², log-log, with y = x;
    colour = bound_holds, ✕ = r2_hz < 0.5 (kept, not dropped); caption: fraction held."""
    rows = bound_rows(df)
    fig = Figure(figsize=(5.8, 5.0), layout="constrained")
    if not len(rows):
        return message_figure(fig, "no run has a positive bound\n"
                              "(the bound needs a Gaussian OU world; see the table)")
    ax = fig.add_subplot(1, 1, 1)
    b = pd.to_numeric(rows["bound"]).to_numpy(float)
    p = pd.to_numeric(rows["procrustes"]).to_numpy(float)
    floor = max(np.min(p[p > 0]) / 2 if np.any(p > 0) else 1e-6, 1e-12)
    p = np.maximum(p, floor)
    holds = rows["bound_holds"].astype("boolean").fillna(False).to_numpy(bool)
    r2 = pd.to_numeric(rows.get("r2_hz"), errors="coerce").to_numpy(float)
    bad = np.nan_to_num(r2, nan=-np.inf) < BOUND_MARK_R2
    se = pd.to_numeric(rows.get("bound_se"), errors="coerce").fillna(0).to_numpy(float)
    lo = min(b.min(), p.min()) / 1.8
    hi = max((b + 3 * se).max(), p.max()) * 1.8
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--", zorder=1)
    ax.errorbar(b, p, xerr=[np.minimum(3 * se, b * 0.9), 3 * se], fmt="none",
                ecolor="0.6", elinewidth=0.7, alpha=0.6, zorder=1)
    for mask, mk, size in ((~bad, "o", 28), (bad, "X", 48)):
        for held, col in ((True, "tab:green"), (False, "tab:red")):
            m = mask & (holds == held)
            if m.any():
                ax.scatter(b[m], p[m], marker=mk, s=size, color=col, alpha=0.8,
                           edgecolor="black", lw=0.4, zorder=3)
    _log_axes(ax, lo, hi)
    ax.set_xlabel("bound  D + (ε + D)²  (bars: ±3 SE)")
    ax.set_ylabel("measured error  (procrustes)")
    fig.legend(handles=_bound_legend(bad.any()), fontsize=8, loc="outside lower center",
               ncol=2, frameon=False)
    ax.grid(alpha=0.3, which="major")
    k, n = int(holds.sum()), len(holds)
    fig.suptitle(title or "Theorem 3: measured error vs bound", fontsize=12)
    ax.set_title(f"bound holds in {k}/{n} runs ({100 * k / n:.0f}%)", fontsize=10)
    return fig


def _log_axes(ax, lo: float, hi: float) -> None:
    """Equal log-log limits with plain tick labels (minor labels only on short ranges)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")
    sparse = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else "")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(sparse if hi / lo < 20 else NullFormatter())


def _bound_legend(any_bad: bool) -> list:
    handles = [Line2D([], [], color="grey", ls="--", label="error = bound"),
               Line2D([], [], marker="o", ls="", color="tab:green", label="bound holds"),
               Line2D([], [], marker="o", ls="", color="tab:red", label="bound violated")]
    if any_bad:
        handles.append(Line2D([], [], marker="X", ls="", color="0.4",
                              label=f"r2_hz < {BOUND_MARK_R2}"))
    return handles


# ------------------------------------------------------------------ saving
def save(fig: Figure, stem: str | Path) -> list[Path]:
    """Write ``stem.png`` (dpi 120) and ``stem.svg``, each via a temp file + rename."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("png", "svg"):
        path = stem.with_name(f"{stem.name}.{ext}")
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=DPI)
        fig.set_layout_engine("none")  # keep the layout just computed; skip redoing it
        write_bytes_atomic(path, buf.getvalue())
        out.append(path)
    return out


# ------------------------------------------------------------------ versus
def versus(df: pd.DataFrame, grid: dict, *, metric: str, x: str, group: str | None = None,
           title: str | None = None, threshold: float | None = None) -> Figure:
    """``metric`` (y) against another metric ``x``, one dot per run, coloured by the
    ``group`` level; y on a symmetric-log scale when its positive values span more than
    two decades (regrets), which keeps zeros and tiny negatives visible."""
    rows = ok_rows(df)
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    if metric not in rows or x not in rows:
        return message_figure(fig, f"no {metric} or {x} in these records")
    xs = pd.to_numeric(rows[x], errors="coerce")
    ys = pd.to_numeric(rows[metric], errors="coerce")
    groups = axis_levels(rows, group, grid) if group else [None]
    for glab, col in zip(groups, _palette(len(groups))):
        keep = np.ones(len(rows), bool) if glab is None else \
            (level_of(rows, group, grid) == glab).to_numpy()
        ax.scatter(xs[keep], ys[keep], s=22, color=col, alpha=0.8, lw=0, label=glab)
    pos = ys[ys > 0]
    if len(pos) and pos.max() / max(pos.min(), 1e-12) > 100:
        ax.set_yscale("symlog", linthresh=max(float(pos.quantile(0.05)), 1e-3))
    if threshold is not None:
        ax.axvline(threshold, color="grey", ls=":", lw=1, label=f"{x} = {fmt(threshold)}")
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if group or threshold is not None:
        ax.legend(fontsize=8, loc="best", title=short_axis(group) if group else None,
                  title_fontsize=8)
    fig.suptitle("\n".join(textwrap.wrap(title or f"{metric} vs {x}", 70)), fontsize=12)
    return fig
