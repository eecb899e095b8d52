"""What a sweep shows, in a few sentences computed from its records.

The reports index (``reports/README.md``) carries one paragraph per default sweep, built
here from the sweep's results table (:func:`identlab.show.report.load_records`): recovery
where the theorem applies against where it does not, the attribution verdicts, the best
and the worst cell, and the sweep's own keys where its records have them (the bound,
planning regret, the stability of a rotation start). No number in it is typed by hand.
"""

from __future__ import annotations

import pandas as pd

from identlab.core.fmt import fmt, mean_std
from identlab.measure.stats import (
    VERDICT_MARKS,
    VERDICT_NAMES,
    bound_counts,
    bound_counts_text,
    seed_std,
)
from identlab.measure.thresholds import RECOVERED_R2

__all__ = ["sweep_findings"]

METRIC = "r2_goal"  # R² against the theorem's target where there is one, else against z


def _with_goal(ok: pd.DataFrame) -> pd.DataFrame:
    """``r2_goal``: r2_target where the record has one (z or u), else r2_hz."""
    goal = pd.to_numeric(ok["r2_hz"], errors="coerce") if "r2_hz" in ok else \
        pd.Series(float("nan"), index=ok.index)
    if "r2_target" in ok:
        goal = pd.to_numeric(ok["r2_target"], errors="coerce").fillna(goal)
    return ok.assign(r2_goal=goal)


def _cell_label(row: pd.Series, cols: list[str]) -> str:
    return ", ".join(f"{c.removeprefix('cell.').rsplit('.', 1)[-1]}={row[c]}" for c in cols)


def _cells(ok: pd.DataFrame) -> pd.DataFrame:
    """Mean and count of R²(h→z) per cell (rows of one cell share ``cell_index``)."""
    cols = [c for c in ok.columns if c.startswith("cell.")]
    g = ok.groupby("cell_index", dropna=False)
    out = g[METRIC].agg(["mean", "count"])
    out["label"] = g.first().apply(lambda r: _cell_label(r, cols), axis=1)
    out["applies"] = g["theorem_applies"].first()
    return out


def _recovery(ok: pd.DataFrame, cells: pd.DataFrame) -> list[str]:
    out = []
    for applies, where in ((True, "where the theorem applies"),
                           (False, "where it does not")):
        runs = ok[ok["theorem_applies"] == applies][METRIC].dropna()
        part = cells[cells["applies"] == applies]
        if not len(runs):
            continue
        rec = int((part["mean"] >= RECOVERED_R2).sum())
        against = "its target (z or u)" if applies else "z"
        out.append(f"{where}, R² against {against} "
                   f"{mean_std(runs.mean(), seed_std(runs), len(runs))} "
                   f"over {len(runs)} runs, {rec}/{len(part)} cells recovered (mean R² ≥ "
                   f"{RECOVERED_R2:g})")
    return out


def _verdicts(ok: pd.DataFrame) -> str | None:
    if "verdict" not in ok:
        return None
    v = ok["verdict"].dropna()
    if not len(v):
        return None
    counts = v.value_counts()
    return "verdicts over runs: " + ", ".join(
        f"{VERDICT_NAMES[k]} {VERDICT_MARKS[k]} {int(counts[k])}/{len(v)}"
        for k in VERDICT_MARKS if k in counts)


def _extras(ok: pd.DataFrame) -> list[str]:
    out = []
    if "bound_holds" in ok and ok["bound_holds"].notna().any():
        out.append("the approximate-identifiability bound "
                   + bound_counts_text(bound_counts(ok)))
    if "plan_regret" in ok and ok["plan_regret"].notna().any():
        rec = ok[METRIC] >= RECOVERED_R2
        for mask, what in ((rec, "recovered"), (~rec, "not recovered")):
            r = ok.loc[mask, "plan_regret"].dropna()
            if len(r):
                out.append(f"median planning regret {fmt(r.median())} over {len(r)} "
                           f"{what} runs")
    if "rotation_stable" in ok and ok["rotation_stable"].notna().any():
        s = ok["rotation_stable"].dropna().astype(bool)
        out.append(f"a rotation start is kept in {int(s.sum())}/{len(s)} runs")
    return out


def sweep_findings(name: str, df: pd.DataFrame, link: str | None = None) -> str:
    """One paragraph on sweep ``name`` from its results table ``df``."""
    head = f"[{name}]({link})" if link else name
    if not len(df):
        return f"- **{head}**: no records."
    ok = _with_goal(df[df["status"] == "ok"])
    diverged = int((df["status"] == "diverged").sum())
    lead = f"- **{head}** ({len(df)} runs, {diverged} diverged)"
    if METRIC not in ok or not ok[METRIC].notna().any():
        return lead + "."
    cells = _cells(ok)
    parts = _recovery(ok, cells)
    best, worst = cells["mean"].idxmax(), cells["mean"].idxmin()
    parts.append(f"best cell {cells.loc[best, 'label']} ({fmt(cells.loc[best, 'mean'])}), "
                 f"worst {cells.loc[worst, 'label']} ({fmt(cells.loc[worst, 'mean'])})")
    verdicts = _verdicts(ok)
    if verdicts:
        parts.append(verdicts)
    parts += _extras(ok)
    return lead + ": " + "; ".join(parts) + "."
