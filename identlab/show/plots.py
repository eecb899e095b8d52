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
from identlab.measure.thresholds import BOUND_MARK_R2, RECOVERED_R2, SE_MULTIPLE
from identlab.show.labels import label, level_title

__all__ = ["heatmap", "line", "trajectory", "scatter", "bound", "versus", "save", "is_unit_metric",
           "scatter_cells", "message_figure", "short_axis", "DPI", "text_overlaps",
           "describe_overlaps", "threshold_label", "OverlapWarning"]

DPI = 120
UNIT_RE = re.compile(r"^(nl_)?(r2|cca|mcc)|_rate$|^bound_holds$|^plan_success")
EXPANDED_RE = re.compile(r"^(?P<key>.+)\[(?P<i>\d+)\]$")
CMAP = "viridis"


def is_unit_metric(metric: str) -> bool:
    """Metrics that live in [0, 1] (R², canonical correlations, MCC, rates)."""
    return bool(UNIT_RE.search(metric))


def short_axis(axis: str) -> str:
    """``learner.objective.lam`` -> ``lam``; ``world.dynamics.rho[0]`` -> ``rho[0]``."""
    return axis.rsplit(".", 1)[-1]


def threshold_label(metric: str, threshold: float) -> str:
    """What a plot's threshold means: ``recovered ≥ 0.95`` for an R² at the recovery cut
    (:data:`RECOVERED_R2`), else ``label ≥ value``."""
    if re.match(r"^(traj_)?(nl_)?r2_hz", metric) and math.isclose(threshold, RECOVERED_R2):
        return f"recovered ≥ {fmt(threshold)}"
    return f"{label(metric)} ≥ {fmt(threshold)}"


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


def _laid_out(fig: Figure) -> Figure:
    """``fig`` after one layout pass. Constrained layout sizes margins from the tick
    labels of the previous draw; a pass now (no rendering) means the first real draw
    already has the tick labels' sizes and needs no second pass to stop titles of one
    row meeting the labels of the row above. Level names on an x axis that run into
    each other are slanted, then the layout is redone."""
    fig.draw_without_rendering()
    renderer = fig._get_renderer()
    slanted = False
    for ax in fig.axes:
        labels = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
        if not _fixed_ticks(ax.xaxis) or labels and labels[0].get_rotation():
            continue
        boxes = [t.get_window_extent(renderer) for t in labels]
        gap = 0.4 * labels[0].get_fontsize() * fig.dpi / 72 if labels else 0.0
        if any(a.x1 + gap > b.x0 for a, b in zip(boxes, boxes[1:])):  # touching or closer
            for t in labels:
                t.set_rotation(30)
                t.set_horizontalalignment("right")
            slanted = True
    if slanted:
        fig.draw_without_rendering()
    return fig


