"""Sweep reports: a flat results table, figures and a README generated from the numbers.

``load_records(DIR)`` flattens a sweep directory's records into one DataFrame row per
record (reading only: the sweep directory may be read-only); ``write_report(DIR,
reports_root)`` renders the spec's plots into ``<reports_root>/<name>/`` with one
paragraph per figure and ``results.csv``, computed from the same table (nothing in the
text is hard-coded); ``write_index`` links every report.

Only finished (``ok``) runs enter means and rates; diverged runs are counted and named.
Output never leaves ``reports_root``: the report folder is the spec name, which must
match ``^[A-Za-z0-9][A-Za-z0-9_-]*$``.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from identlab.core import seeding
from identlab.core.fmt import fmt, mean_std
from identlab.core.io import (
    NAME_RE,
    UsageError,
    ensure_writable_dir,
    read_json,
    refuse_empty_path,
    write_bytes_atomic,
)
from identlab.core.schema import ConfigError, short, value_label
from identlab.measure.stats import (
    TABLE_METRICS,
    VERDICT_MARKS,
    VERDICT_NAMES,
    axis_levels,
    bound_counts,
    bound_counts_text,
    bound_error,
    bound_rows,
    cell_stats,
    cell_verdicts,
    level_of,
    ok_rows,
    row_verdicts,
    seed_std,
)
from identlab.measure.thresholds import BOUND_MARK_R2, DEFAULT_PLOT_THRESHOLD, SE_MULTIPLE
from identlab.record import Record
from identlab.show import plots
from identlab.show.plots import is_unit_metric, short_axis
from identlab.show.stability import describe_trajectory, stability_section
from identlab.sweep.store import Store

__all__ = ["load_records", "records_frame", "write_report", "write_index", "report_dir",
           "train_seconds", "spec_report_name",
           "describe_heatmap", "describe_line", "describe_scatter", "describe_bound",
           "describe_versus",
           "cell_table", "plot_id", "TABLE_METRICS", "DEFAULT_THRESHOLD"]

# shown where runs planned (the plan_success keys only where the world has a reach task)
PLAN_TABLE_METRICS = ("plan_regret", "plan_interp_ratio", "plan_success", "plan_success_cem",
                      "plan_success_z", "plan_success_random")
# shown where records carry attribution keys (design §7), with a verdict column
ATTRIBUTION_TABLE_METRICS = ("r2_target", "r2_hz_gauss", "loss_learned", "loss_rotation",
                             "loss_alternative")
DEFAULT_THRESHOLD = DEFAULT_PLOT_THRESHOLD  # see measure/thresholds.py
INDEX_STATE = "index.json"  # wall times behind the index, merged across commands
FIGURE_RE = re.compile(r"^\d{2}-[A-Za-z0-9_-]+\.(png|svg)$")


# ------------------------------------------------------------------ flattening
def _flatten(obj, prefix: str, out: dict) -> None:
    """Dotted leaves of nested dicts; lists of scalars become ``key[i]`` plus a joined
    ``key`` string, other lists a JSON string."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(obj, (list, tuple)):
        if all(_scalar(v) for v in obj):
            out[prefix] = ";".join(_join_item(v) for v in obj)
            for i, v in enumerate(obj):
                out[f"{prefix}[{i}]"] = v
        else:
            out[prefix] = json.dumps(obj, separators=(",", ":"))
    else:
        out[prefix] = obj


