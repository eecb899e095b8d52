"""Section 7: whitening against SIGReg on a world with a slow and a fast latent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from identlab.core.fmt import fmt
from identlab.measure import theory
from identlab.measure.stats import align_orthogonal, ok_rows, seed_std
from identlab.record import Record
from identlab.studies.teach.runs import Budget, grid_values
from identlab.studies.teach.text import (
    Section,
    budget_note,
    listing,
    md_table,
    num,
    save_png,
    tolerance,
)
from identlab.sweep.spec import SweepSpec

__all__ = ["SECTION", "KEPT", "Fast", "rows", "rho_label", "section_timescales",
           "fast_stats", "timescale_text", "timescale_verdict"]

SECTION = "s7"
RHO_KEY = "world.dynamics.rho"
OBJECTIVES = ("lejepa", "whiten")


def rho_label(rho: Sequence[float]) -> str:
    """The label ``(ρ_slow, ρ_fast)`` of a two-timescale cell."""
    return f"({rho[0]:g}, {rho[1]:g})"


def rows(values: dict, index: int) -> list[tuple[str, object, tuple]]:
    """One row per cell: the arm is the objective, the level the (ρ_slow, ρ_fast) label."""
    return [(values["learner.objective.kind"], rho_label(values[RHO_KEY]), (index,))]


def section_timescales(b: Budget, spec: SweepSpec, df: pd.DataFrame, records: dict,
                       out: Path) -> Section:
    """LeJEPA against whitening at every (ρ_slow, ρ_fast) of the spec, with the theory's
    prediction of whether whitening prefers He₂ of the slow latent."""
    settings = grid_values(spec, RHO_KEY)
    kinds = spec.grid["learner.objective.kind"]
    whiten_lam = spec.grid["learner.objective.lam"][kinds.index("whiten")]
    sub = df[df["section"] == SECTION]
    preds = {rho_label(r): theory.whitening_prefers_he2(max(r), min(r)) for r in settings}
    name = save_png(timescale_figure(sub, records, list(preds)), out, "07-timescales.png")
    table_rows = []
    for label, fact in preds.items():
        for arm in OBJECTIVES:
            part = ok_rows(sub[(sub["arm"] == arm) & (sub["level"] == label)])
            table_rows.append([label, arm, fact.holds] + [float(part[m].mean()) for m in (
                "mcc", "r2_hz", "r2_dim1", "r2_dim2", "nl_r2_hz", "sigreg_stat")]
                + [len(part)])
    table = md_table(["ρ (slow, fast)", "objective", "theory: whitening prefers He₂",
                      "MCC", "R² (h→z)", "R² slow z₁", "R² fast z₂", "nonlinear R²",
                      "SIGReg stat", "runs"], table_rows)
    intro = (f"Gaussian OU with one slow and one fast latent; `whiten` (λ = {whiten_lam}: "
             f"alignment + ‖Cov − I‖²) against LeJEPA (λ = {b.lam:g}). A whitening-only "
             "objective cannot tell He₂(z_slow)/√2 from a real latent, and it aligns more "
             "cheaply than the fast latent once ρ_slow² > ρ_fast; SIGReg rules it out "
             "because He₂ is not Gaussian. Settings on both sides of that boundary, seeds "
             f"{listing(b.seeds)}.")
    return Section("7. Whitening vs SIGReg with two timescales", name, table,
                   timescale_text(b, sub, preds), intro)


def timescale_figure(sub: pd.DataFrame, records: dict, labels: Sequence[str]) -> Figure:
    """Per-latent R² bars for every setting (``labels``), and (seed-ordered first run) the
    rotated embedding against the fast latent for each objective and setting."""
    fig = Figure(figsize=(3.4 * len(labels) + 0.8, 10.5), layout="constrained")
    gs = fig.add_gridspec(3, len(labels), height_ratios=[1.25, 1, 1])
    bar_ax = fig.add_subplot(gs[0, :])
    timescale_bars(bar_ax, sub, labels)
    for row, arm in enumerate(OBJECTIVES):
        for col, lab in enumerate(labels):
            ax = fig.add_subplot(gs[1 + row, col])
            embedding_panel(ax, first_record(sub, records, arm, lab), 1, f"{arm}, ρ = {lab}")
    fig.suptitle("Two timescales: whitening alone may trade the fast latent for He₂ of the "
                 "slow one; SIGReg forbids it (bottom: a diagonal in either colour = fast "
                 "latent kept)", fontsize=12)
    return fig


def timescale_bars(ax, sub: pd.DataFrame, labels: Sequence[str]) -> None:
    """R² of the slow and the fast latent, per (setting, objective); dots are seeds."""
    groups = [(lab, arm) for lab in labels for arm in ("lejepa", "whiten")]
    for i, (lab, arm) in enumerate(groups):
        part = ok_rows(sub[(sub["arm"] == arm) & (sub["level"] == lab)])
        for d, (col, off) in enumerate((("tab:blue", -0.2), ("tab:orange", 0.2))):
            vals = part[f"r2_dim{d + 1}"]
            ax.bar(i + off, max(float(vals.mean()), 0.0), 0.38, color=col, alpha=0.8,
                   label=("slow z₁", "fast z₂")[d] if i == 0 else None)
            ax.scatter(np.full(len(vals), i + off), vals.clip(lower=0), color="black", s=10,
                       zorder=3)
    ax.set_xticks(range(len(groups)), [f"{arm}\nρ = {lab}" for lab, arm in groups],
                  fontsize=8.5)
    for k in range(1, len(labels)):
        ax.axvline(2 * k - 0.5, color="grey", lw=0.8)
    ax.set_ylabel("R² of each latent from h (≥ 0)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc="upper right", ncol=2)
    ax.grid(alpha=0.3, axis="y")


def first_record(sub: pd.DataFrame, records: dict, arm: str, level: str) -> Record | None:
    part = ok_rows(sub[(sub["arm"] == arm) & (sub["level"] == level)]).sort_values("seed")
    return records[part.iloc[0]["hash"]] if len(part) else None


def embedding_panel(ax, rec: Record | None, d: int, head: str) -> None:
    """Both coordinates of h (rotated onto z by Procrustes) against latent ``d``: a
    diagonal is recovery of that latent, a blob is its loss."""
    if rec is None or rec.sample is None:
        ax.text(0.5, 0.5, "no finished run", ha="center", transform=ax.transAxes)
        return
    z, h = np.asarray(rec.sample["z"], float), np.asarray(rec.sample["h"], float)
    ha, zc = align_orthogonal(h, z)
    for j, col in ((0, "tab:blue"), (1, "tab:orange")):
        ax.scatter(zc[:, d], ha[:, j], s=5, color=col, alpha=0.55, lw=0,
                   label=f"(hQᵀ)_{j + 1}")
    ax.set_xlabel(("slow z₁", "fast z₂")[d])
    ax.set_ylabel("h rotated onto z")
    ax.set_title(f"{head} (seed {rec.seed})", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", markerscale=2)
    ax.grid(alpha=0.25)


KEPT = 0.8  # R² of a latent above which an objective "keeps" it


@dataclass(frozen=True)
class Fast:
    """Mean fast-latent R² (and its seed std), slow-latent R², SIGReg statistic and MCC
    of one objective at one setting."""

    r2: float
    sd: float
    slow: float
    sigreg: float
    mcc: float


def fast_stats(sub: pd.DataFrame, arm: str, label: str) -> Fast:
    """Mean scores of one arm at one (ρ_slow, ρ_fast) level."""
    part = ok_rows(sub[(sub["arm"] == arm) & (sub["level"] == label)])
    return Fast(float(part["r2_dim2"].mean()), seed_std(part["r2_dim2"]),
                float(part["r2_dim1"].mean()), float(part["sigreg_stat"].mean()),
                float(part["mcc"].mean()))


def timescale_text(b: Budget, sub: pd.DataFrame, preds: dict) -> list[str]:
    """Sentences comparing whitening and LeJEPA at each timescale pair."""
    out = []
    for label, fact in preds.items():
        ev = fact.evidence
        w, lj = fast_stats(sub, "whiten", label), fast_stats(sub, "lejepa", label)
        out.append(f"**ρ = {label}.** ρ_slow² = {ev['rho1'] ** 2:.3f} "
                   f"{'>' if ev['rho1_squared_gt_rho2'] else '≤'} ρ_fast = {ev['rho2']:g}: "
                   f"He₂ of the slow latent costs {ev['cost_he2']:.3f} in alignment against "
                   f"{ev['cost_z2']:.3f} for the fast latent, so theory "
                   f"{'predicts' if fact.holds else 'does not predict'} that whitening swaps "
                   f"them. Measured R² of the fast latent: whiten {fmt(w.r2)}, LeJEPA "
                   f"{fmt(lj.r2)} (MCC {fmt(w.mcc)} vs {fmt(lj.mcc)}). "
                   + timescale_verdict(b, fact, w, lj))
    return out


def timescale_verdict(b: Budget, fact, w: Fast, lj: Fast) -> str:
    """One or two sentences judging one setting against the prediction."""
    ev = fact.evidence
    stat = f"SIGReg statistic of h: whiten {num(w.sigreg)}, LeJEPA {num(lj.sigreg)}"
    if not lj.slow >= KEPT and not lj.r2 >= KEPT:
        return (f"LeJEPA recovers neither latent here (R² {fmt(lj.slow)} and {fmt(lj.r2)}), "
                f"so this setting cannot separate the objectives ({budget_note(b)}).")
    if not lj.r2 >= KEPT and fact.holds:
        return (f"LeJEPA itself does not keep the fast latent here (R² {fmt(lj.r2)} < "
                f"{KEPT}), unlike the exact-SIGReg optimum the theorem describes. Likely "
                f"explanation: at λ = {b.lam:g} SIGReg is a soft penalty, while dropping the "
                f"fast latent for a slow feature saves a lot of alignment (cost "
                f"{ev['cost_z2']:.3f} against {ev['cost_he2']:.3f}); {stat}; "
                f"{budget_note(b)}, and a larger λ needs a longer budget (section 4).")
    if not lj.r2 >= KEPT:
        return (f"LeJEPA keeps the slow latent (R² {fmt(lj.slow)}) but not the fast one "
                f"(R² {fmt(lj.r2)}), although no He₂ swap is cheaper here ({stat}); "
                f"{budget_note(b)}, so an unfinished optimisation is the likely reason.")
    lost = lj.r2 - w.r2 > tolerance(w.sd, lj.sd)
    if fact.holds and lost:
        return f"As predicted, whitening lost the fast latent while SIGReg kept it ({stat})."
    if fact.holds:
        return ("Whitening kept the fast latent despite the prediction: the prediction ranks "
                "optima and does not say gradient descent finds the cheaper one from its "
                f"starting point ({budget_note(b)}).")
    if lost:
        return ("Whitening lost the fast latent even though the He₂ swap is not cheaper "
                f"here ({stat}): a covariance-only constraint leaves it free to settle on "
                "some other, non-Gaussian feature, and the ranking of exact optima does not "
                f"say which one gradient descent reaches ({budget_note(b)}).")
    if w.r2 >= KEPT:
        return f"As predicted, both objectives keep the fast latent (R² ≥ {KEPT})."
    return (f"Whitening keeps less of the fast latent on average (R² {fmt(w.r2)} ± "
            f"{fmt(w.sd, 2)} over seeds), but its seeds disagree too much to call that a "
            "swap.")