def _fixed_ticks(axis) -> bool:
    """Whether the axis shows level names placed by the plot (a fixed locator), not
    numbers chosen by matplotlib's locator."""
    from matplotlib.ticker import FixedLocator

    return isinstance(axis.get_major_locator(), FixedLocator)


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
    Where records carry attribution verdicts (design §7) each cell also shows the
    majority class's mark and count over its seeds (:func:`stats.cell_verdicts`), with a
    legend of the marks.
    """
    xl, yl = axis_levels(df, x, grid), axis_levels(df, y, grid)
    panels = _facets(df, facet, grid)
    stats = [cell_stats(sub, metric, [x, y], grid) for _, sub in panels]
    vmin, vmax = _colour_range(metric, stats)
    npan = len(panels)
    # verdict marks only where the figure's records carry attribution verdicts (an
    # objective without SIGReg has none; a diverged run alone is not a verdict)
    with_verdicts = _has_verdicts(df)
    marks_of = [_verdict_marks(sub, grid, x, y) if with_verdicts else {} for _, sub in panels]
    w = max(3.6, 0.95 * len(xl) + 1.8)
    h = max(3.0, 0.62 * len(yl) + 1.9)
    n_legend = len(_verdict_legend({v for m in marks_of for v, _ in m.values()})) + bool(
        overlay)
    ncol = 2 if npan == 1 else 3
    h += 0.2 * math.ceil(n_legend / ncol)  # the legend rows below the panels
    fig = Figure(figsize=(w * npan + 1.8, h), layout="constrained")
    axes = fig.subplots(1, npan, squeeze=False)[0]
    norm = Normalize(vmin, vmax)
    im, handles, drawn = None, {}, set()
    for ax, (flab, sub), st, marks in zip(axes, panels, stats, marks_of):
        im = _heat_panel(ax, sub, st, grid, xl, yl, x, y, norm, threshold,
                         {k: m for k, (_, m) in marks.items()})
        drawn.update(v for v, _ in marks.values())
        if overlay == "theorem":
            handles.update(_overlay_theorem(ax, sub, grid, x, y, xl, yl))
        elif overlay == "rho_sq":
            handles.update(_overlay_rho_sq(ax, df, grid, x, y))
        ax.set_title(level_title(facet, flab), fontsize=10)
        if ax is not axes[0]:
            ax.set_ylabel("")
    handles.update(_verdict_legend(drawn))
    cb = fig.colorbar(im, ax=list(axes), shrink=0.9)
    cb.set_label(f"{label(metric)} (mean)")
    if threshold is not None and vmin <= threshold <= vmax:  # bold cells reach this line
        _colourbar_threshold(cb, threshold, threshold_label(metric, threshold) + " (bold)")
    if handles:  # below the panels, so it never meets the title
        fig.legend(handles=list(handles.values()), loc="outside lower center", fontsize=8,
                   frameon=False, ncol=min(len(handles), ncol))
    head = title or f"{label(metric)} over {label(x)} × {label(y)}"
    fig.suptitle("\n".join(textwrap.wrap(head, int(45 * npan + 15))), fontsize=12)
    return _laid_out(fig)


def _has_verdicts(df: pd.DataFrame) -> bool:
    """Whether any record carries an attribution verdict (design §7)."""
    return "verdict" in df and bool(df["verdict"].isin(list(VERDICT_MARKS)).any())


def _colourbar_threshold(cb, threshold: float, text: str) -> None:
    """A line across the colour bar at ``threshold``, labelled on its left side."""
    from matplotlib.transforms import blended_transform_factory

    cb.ax.axhline(threshold, color="black", linewidth=1.4)
    tr = blended_transform_factory(cb.ax.transAxes, cb.ax.transData)
    cb.ax.text(-0.25, threshold, text + " →", transform=tr, ha="right", va="center",
               fontsize=7.5)


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
    """{(y label, x label): (verdict, '✓ 3/3')} for the panel's cells with attribution
    verdicts. A cell whose only 'verdicts' are diverged runs keeps the † mark only when
    none of its runs finished: beside a finished run's mean it would read as the verdict
    of that run (an objective without verdicts, e.g. whitening, with one diverged seed)."""
    cv = cell_verdicts(sub, [x, y], grid)
    ok = ok_rows(sub)
    finished = set(zip(level_of(ok, y, grid), level_of(ok, x, grid))) if len(ok) else set()
    return {(r[y], r[x]): (r["verdict"], verdict_mark(r)) for _, r in cv.iterrows()
            if r["n_diverged"] < r["n"] or (r[y], r[x]) not in finished}


def _verdict_legend(drawn: set) -> dict:
    """Legend entries (text only) for the verdict marks drawn; empty when none is."""
    if not drawn:
        return {}
    return {f"verdict {v}": Patch(facecolor="none", edgecolor="none",
                                  label=f"{m} {VERDICT_NAMES[v]}")
            for v, m in VERDICT_MARKS.items() if v in drawn} | {
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
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
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
        ax.set_title(level_title(facet, flab), fontsize=10)
        if ax is not axes[0]:
            ax.set_ylabel("")
    if group or threshold is not None:
        axes[-1].legend(fontsize=8, loc="best", title_fontsize=8,
                        title=label(group) if group else None)
    fig.suptitle("\n".join(textwrap.wrap(title or f"{label(metric)} vs {label(x)}", 70)),
                 fontsize=12)
    return _laid_out(fig)


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
            head = [level_title(facet, flab), level_title(y, ylab)]
            ax.set_title("\n".join(h for h in head if h), fontsize=9)
            ax.grid(alpha=0.3)
            ax.set_xlabel("training step" if i == len(rows) - 1 else "")
            ax.set_ylabel(label(metric) if j == 0 else "")
    if group:
        axes[0][-1].legend(fontsize=7, loc="best", title=label(group), title_fontsize=7)
    fig.suptitle("\n".join(textwrap.wrap(title or f"{label(metric)} along training", 80)),
                 fontsize=11)
    return _laid_out(fig)


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
        ax.axhline(threshold, color="grey", ls=":", lw=1,
                   label=threshold_label(metric, threshold))
    if is_unit_metric(metric):
        lo, hi = ax.get_ylim()
        ax.set_ylim(min(lo, 0.0), max(hi, 1.02))
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(metric))
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
    for ax in axes[n:]:  # no empty panels
        fig.delaxes(ax)
    fig.suptitle(title or "h vs z after orthogonal (Procrustes) alignment", fontsize=12)
    return _laid_out(fig)


def cell_text(row: pd.Series, grid: dict) -> str:
    return ", ".join(f"{label(a)} = {row.get(f'cell.{a}', '?')}" for a in grid)


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
    ax.set_box_aspect(1)  # equal limits in a square box: equal scales, laid out up front
    ax.set_xlabel("zᵢ (centred)")
    ax.set_ylabel("(h Qᵀ)ᵢ")
    r2 = row.get("r2_hz")
    head = f"{cell_text(row, grid)} (seed {int(row['seed'])})"
    ax.set_title("\n".join(textwrap.wrap(head, 38)) + f"\n{label('r2_hz')} = {fmt(r2)}",
                 fontsize=8.5)
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
        axes[r, 0].set_ylabel(f"x(t+{r})" if r else "x(t)", fontsize=9)
    fig.suptitle(title or "example observations", fontsize=11)
    return _laid_out(fig)


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
    bar = SE_MULTIPLE * se
    hi = max((b + bar).max(), p.max()) * 1.8
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--", zorder=1)
    ax.errorbar(b, p, xerr=[np.minimum(bar, b * 0.9), bar], fmt="none",
                ecolor="0.6", elinewidth=0.7, alpha=0.6, zorder=1)
    for mask, mk, size in ((~bad, "o", 28), (bad, "X", 48)):
        for held, col in ((True, "tab:green"), (False, "tab:red")):
            m = mask & (holds == held)
            if m.any():
                ax.scatter(b[m], p[m], marker=mk, s=size, color=col, alpha=0.8,
                           edgecolor="black", lw=0.4, zorder=3)
    _log_axes(ax, lo, hi)
    ax.set_xlabel(f"bound  D + (ε + D)²  (bars: ±{SE_MULTIPLE:g} SE)")
    ax.set_ylabel(f"measured error  ({label('procrustes')})")
    fig.legend(handles=_bound_legend(bad.any()), fontsize=8, loc="outside lower center",
               ncol=2, frameon=False)
    ax.grid(alpha=0.3, which="major")
    k, n = int(holds.sum()), len(holds)
    fig.suptitle(title or "Theorem 3: measured error vs bound", fontsize=12)
    ax.set_title(f"bound holds in {k}/{n} runs ({100 * k / n:.0f}%)", fontsize=10)
    return _laid_out(fig)


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
                              label=f"{label('r2_hz')} < {BOUND_MARK_R2}"))
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
        ax.axvline(threshold, color="grey", ls=":", lw=1,
                   label=threshold_label(x, threshold))
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(metric))
    ax.grid(alpha=0.3)
    if group or threshold is not None:
        ax.legend(fontsize=8, loc="best", title=label(group) if group else None,
                  title_fontsize=8)
    fig.suptitle("\n".join(textwrap.wrap(title or f"{label(metric)} vs {label(x)}", 70)),
                 fontsize=12)
    return _laid_out(fig)


# ------------------------------------------------------------------ text overlap check
class OverlapWarning(UserWarning):
    """Two texts of a report figure are drawn over each other."""


def _figure_texts(fig: Figure) -> list[tuple[object, object]]:
    """(text, group) for every visible, non-empty text the figure draws: figure texts
    (suptitle), legend titles and entries, and per axes (colour bars included) the
    titles, axis labels, offset texts, drawn tick labels and annotations. ``group`` is
    the tick labels' Axis (tick labels of one axis share a group) or None."""
    out: list[tuple[object, object]] = [(t, None) for t in fig.texts]
    legends = list(fig.legends)
    for ax in fig.axes:
        out += [(t, None) for t in (ax.title, ax._left_title, ax._right_title)]
        out += [(t, None) for t in ax.texts]
        for axis in (ax.xaxis, ax.yaxis):
            out += [(axis.label, None), (axis.get_offset_text(), None)]
            # numbers spaced by matplotlib's locator share a group; level names the
            # plot placed itself (a fixed locator) are checked against each other too
            group = None if _fixed_ticks(axis) else axis
            for tick in axis._update_ticks():  # the ticks drawn (inside the view limits)
                out += [(tick.label1, group), (tick.label2, group)]
        if ax.get_legend() is not None:
            legends.append(ax.get_legend())
    for leg in legends:
        if leg.get_visible():
            out += [(leg.get_title(), None)] + [(t, None) for t in leg.get_texts()]
    return [(t, g) for t, g in out
            if t.get_visible() and t.get_text().strip()
            and (t.axes is None or t.axes.get_visible())]