def _scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _join_item(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _axis_columns(values: dict, labels: dict) -> dict:
    """``cell.<axis>`` labels, ``<axis>`` raw values (mappings/lists as their labels) and
    ``<axis>[i]`` for list values."""
    out = {}
    for axis, label in labels.items():
        out[f"cell.{axis}"] = label
    for axis, v in values.items():
        if isinstance(v, list):
            out[axis] = labels.get(axis, json.dumps(v))
            for i, x in enumerate(v):
                out[f"{axis}[{i}]"] = x
        elif isinstance(v, dict):
            out[axis] = labels.get(axis, json.dumps(v, sort_keys=True))
        else:
            out[axis] = v
    return out


def _metric_columns(metrics: dict) -> dict:
    out = {}
    for k, v in (metrics or {}).items():
        if isinstance(v, (list, tuple)):
            out[k] = ";".join(_join_item(x) for x in v if _scalar(x))
        elif _scalar(v):
            out[k] = v
    return out


def record_row(rec: Record) -> dict:
    """One flat row of a record (see :func:`load_records` for the columns)."""
    sweep = rec.sweep or {}
    prov = rec.provenance
    row = {"hash": rec.hash, "seed": rec.seed, "status": rec.status,
           "diverged_at": rec.diverged_at, "theorem_applies": rec.theorem_applies,
           "cell_index": sweep.get("cell_index")}
    for k, v in rec.flags.items():
        row[f"flag.{k}"] = v
    row.update(_axis_columns(sweep.get("values") or {}, sweep.get("cell") or {}))
    cfg: dict = {}
    _flatten(rec.config, "", cfg)
    row.update({f"cfg.{k}": v for k, v in cfg.items()})
    row.update(_metric_columns(rec.metrics))
    row["final_loss"] = rec.final_loss
    for k in ("wall_s", "train_s", "steps_per_s", "group_size", "device"):
        row[k] = prov.get(k)
    row["reasons"] = "; ".join(rec.reasons)
    row["has_sample"] = rec.sample is not None
    return row


BOOL_COLUMNS = ("theorem_applies", "bound_holds", "has_sample", "h_finite")


def records_frame(records: list) -> pd.DataFrame:
    """DataFrame of flat rows (one per :class:`Record` or record JSON object), ordered by
    cell then seed; booleans as nullable bools."""
    df = pd.DataFrame([record_row(r if isinstance(r, Record) else Record.from_json(r))
                       for r in records])
    if not len(df):
        return pd.DataFrame(columns=["hash", "seed", "status", "diverged_at",
                                     "theorem_applies", "cell_index"])
    for col in [c for c in df if c in BOOL_COLUMNS or c.startswith("flag.")]:
        df[col] = df[col].astype("boolean")
    df = df.sort_values(["cell_index", "seed"], na_position="last", kind="stable")
    return df.reset_index(drop=True)


def _sweep_records(sweep_dir: Path, spec: dict | None = None) -> list[dict]:
    """The directory's records that belong to its current spec: those whose config hash
    the spec planned (records of an earlier version of the spec are left out), or, for a
    spec without a plan, those carrying its name (all of them without a spec)."""
    spec = read_json(sweep_dir / "spec.json") if spec is None else spec
    recs = Store(sweep_dir).records()
    if not isinstance(spec, dict):
        return recs
    planned = spec.get("planned")
    if planned is not None:
        keep = set(planned)
        cells = spec.get("cells") or {}
        # a record reused by a resume with a changed spec carries the old spec's cell:
        # its cell comes from the current spec, by hash
        return [{**r, "sweep": cells[r["hash"]]} if r["hash"] in cells else r
                for r in recs if r.get("hash") in keep]
    return [r for r in recs if (r.get("sweep") or {}).get("name") == spec.get("name")]


def load_records(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per record of the sweep in ``sweep_dir`` (read only: the sweep directory
    may be read-only or archived; :func:`write_report` writes ``results.csv`` next to the
    report).

    Columns: ``hash, seed, status, diverged_at, theorem_applies, cell_index``,
    ``flag.<name>``, ``cell.<axis>`` (labels), ``<axis>`` (raw values; mappings and lists
    as labels) and ``<axis>[i]`` for list values, ``cfg.<dotted.key>`` for every config
    leaf, every scalar metric by name (list metrics joined with ';'), ``final_loss``,
    ``wall_s``, ``train_s``, ``steps_per_s``, ``group_size``, ``device``, ``reasons``,
    ``has_sample``.
    """
    return records_frame(_sweep_records(Path(sweep_dir)))


# ------------------------------------------------------------------ safe output paths
def report_dir(reports_root: str | Path, name) -> Path:
    """``reports_root/name``, refusing names that could leave the root (and an empty
    root, which would mean the current folder)."""
    refuse_empty_path(reports_root, "--reports")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError("spec.name", f"= {name!r}: a report name must match "
                          f"{NAME_RE.pattern} (it names a folder under the reports root)")
    root = Path(reports_root).resolve()
    out = (root / name).resolve()
    if out.parent != root:
        raise ConfigError("spec.name", f"= {name!r}: resolves outside {str(root)!r}")
    return out


def spec_report_name(spec: dict) -> str:
    """Report folder of a sweep directory's spec.json (``<name>`` or ``<name>-<preset>``)."""
    from identlab.sweep.spec import report_name

    return report_name(spec.get("name"), spec.get("preset"))


def _write_text(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


# ------------------------------------------------------------------ numbers for the text
def _ms(mean, std, n: int = 2) -> str:
    """``mean ± std`` (:func:`identlab.core.fmt.mean_std`); the mean alone for one run."""
    return mean_std(mean, std, n)


def _row_ms(row: pd.Series) -> str:
    return _ms(row["mean"], row["std"], int(row["n"]))


def _divergence(df: pd.DataFrame) -> str:
    n = len(df)
    d = int((df["status"] == "diverged").sum()) if "status" in df else 0
    if not n:
        return "No records."
    if not d:
        return f"All {n} runs finished (none diverged)."
    return (f"Diverged: {d} of {n} runs, excluded from the means "
            f"(cells: {', '.join(_diverged_cells(df))}).")


def _diverged_cells(df: pd.DataFrame) -> list[str]:
    rows = df[df["status"] == "diverged"]
    axes = [c[5:] for c in df if c.startswith("cell.")]
    labels = rows.apply(lambda r: ", ".join(f"{short_axis(a)}={r[f'cell.{a}']}"
                                            for a in axes), axis=1)
    return list(dict.fromkeys(labels)) if len(rows) else []


def _pooled(axes_used: list[str], grid: dict) -> str:
    base = {a.split("[")[0] for a in axes_used if a}
    rest = [a for a in grid if a not in base]
    return f" Pooled over {', '.join(rest)}." if rest else ""


def _theorem_by_cell(df: pd.DataFrame, keys: list[str], grid: dict) -> pd.DataFrame:
    """Per (keys) cell: the theorem's target shared by every record ('z', 'u' or 'no'),
    or 'mixed'; records without targets give 'yes'/'no' from theorem_applies."""
    frame = pd.DataFrame({k: level_of(df, k, grid) for k in keys})
    if "theorem_target" in df:
        frame["t"] = df["theorem_target"].map(
            lambda v: "no" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    else:
        applies = df["theorem_applies"].astype("boolean").fillna(False).astype(bool)
        frame["t"] = np.where(applies, "yes", "no")
    out = frame.groupby(keys, sort=False)["t"].agg(
        lambda v: v.iloc[0] if v.nunique() == 1 else "mixed").reset_index()
    return out.rename(columns={"t": "theorem"})[keys + ["theorem"]]


def heatmap_cells(df: pd.DataFrame, grid: dict, metric: str, x: str, y: str,
                  facet: str | None = None) -> pd.DataFrame:
    """Cell statistics behind a heatmap (mean, std, n, theorem) over (facet, x, y)."""
    keys = [k for k in (facet, x, y) if k]
    st = cell_stats(df, metric, keys, grid)
    if "theorem_applies" in df and len(st):
        st = st.merge(_theorem_by_cell(df, keys, grid), on=keys, how="left")
    return st


def _where(row: pd.Series, keys: list[str]) -> str:
    return ", ".join(f"{short_axis(k)}={row[k]}" for k in keys)


def describe_heatmap(df: pd.DataFrame, grid: dict, p: dict) -> str:
    """One paragraph: extremes (mean ± seed std), threshold counts split by whether the
    theorem applies, the trend along each axis, the ρ² boundary, divergences."""
    metric, x, y, facet = p.get("metric") or "r2_hz", p["x"], p["y"], p.get("facet")
    keys = [k for k in (facet, x, y) if k]
    st = heatmap_cells(df, grid, metric, x, y, facet)
    n_seeds = df["seed"].nunique() if len(df) else 0
    parts = [f"Each cell shows the mean ± std of {metric} over its finished runs "
             f"({n_seeds} seed(s); {len(st)} cells with finished runs) on {x} × {y}"
             + (f", one panel per {facet}." if facet else ".") + _pooled(keys, grid)]
    if len(st):
        hi, lo = st.loc[st["mean"].idxmax()], st.loc[st["mean"].idxmin()]
        parts.append(f"Highest: {_row_ms(hi)} at {_where(hi, keys)}; "
                     f"lowest: {_row_ms(lo)} at {_where(lo, keys)}.")
        parts.append(_threshold_text(st, metric, p.get("threshold")))
        parts.append(_trend_text(df, grid, metric, [x, y]))
        if p.get("overlay") == "rho_sq":
            parts.append(_rho_sq_text(df, grid, metric, x, y))
    parts.append(verdict_text(df, grid, keys))
    parts.append(_divergence(df))
    return " ".join(s for s in parts if s)


def verdict_text(df: pd.DataFrame, grid: dict, keys: list[str]) -> str:
    """The attribution classes (design §7) of the cells over ``keys``, with numbers: how
    many cells each majority class has, then for every cell whose majority is not
    ``recovered`` its counts and the expected training losses J (means over seeds) of
    the learned h, the best scaled rotation and the Gaussianized latent Φ⁻¹(F(z)), and
    λ* where the learned h and the rotation cost the same. Empty without verdicts."""
    cv = cell_verdicts(df, keys, grid)
    if not len(cv):
        return ""
    tally = cv["verdict"].value_counts()
    marks = " ".join(VERDICT_MARKS.values())
    head = (f"Attribution (majority verdict over seeds; {marks} on the figure): "
            + ", ".join(f"{VERDICT_NAMES[v]} {VERDICT_MARKS[v]} in {int(tally[v])}/{len(cv)} "
                        "cells" for v in VERDICT_MARKS if v in tally) + ".")
    fails = [_verdict_cell(r, keys) for _, r in cv.iterrows() if r["verdict"] != "recovered"]
    return " ".join([head, *fails])


def _verdict_cell(r: pd.Series, keys: list[str]) -> str:
    """One failing cell: '<where> fails: optimizer gap in 3/3 seeds; J learned 0.331 vs
    best rotation 0.222 vs the alternative 0.23 (λ·M 51, λ* 0.013).'"""
    counts = "; ".join(f"{VERDICT_NAMES[v]} in {int(r[f'n_{v}'])}/{int(r['n'])} seeds"
                       for v in VERDICT_MARKS if r[f"n_{v}"])
    where = _where(r, keys)
    if r["verdict"] == "diverged":
        return f"{where}: {counts}."
    losses = (f"J learned {fmt(r['loss_learned'], 3)} vs best rotation "
              f"{fmt(r['loss_rotation'], 3)} vs the alternative {fmt(r['loss_alternative'], 3)}")
    extra = [f"λ·M {fmt(r['lam_effective'], 3)}"] if np.isfinite(r["lam_effective"]) else []
    if np.isfinite(r["lam_star"]):
        extra.append(f"λ* {fmt(r['lam_star'], 2)}")
    return f"{where} fails: {counts}; {losses}" + (f" ({', '.join(extra)})." if extra else ".")


def _threshold_text(st: pd.DataFrame, metric: str, threshold, unit: str = "cells") -> str:
    """How many cells (rows of ``st``) have a mean at or above the threshold, split by
    whether the theorem applies when ``st`` says so."""
    thr = threshold if threshold is not None else (
        DEFAULT_THRESHOLD if is_unit_metric(metric) else None)
    if thr is None:
        return ""
    above = st["mean"] >= thr
    if "theorem" not in st:
        return f"Mean {metric} ≥ {fmt(thr)} at {int(above.sum())}/{len(st)} {unit}."
    bits = []
    for key, what in (("z", "where the theorem applies in z"),
                      ("u", "where it applies in u = Φ⁻¹(F(z))"),
                      ("yes", "where the theorem applies"), ("no", "where it does not"),
                      ("mixed", "with mixed assumptions")):
        m = st["theorem"] == key
        if m.any():
            bits.append(f"{int((above & m).sum())}/{int(m.sum())} {unit} {what}")
    return f"Mean {metric} ≥ {fmt(thr)} in " + "; ".join(bits) + "."


def _trend_text(df: pd.DataFrame, grid: dict, metric: str, axes: list[str]) -> str:
    """Mean ± std at the first and last level of each axis, pooled over the others."""
    bits = []
    for axis in axes:
        st = cell_stats(df, metric, [axis], grid)
        levels = [lv for lv in axis_levels(df, axis, grid) if lv in set(st[axis])]
        if len(levels) < 2:
            continue
        first = st[st[axis] == levels[0]].iloc[0]
        last = st[st[axis] == levels[-1]].iloc[0]
        name = short_axis(axis)
        bits.append(f"from {_row_ms(first)} at {name}={levels[0]} to "
                    f"{_row_ms(last)} at {name}={levels[-1]}")
    if not bits:
        return ""
    return f"Pooling everything else, {metric} goes " + ", and ".join(bits) + "."


def beyond_rho_sq(df: pd.DataFrame, x: str, y: str) -> pd.Series:
    """Per row: True where max(ρx, ρy)² > min(ρx, ρy) (whitening predicted to fail)."""
    a = pd.to_numeric(df[x], errors="coerce")
    b = pd.to_numeric(df[y], errors="coerce")
    return np.maximum(a, b) ** 2 > np.minimum(a, b)


def _rho_sq_text(df: pd.DataFrame, grid: dict, metric: str, x: str, y: str) -> str:
    """Mean ± std of the metric over runs beyond vs inside the curve ρ_max² = ρ_min."""
    if x not in df or y not in df:
        return ""
    rows = ok_rows(df)
    beyond = beyond_rho_sq(rows, x, y).to_numpy(bool)
    vals = pd.to_numeric(rows[metric], errors="coerce").dropna()
    bits = []
    for mask, where in ((beyond, "Beyond the curve ρ_max² = ρ_min"), (~beyond, "inside it")):
        n_cells = rows.loc[mask, "cell_index"].nunique()
        v = vals[vals.index.isin(rows.index[mask])]
        bits.append(f"{where} ({n_cells} cells) the mean {metric} is "
                    f"{_ms(v.mean(), seed_std(v), len(v))}")
    return "; ".join(bits) + "."


def describe_line(df: pd.DataFrame, grid: dict, p: dict) -> str:
    """One paragraph: per group, the metric at the first and last x and its best x."""
    metric, x, group = p.get("metric") or "r2_hz", p["x"], p.get("group")
    keys = [k for k in (group, x) if k]
    st = cell_stats(df, metric, keys, grid)
    xl = axis_levels(df, x, grid)
    parts = [f"{metric} against {x} (mean ± std over runs; dots are single runs)"
             + (f", one line per {group}." if group else ".") + _pooled(
                 keys + [p.get("facet")], grid)]
    groups = axis_levels(df, group, grid) if group else [None]
    for g in groups:
        sub = st if g is None else st[st[group] == g]
        sub = sub.assign(o=sub[x].map({lv: i for i, lv in enumerate(xl)})).sort_values("o")
        if not len(sub):
            continue
        a, b, best = sub.iloc[0], sub.iloc[-1], sub.loc[sub["mean"].idxmax()]
        who = f"For {short_axis(group)}={g}, " if g is not None else ""
        parts.append(f"{who}{metric} is {_row_ms(a)} at {short_axis(x)}="
                     f"{a[x]} and {_row_ms(b)} at {short_axis(x)}={b[x]} "
                     f"(best {fmt(best['mean'])} at {best[x]}).")
    if p.get("threshold") is not None:
        parts.append(_threshold_text(st, metric, p["threshold"], "points"))
    parts.append(_divergence(df))
    return " ".join(s for s in parts if s)


def describe_versus(df: pd.DataFrame, grid: dict, p: dict) -> str:
    """One paragraph: median and 90th percentile of the metric over recovered runs
    (r2_hz ≥ the threshold, DEFAULT_THRESHOLD when the plot names none) and over failed
    ones, and the Spearman rank correlation (with its two-sided p-value) of the metric
    with the plot's x and with r2_hz and orth_err: pooled, among recovered runs only,
    and among the recovered runs of each level of the plot's ``group``."""
    metric, x = p.get("metric") or "r2_hz", p["x"]
    rows = ok_rows(df)
    if metric not in rows:
        return f"No {metric} in these records. " + _divergence(df)
    y = pd.to_numeric(rows[metric], errors="coerce")
    parts = [f"{metric} against {x}, one dot per run."]
    if "r2_hz" in rows:
        thr = p.get("threshold") if x == "r2_hz" and p.get("threshold") is not None \
            else DEFAULT_THRESHOLD
        good = pd.to_numeric(rows["r2_hz"], errors="coerce") >= thr
        parts.append(f"Recovered runs (r2_hz ≥ {fmt(thr)}): {_median_p90(y[good])}; "
                     f"failed runs: {_median_p90(y[~good])}.")
    cols = [c for c in dict.fromkeys([x, "r2_hz", "orth_err"]) if c in rows]
    corr = [_spearman_text(y, rows, c, metric) for c in cols]
    parts.append("Pooled over all runs: " + " ".join(c for c in corr if c) if any(corr) else "")
    if "r2_hz" in rows:
        # a pooled correlation is mostly between kinds of world (recovered against not);
        # whether the metric tracks the distance from a rotation shows among recovered
        # encoders, within each group level
        within = [_spearman_text(y[good], rows[good], c, metric) for c in cols]
        if any(within):
            parts.append("Among recovered runs only: " + " ".join(w for w in within if w))
        group = p.get("group")
        if group and f"cell.{group}" in rows:
            for level, sub in rows[good].groupby(f"cell.{group}", sort=False):
                texts = [_spearman_text(y[sub.index], sub, c, metric) for c in cols]
                if any(texts):
                    parts.append(f"Recovered, {short_axis(group)}={level}: "
                                 + " ".join(t for t in texts if t))
    parts.append(_divergence(df))
    return " ".join(s for s in parts if s)


def _median_p90(v: pd.Series) -> str:
    v = v.dropna()
    if not len(v):
        return "none"
    return f"median {fmt(v.median())}, p90 {fmt(v.quantile(0.9))} (n = {len(v)})"


def _spearman_text(y: pd.Series, rows: pd.DataFrame, col: str, metric: str) -> str:
    """Spearman ρ of ``metric`` with column ``col`` over runs where both are finite."""
    from scipy.stats import spearmanr

    x = pd.to_numeric(rows[col], errors="coerce")
    keep = np.isfinite(x.to_numpy(float)) & np.isfinite(y.to_numpy(float))
    if keep.sum() < 3:
        return ""
    res = spearmanr(x[keep], y[keep])
    return (f"Spearman ρ({metric}, {col}) = {fmt(res.statistic, 2)} "
            f"(p = {fmt(res.pvalue, 2)}, n = {int(keep.sum())}).")


def describe_scatter(df: pd.DataFrame, grid: dict, samples: dict) -> str:
    """One paragraph: which cells are shown and their r2_hz."""
    shown = plots.scatter_cells(df[df["hash"].isin(list(samples))] if len(df) else df)
    if not len(shown):
        return ("No 2-D samples are stored (the world is not 2-D, or every run diverged), "
                "so there is no scatter. " + _divergence(df))
    cells = "; ".join(f"{plots.cell_text(r, grid)} (seed {int(r['seed'])}): r2_hz "
                      f"{fmt(r.get('r2_hz'))}" for _, r in shown.iterrows())
    n_cells = df["cell_index"].nunique()
    return (f"Points of h after the best orthogonal map onto z, against z, per dimension, "
            f"for {len(shown)} of {n_cells} cells (smallest seed): {cells}. Points on the "
            f"dashed diagonal mean h is a rotation of z; curves or blobs mean it is not. "
            + _divergence(df))


def describe_bound(df: pd.DataFrame) -> str:
    """One paragraph: how often the bound holds, slack, and the unrecovered runs."""
    rows = bound_rows(df)
    n_ok = len(ok_rows(df))
    if not len(rows):
        return (f"None of the {n_ok} finished runs has a positive Theorem-3 bound (it is "
                "computed for Gaussian OU worlds only), so there is nothing to compare. "
                + _divergence(df))
    holds = rows["bound_holds"].astype("boolean").fillna(False).astype(bool)
    ratio = bound_error(rows) / pd.to_numeric(rows["bound"])
    r2 = pd.to_numeric(rows.get("r2_hz"), errors="coerce")
    bad = r2.fillna(-np.inf) < BOUND_MARK_R2
    n = len(rows)
    text = (f"{n} of {n_ok} finished runs have a positive bound. The bound (Procrustes "
            f"error against the theorem's target ≤ bound + {SE_MULTIPLE:g} SE of both "
            f"estimates) "
            f"{bound_counts_text(bound_counts(rows))}: a bound at or above a constant "
            f"embedding's error cannot fail, so only the informative ones test it. The median "
            f"ratio procrustes / bound is {fmt(ratio.median())} (range {fmt(ratio.min())}"
            f"–{fmt(ratio.max())}). {int(bad.sum())} runs have r2_hz < "
            f"{BOUND_MARK_R2} (marked ✕)")
    if bad.any():
        text += f"; the bound holds in {int(holds[bad].sum())}/{int(bad.sum())} of them"
    return text + ". " + _divergence(df)


# ------------------------------------------------------------------ cell table
def cell_table(df: pd.DataFrame, grid: dict) -> str:
    """Markdown table: one row per cell, mean ± std of the key metrics, bound rate."""
    if not len(df):
        return "_No records._"
    axes = [a for a in grid if f"cell.{a}" in df]
    metrics = [m for m in TABLE_METRICS + PLAN_TABLE_METRICS + ATTRIBUTION_TABLE_METRICS
               if m in df]
    head = [short_axis(a) for a in axes] + ["runs ok", "theorem"] + metrics
    has_bound = "bound_holds" in df and df["bound_holds"].notna().any()
    if has_bound:
        head.append("bound holds (informative)")
    has_verdict = "verdict" in df and df["verdict"].notna().any()
    if has_verdict:
        head.append("verdict")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, cell in df.groupby("cell_index", sort=True):
        ok = ok_rows(cell)
        row = [_md(cell[f"cell.{a}"].iloc[0]) for a in axes]
        row.append(f"{len(ok)}/{len(cell)}")
        row.append(_target_label(cell))
        for m in metrics:
            v = pd.to_numeric(ok[m], errors="coerce").dropna()
            row.append(_ms(v.mean(), seed_std(v), len(v)) if len(v) else "n/a")
        if has_bound:
            c = bound_counts(ok)
            info = "" if c["informative"] is None else \
                f" ({c['informative_holds']}/{c['informative']})"
            row.append(f"{c['holds']}/{c['checked']}{info}" if c["checked"] else "n/a")
        if has_verdict:
            row.append(_verdict_counts(cell))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


_THEOREM_NOTE = (" `theorem` names the variable the theorem is about: z when z is Gaussian, "
                 "stationary and additive; u = Φ⁻¹(F(z)) for a copula OU, which is Gaussian "
                 "OU in u; no when no componentwise reparametrization is Gaussian OU (the "
                 "world tests the converse); `yes` in records older than the targets. "
                 "`r2_target` is R² against it.")
_VERDICT_NOTE = (" `loss_*` are the expected training losses "
                 "J (design §7) of the learned h, the best scaled rotation of the target "
                 "(z where there is none) and the alternative (Φ⁻¹(F(z)), or z for a u "
                 "target); `verdict` counts the attribution classes over the cell's runs: "
                 + ", ".join(f"{m} {VERDICT_NAMES[v]}" for v, m in VERDICT_MARKS.items())
                 + ". `bound holds (informative)`: runs where the bound holds, and in "
                   "brackets among the runs whose bound is below a constant embedding's "
                   "error.")


def _target_label(cell: pd.DataFrame) -> str:
    """The cell's theorem target: 'z', 'u', 'no', or 'mixed'."""
    if "theorem_target" in cell:
        t = {("no" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
             for v in cell["theorem_target"]}
        return t.pop() if len(t) == 1 else "mixed"
    a = cell["theorem_applies"].astype("boolean").fillna(False).astype(bool)
    return "yes" if a.all() else ("mixed" if a.any() else "no")


def _verdict_counts(cell: pd.DataFrame) -> str:
    """'✗ 2/3, ⚙✗ 1/3': every attribution class of the cell's runs with its count."""
    v = row_verdicts(cell).dropna()
    counts = v.value_counts()
    return ", ".join(f"{VERDICT_MARKS[c]} {int(counts[c])}/{len(v)}" for c in VERDICT_MARKS
                     if c in counts) or "n/a"


def _md(s) -> str:
    return str(s).replace("|", "\\|")


# ------------------------------------------------------------------ the report
def plot_id(i: int, p: dict) -> str:
    """File stem of the i-th plot, e.g. ``01-heatmap-r2_hz``."""
    what = {"scatter": "h-vs-z", "bound": "bound", "frames": "examples"}.get(
        p["kind"], p.get("metric") or "r2_hz")
    return f"{i + 1:02d}-{p['kind']}-" + re.sub(r"[^A-Za-z0-9_-]", "_", str(what))


def _render(p: dict, df: pd.DataFrame, grid: dict, samples: dict, base: dict | None = None):
    """(figure, paragraph, default title) for one plot spec (``base``: the spec's base
    run config, for plots that show the world itself)."""
    kind, metric = p["kind"], p.get("metric") or "r2_hz"
    if not len(ok_rows(df)):
        from matplotlib.figure import Figure

        fig = plots.message_figure(Figure(figsize=(6, 3)), "no finished runs yet")
        return fig, "No finished runs to show. " + _divergence(df), f"{kind} of {metric}"
    if kind == "heatmap":
        fig = plots.heatmap(df, grid, metric=metric, x=p["x"], y=p["y"], facet=p.get("facet"),
                            overlay=p.get("overlay"), title=p.get("title"),
                            threshold=p.get("threshold"))
        return fig, describe_heatmap(df, grid, p), f"{metric} over {p['x']} × {p['y']}"
    if kind == "line":
        fig = plots.line(df, grid, metric=metric, x=p["x"], group=p.get("group"),
                         facet=p.get("facet"), title=p.get("title"),
                         threshold=p.get("threshold"))
        return fig, describe_line(df, grid, p), f"{metric} vs {p['x']}"
    if kind == "scatter":
        fig = plots.scatter(df, samples, grid, title=p.get("title"))
        return fig, describe_scatter(df, grid, samples), "h vs z after orthogonal alignment"
    if kind == "bound":
        fig = plots.bound(df, title=p.get("title"))
        return fig, describe_bound(df), "measured error vs the Theorem-3 bound"
    if kind == "versus":
        fig = plots.versus(df, grid, metric=metric, x=p["x"], group=p.get("group"),
                           title=p.get("title"), threshold=p.get("threshold"))
        return fig, describe_versus(df, grid, p), f"{metric} vs {p['x']}"
    if kind == "frames":
        return _example_frames(p, base)
    if kind == "trajectory":
        fig = plots.trajectory(df, grid, metric=metric, group=p.get("group"),
                               facet=p.get("facet"), y=p.get("y"), title=p.get("title"))
        return fig, describe_trajectory(df, grid, p), f"{metric} along training"
    raise ConfigError("spec.plots", f"kind = {kind!r}: one of heatmap, line, scatter, bound, "
                      "frames, versus, trajectory")


EXAMPLE_PAIRS = 6


def _example_frames(p: dict, base: dict | None):
    """Observations of the base world: EXAMPLE_PAIRS pairs (x_t above x_t+1) drawn from
    the world's dynamics with the ``examples`` stream of the base seed."""
    from matplotlib.figure import Figure

    from identlab.config import load_run
    from identlab.world.world import World

    cfg = load_run(base or {})
    world = World(cfg.world, cfg.seed)
    default = "example observations"
    if not world.mixer.rendered:
        msg = f"the {cfg.world.mixer.kind!r} mixer gives vectors, not images"
        return plots.message_figure(Figure(figsize=(6, 3)), msg), msg + ".", default
    z_t, z_t1 = world.sample_pairs(EXAMPLE_PAIRS, seeding.rng(cfg.seed, "examples"))
    try:
        x = np.concatenate([world.mixer.forward(z_t), world.mixer.forward(z_t1)])
    except ConfigError as e:
        msg = f"cannot render example frames: {e}"
        return plots.message_figure(Figure(figsize=(6, 3)), msg), msg + ".", default
    fig = plots.frames(np.asarray(x).reshape(2, EXAMPLE_PAIRS, *np.shape(x)[1:]),
                       np.stack([z_t, z_t1]), title=p.get("title"))
    para = (f"{EXAMPLE_PAIRS} pairs (x_t, x_t+1) of the base world "
            f"(`{cfg.world.mixer.kind}` mixer, `{cfg.world.latent.kind}` latents, "
            f"`{cfg.world.dynamics.kind}` dynamics), one transition apart, with their "
            "latents z above each frame. These are the encoder's only input.")
    return fig, para, default


def _run_counts(df: pd.DataFrame, spec: dict, summary: dict | None) -> str:
    n_cells = int(np.prod([len(v) for v in _zipped_grid_sizes(spec)])) if spec.get(
        "grid") else 0
    seeds = len(spec.get("seeds") or [])
    ok = int((df["status"] == "ok").sum()) if len(df) else 0
    div = int((df["status"] == "diverged").sum()) if len(df) else 0
    train = train_seconds(df)
    text = (f"**Runs:** {len(df)} records ({ok} ok, {div} diverged) of {n_cells * seeds} "
            f"planned ({n_cells} cells × {seeds} seed(s)). **Training time:** {train:.1f} s "
            "(batched programs, each counted once)")
    if summary and summary.get("wall_s") is not None:
        text += (f"; last sweep invocation: {summary['wall_s']} s wall, "
                 f"{summary.get('trained', '?')} trained, {summary.get('skipped', '?')} reused")
    return text + "."


def _zipped_grid_sizes(spec: dict) -> list[list]:
    zipped = [list(z) for z in spec.get("zip") or []]
    inz = {k for z in zipped for k in z}
    sizes = [spec["grid"][z[0]] for z in zipped]
    sizes += [v for k, v in spec["grid"].items() if k not in inz]
    return sizes


def train_seconds(df: pd.DataFrame) -> float:
    """Sum over records of train_s / group_size: each batched program counted once."""
    if "train_s" not in df or not len(df):
        return 0.0
    t = pd.to_numeric(df["train_s"], errors="coerce")
    k = pd.to_numeric(df.get("group_size"), errors="coerce").fillna(1).clip(lower=1)
    return float((t / k).sum())


def _provenance(records: list[dict], spec: dict, sweep_dir: Path) -> str:
    keys = (("identlab", "identlab version"), ("git_sha", "git sha"), ("torch", "torch"),
            ("python", "python"), ("device", "device"), ("device_name", "device name"))
    lines = []
    for key, name in keys:
        vals = sorted({str((r.get("provenance") or {}).get(key)) for r in records})
        lines.append(f"- {name}: {', '.join(vals) if vals else 'n/a'}")
    lines.append(f"- spec digest: {spec.get('digest', 'n/a')}; source: "
                 f"{spec.get('source') or 'inline'}")
    lines.append(f"- sweep directory: `{sweep_dir}`")
    return "\n".join(lines)


def _read_spec(sweep_dir: Path) -> dict:
    """``spec.json`` of a sweep directory, checked as far as the report reads it: a name,
    a grid mapping and plots that :mod:`identlab.sweep.spec` would accept (a hand-edited
    file is one line, not a traceback)."""
    from identlab.sweep.spec import check_plot

    spec = read_json(sweep_dir / "spec.json")
    where = short(str(sweep_dir / "spec.json"), 120)
    if not isinstance(spec, dict):
        raise ConfigError("dir", f"{short(str(sweep_dir), 120)} is not a sweep directory "
                          "(no readable spec.json)")
    grid = spec.get("grid")
    if not isinstance(grid, dict):
        raise ConfigError("spec.grid", f"in {where}: must be a mapping of dotted key -> list")
    plots = spec.get("plots") or []
    if not isinstance(plots, list):
        raise ConfigError("spec.plots", f"in {where}: must be a list of plot mappings")
    for i, p in enumerate(plots):
        if isinstance(p, dict):
            p = {k: v for k, v in p.items() if v is not None}  # PlotSpec's unset fields
        try:
            check_plot(p, i, grid)
        except ConfigError as e:
            raise ConfigError(e.field, f"{e.message} (in {where})") from None
    for key in ("planned",):
        if spec.get(key) is not None and not isinstance(spec[key], list):
            raise ConfigError(f"spec.{key}", f"in {where}: must be a list of record hashes")
    cells = spec.get("cells")
    if cells is not None and not (isinstance(cells, dict)
                                  and all(isinstance(c, dict) for c in cells.values())):
        raise ConfigError("spec.cells", f"in {where}: must map record hashes to cells")
    for key, typ in (("description", str), ("base", dict), ("preset", str)):
        if spec.get(key) is not None and not isinstance(spec[key], typ):
            raise ConfigError(f"spec.{key}", f"in {where}: should be a {typ.__name__}")
    return spec


def write_report(sweep_dir: str | Path, reports_root: str | Path = "reports") -> Path:
    """Write ``<reports_root>/<name>/README.md`` with figures (PNG + SVG), a paragraph per
    figure computed from the records, a cell table, run counts and provenance; also
    ``results.csv`` next to the README. Reads the sweep directory only. Returns the
    README."""
    sweep_dir = Path(sweep_dir)
    spec = _read_spec(sweep_dir)
    out = report_dir(reports_root, spec_report_name(spec))
    ensure_writable_dir(out, "--reports")  # one line (exit 2) where it cannot be made
    records = _sweep_records(sweep_dir, spec)
    df = records_frame(records)
    grid = spec.get("grid") or {}
    samples = {r["hash"]: r["sample"] for r in records if r.get("sample")}
    try:  # every file is written whole (temp + rename) or not at all
        _write_text(out / "results.csv", df.to_csv(index=False))
        figures = _figures(spec, df, grid, samples, out)
        _remove_stale(out, {f for f, *_ in figures})
        text = _readme(spec, df, records, figures, grid, sweep_dir)
        _write_text(out / "README.md", text)
    except OSError as e:
        raise UsageError(f"--reports {short(str(out), 120)}: cannot write the report "
                         f"({e.strerror or e}); free space and rerun identlab report") from None
    return out / "README.md"


def _figures(spec, df, grid, samples, out) -> list[tuple[str, str, str]]:
    """Render every plot; returns (file stem, heading, paragraph) per figure."""
    made = []
    for i, p in enumerate(spec.get("plots") or []):
        fig, para, default = _render(p, df, grid, samples, spec.get("base"))
        stem = plot_id(i, p)
        _check_text(fig, stem)
        plots.save(fig, out / stem)
        made.append((stem, p.get("title") or default, para))
    return made


def _check_text(fig, stem: str) -> None:
    """Warn (:class:`plots.OverlapWarning`) where two texts of the figure overlap; the
    figure is still written, and the tests turn the warning into a failure."""
    pairs = plots.text_overlaps(fig)
    if pairs:
        warnings.warn(plots.OverlapWarning(
            f"{stem}: overlapping text in the figure: {plots.describe_overlaps(pairs)}"),
            stacklevel=2)


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Delete figures of an earlier version of this report that are no longer produced."""
    for f in out.iterdir():
        if f.is_file() and FIGURE_RE.match(f.name) and f.name.rsplit(".", 1)[0] not in keep:
            f.unlink()


def _readme(spec, df, records, figures, grid, sweep_dir) -> str:
    summary = read_json(sweep_dir / "summary.json")
    desc = (spec.get("description") or "").strip()
    title = spec["name"] + (f" (preset `{spec['preset']}`)" if spec.get("preset") else "")
    parts = [f"# {title}", "", desc or "_No description._", "",
             _run_counts(df, spec, summary if isinstance(summary, dict) else None), "",
             "Grid: " + "; ".join(f"`{k}` ∈ {{{', '.join(value_label(v) for v in vals)}}}"
                                  for k, vals in grid.items()) + ".", ""]
    for n, (stem, heading, para) in enumerate(figures, 1):
        alt = heading.replace("[", "(").replace("]", ")")
        parts += [f"## {n}. {heading}", "", f"![{alt}]({stem}.png)", "",
                  f"[SVG]({stem}.svg)", "", para, ""]
    stable = stability_section(df, grid)
    if stable:
        parts += [stable]
    parts += ["## Cells", "", "Mean ± seed std over finished runs." + _THEOREM_NOTE
              + (_VERDICT_NOTE if "verdict" in df else ""), "",
              cell_table(df, grid), "",
              "Full table (one row per run): [results.csv](results.csv).", "",
              "## Provenance", "", _provenance(records, spec, sweep_dir), ""]
    return "\n".join(parts)


# ------------------------------------------------------------------ index
def _first_text_line(readme: Path) -> str:
    """First prose line of a Markdown page (skipping headings, images, tables, HTML)."""
    try:
        lines = readme.read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    for ln in lines:
        s = ln.strip()
        if s and not s.startswith(("#", "!", "|", "<", "```", "---", "[")):
            return s[:200]
    return ""


def _pages(root: Path) -> list[tuple[str, str]]:
    """(name, link) of every report page: ``*/README.md`` and loose ``*.md`` files."""
    pages = [(p.parent.name, f"{p.parent.name}/README.md") for p in root.glob("*/README.md")]
    pages += [(p.stem, p.name) for p in root.glob("*.md") if p.name != "README.md"]
    return sorted(pages)


def write_index(reports_root: str | Path, timings: dict[str, dict] | None = None,
                total_wall_s: float | None = None,
                findings: dict[str, str] | None = None) -> Path:
    """Write ``<reports_root>/README.md`` linking every report page with its first line of
    description and, where given, the sweep's run counts and wall time, then "what the
    default sweeps show": one paragraph per sweep computed from its records
    (:func:`identlab.show.findings.sweep_findings`; kept from earlier runs like the
    timings). A sweep that trained nothing now (a re-render of finished records) keeps
    the timing of the run that trained them, and so does the total when every sweep of
    the call was such a re-render."""
    root = Path(reports_root)
    root.mkdir(parents=True, exist_ok=True)
    # timings of earlier runs (e.g. `make sweep` before `make reproduce`) are kept
    prev = read_json(root / INDEX_STATE)
    prev = prev if isinstance(prev, dict) else {}
    old, new = prev.get("timings") or {}, timings or {}
    # a run that only re-rendered (trained nothing) keeps the timing of the run that
    # trained the records, so the wall times stay those of real work
    rerender = {k for k, v in new.items()
                if v.get("trained") == 0 and (old.get(k) or {}).get("trained")}
    timings = {**old, **{k: v for k, v in new.items() if k not in rerender}}
    findings = {**(prev.get("findings") or {}), **(findings or {})}
    if total_wall_s is None or (new and rerender == set(new)):
        total_wall_s = prev.get("total_wall_s", total_wall_s)
    write_bytes_atomic(root / INDEX_STATE, json.dumps(
        {"timings": timings, "total_wall_s": total_wall_s, "findings": findings},
        indent=1).encode())
    lines = ["# Reports", "", "Every report under this folder; wall times are from the last run "
             "that produced each one.", "",
             "| report | description | planned | trained | reused | wall s |",
             "|---|---|---|---|---|---|"]
    seen = set()
    for name, link in _pages(root):
        seen.add(name)
        lines.append(_index_row(name, link, _first_text_line(root / link), timings.get(name)))
    for name in sorted(set(timings) - seen):
        lines.append(_index_row(name, None, "(no report written)", timings[name]))
    lines.append("")
    if total_wall_s is not None:
        lines += [f"Total wall time of `make sweep`: {float(total_wall_s):.1f} s.", ""]
    if findings:
        lines += ["## What the default sweeps show", "",
                  "Computed from each sweep's records when `make sweep` last ran (R² against "
                  "the theorem's target where the world has one, z or u = Φ⁻¹(F(z)), and "
                  "against z where it has none, as mean ± std over runs; a cell is "
                  "recovered when its mean R² is at least "
                  "the phase diagrams' threshold; the verdicts are the attribution's, "
                  "objective against optimizer). Each report has the figures and the cell "
                  "by cell numbers.", ""]
        lines += [findings[k] for k in sorted(findings)] + [""]
    path = root / "README.md"
    _write_text(path, "\n".join(lines))
    return path


def _index_row(name: str, link: str | None, desc: str, t: dict | None) -> str:
    t = t or {}
    cells = [f"[{name}]({link})" if link else name, _md(desc)]
    cells += [_md(t.get(k, "")) for k in ("planned", "trained", "skipped", "wall_s")]
    return "| " + " | ".join(str(c) for c in cells) + " |"

