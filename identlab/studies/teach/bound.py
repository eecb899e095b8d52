"""Section 8: the Thm-3 bound against the measured Procrustes error of the Gaussian OU runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from identlab.core.fmt import fmt
from identlab.measure.stats import bound_counts, bound_error, ok_rows
from identlab.measure.thresholds import SE_MULTIPLE
from identlab.show.plots import bound as bound_figure
from identlab.studies.teach.text import Section, listing, md_table, save_png

__all__ = ["section_bound", "bound_text"]


def section_bound(df: pd.DataFrame, out: Path) -> Section:
    """The walkthrough's section on Theorem 3's bound: figure and text."""
    rows = ok_rows(df).drop_duplicates("hash")
    rows = rows[rows["bound"].notna()] if "bound" in rows else rows.iloc[0:0]
    rows = rows.sort_values(["section", "level", "seed"], kind="stable")
    if len(rows):  # the error the bound is about: against the target (z, or u)
        rows = rows.assign(procrustes=bound_error(rows))
    frame = rows.copy()
    if len(frame):
        frame["bound_holds"] = frame["bound_holds"].astype("boolean")
    fig = bound_figure(frame, title="Theorem 3 on the Gaussian OU runs: measured error vs "
                       "bound")
    name = save_png(fig, out, "08-bound.png")
    table = md_table(
        ["section", "level (λ or strength)", "seed", "Procrustes error", "ε", "D", "bound",
         "bound SE", "holds", "R² (h→z)"],
        [[r.section.lstrip("s"), r.level, int(r.seed), r.procrustes, r.epsilon, r.D, r.bound,
          r.bound_se, bool(r.bound_holds), r.r2_hz] for r in rows.itertuples()])
    secs = listing(sorted({r.lstrip("s") for r in rows["section"]}))
    intro = ("Thm 3: with ε = ‖Cov h − I‖_F and D = δ/(2ρ(1−ρ)), where δ is the alignment "
             "excess over a perfect rotation, the Procrustes error is at most D + (ε + D)². "
             f"Every finished run above whose world is a Gaussian OU with one ρ in the "
             f"theorem's target — z itself, or u = Φ⁻¹(F(z)) for a copula OU, where the "
             f"error is measured against u (sections {secs or 'none'}; each distinct run "
             f"once).")
    return Section("8. The bound vs the measured error", name, table, bound_text(rows),
                   intro)


def bound_text(rows: pd.DataFrame) -> list[str]:
    """Sentences on how often, and how tightly, the bound holds in ``rows``."""
    if not len(rows):
        return ["No finished Gaussian OU run has a bound, so there is nothing to check."]
    holds = rows["bound_holds"].astype(bool)
    pos = rows[rows["bound"] > 0]
    out = [f"The bound holds (within {SE_MULTIPLE:g} standard errors of δ) in "
           f"{int(holds.sum())} of {len(rows)} runs ({100 * holds.mean():.0f}%)."]
    c = bound_counts(rows)
    if c["informative"] is not None:
        out.append(f"Only {c['informative']} of these bounds are informative (below a "
                   "constant embedding's error, the target's total variance: a bound at or "
                   f"above it cannot fail); among them it holds in {c['informative_holds']}"
                   f" of {c['informative']}.")
    if len(pos):
        ratio = (pos["procrustes"] / pos["bound"]).to_numpy(float)
        out.append(f"The measured error is a median {100 * np.median(ratio):.0f}% of the "
                   f"bound (range {100 * ratio.min():.0f}–{100 * ratio.max():.0f}%): "
                   + ("the bound is tight to within a factor of 2 at the median."
                      if np.median(ratio) > 0.5 else
                      "the bound is conservative, as a worst-case guarantee should be."))
    if len(pos) < len(rows):
        out.append(f"{len(rows) - len(pos)} run(s) have a non-positive bound (δ < 0 by "
                   "sampling noise) and are not on the log-log plot.")
    if (~holds).any():
        bad = rows[~holds]
        out.append("It fails for " + listing(
            f"section {r.section.lstrip('s')}, level {r.level:g}, seed {int(r.seed)} "
            f"(error {fmt(r.procrustes)} vs bound {fmt(r.bound)})" for r in bad.itertuples())
            + "; the bound assumes an exactly stationary Gaussian OU world and exact "
              f"expectations, so a failure beyond {SE_MULTIPLE:g} SE would disagree with "
              "the theorem.")
    return out