def text_overlaps(fig: Figure, tol: float = 0.5) -> list[tuple[object, object]]:
    """Pairs (a, b) of the figure's visible texts whose drawn boxes intersect by more
    than ``tol`` pixels in both directions, after drawing the figure.

    Checked: titles, suptitle, axis and colour-bar labels, tick labels, legend titles and
    entries, annotations (:func:`_figure_texts`). Not counted: a text with itself, and
    two numeric tick labels of the same axis (matplotlib's locator owns their spacing; a
    crowded number axis is a tick-density matter, not a layout collision). Level names
    the plot put on an axis itself (a fixed locator: heatmap cells, categorical lines)
    do count against each other, as does a tick label against any other text or a tick
    label of another axis.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    items = []
    for t, group in _figure_texts(fig):
        bb = t.get_window_extent(renderer)
        if bb.width > 0 and bb.height > 0 and np.all(np.isfinite(bb.extents)):
            items.append((t, group, bb))
    pairs = []
    for i, (a, ga, ba) in enumerate(items):
        for b, gb, bb in items[i + 1:]:
            if a is b or (ga is not None and ga is gb):
                continue
            if _boxes_meet(a, ba, b, bb, tol):
                pairs.append((a, b))
    return pairs


def _boxes_meet(a, ba, b, bb, tol: float) -> bool:
    """Whether two drawn texts intersect. Texts slanted by the same angle (slanted level
    names) are compared in their own frame: the axis-aligned boxes of two parallel
    slanted labels meet long before the labels do. Otherwise the drawn (axis-aligned)
    boxes are compared, which is exact for upright and vertical text."""
    w = min(ba.x1, bb.x1) - max(ba.x0, bb.x0)
    h = min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
    if w <= tol or h <= tol:
        return False
    th = math.radians(a.get_rotation() % 180)
    if a.get_rotation() != b.get_rotation() or abs(math.cos(2 * th)) < 0.3:
        return True  # upright, vertical, mixed or near 45°: the drawn boxes decide
    c, s = abs(math.cos(th)), abs(math.sin(th))

    def own(box):  # width and height of the slanted text from its drawn box
        d = c * c - s * s
        return (box.width * c - box.height * s) / d, (box.height * c - box.width * s) / d

    (wa, ha), (wb, hb) = own(ba), own(bb)
    dx = (bb.x0 + bb.x1 - ba.x0 - ba.x1) / 2
    dy = (bb.y0 + bb.y1 - ba.y0 - ba.y1) / 2
    cs, sn = math.cos(th), math.sin(th)
    along, across = dx * cs + dy * sn, -dx * sn + dy * cs
    return (abs(along) < (wa + wb) / 2 - tol) and (abs(across) < (ha + hb) / 2 - tol)


def describe_overlaps(pairs) -> str:
    """'"a" × "b"; …' for messages and test failures."""
    return "; ".join(f"{a.get_text()!r} × {b.get_text()!r}" for a, b in pairs)
