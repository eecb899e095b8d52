"""Section 3: the Hermite spectrum of one OU step (analytic and Monte Carlo; no training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from identlab.measure import theory
from identlab.measure.thresholds import SE_MULTIPLE
from identlab.studies.teach.runs import Budget
from identlab.studies.teach.text import Section, listing, md_table, save_png

__all__ = ["MC_RHOS", "DEGREES", "section_spectrum", "hermite_mc", "spectrum_figure",
           "spectrum_text"]

MC_RHOS = (0.3, 0.6, 0.9, 0.95)    # ρ values with Monte-Carlo dots
DEGREES = (1, 2, 3, 4, 5)


def section_spectrum(b: Budget, out: Path) -> Section:
    """Alignment cost per Hermite degree and the spectral gap: analytic + Monte Carlo."""
    mc = hermite_mc(b)
    name = save_png(spectrum_figure(mc, b.rho), out, "03-spectrum.png")
    rows = []
    for rho in MC_RHOS:
        part = mc[mc["rho"] == rho]
        row = [rho]
        for k in DEGREES:
            r = part[part["k"] == k].iloc[0]
            row.append(f"{r.analytic:.4f} ({r.mc:.4f} ± {r.se:.4f})")
        row.append(2 * rho * (1 - rho))
        rows.append(row)
    headers = ["ρ"] + [f"k = {k}: analytic (MC ± SE)" for k in DEGREES] + ["gap 2ρ(1−ρ)"]
    intro = (f"Cost of a unit-variance degree-k feature He_k(z)/√k! under one OU step, "
             f"2(1 − ρ^k) (theory.hermite_alignment_analytic), with Monte-Carlo estimates "
             f"from {b.mc_n:,} pairs per point (theory.hermite_alignment_mc).")
    return Section("3. The Hermite spectrum", name, md_table(headers, rows),
                   spectrum_text(mc, b.rho), intro)


def hermite_mc(b: Budget) -> pd.DataFrame:
    """Analytic and Monte-Carlo alignment cost of each degree at each ρ of MC_RHOS."""
    rows = []
    for i, rho in enumerate(MC_RHOS):
        for k in DEGREES:
            w = [0.0] * (k - 1) + [1.0]
            est = theory.hermite_alignment_mc(w, rho, b.mc_n, seed=100 * k + i)
            exact = theory.hermite_alignment_analytic(w, rho)
            rows.append({"rho": rho, "k": k, "analytic": exact, "mc": est.mean,
                         "se": est.se, "z": (est.mean - exact) / est.se})
    return pd.DataFrame(rows)


def spectrum_figure(mc: pd.DataFrame, rho: float) -> Figure:
    """Cost per degree against ρ (Monte-Carlo dots), and the gap 2ρ(1 − ρ); ``rho`` (the
    walkthrough's) is marked."""
    fig = Figure(figsize=(12.0, 4.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    grid = np.linspace(0.001, 0.999, 300)
    cols = colormaps["viridis"](np.linspace(0, 0.9, len(DEGREES)))
    for k, col in zip(DEGREES, cols):
        w = [0.0] * (k - 1) + [1.0]
        cost = [theory.hermite_alignment_analytic(w, r) for r in grid]
        left.plot(grid, cost, color=col, lw=1.8, label=f"degree {k}")
        part = mc[mc["k"] == k]
        left.errorbar(part["rho"], part["mc"], yerr=SE_MULTIPLE * part["se"], fmt="o", color=col,
                      ms=5, mec="black", mew=0.5, capsize=2)
    left.axvline(rho, color="grey", ls=":", lw=1)
    left.text(rho, 0.05, f" ρ = {rho}", color="grey", fontsize=9, ha="right")
    left.set_xlabel("one-step correlation ρ")
    left.set_ylabel("alignment cost E[(f(z') − f(z))²]")
    left.set_title(f"cost 2(1 − ρ^k) per Hermite degree (dots: Monte Carlo ± "
                   f"{SE_MULTIPLE:g} SE)",
                   fontsize=10)
    left.legend(fontsize=8)
    gap = 2 * grid * (1 - grid)
    right.plot(grid, gap, color="tab:red", lw=2, label="gap 2ρ(1 − ρ)")
    right.plot(grid, 2 * (1 - grid), color="tab:blue", lw=1.2, ls="--",
               label="degree-1 cost 2(1 − ρ)")
    right.axvline(rho, color="grey", ls=":", lw=1)
    right.plot([0.5], [0.5], "o", color="tab:red", mec="black")
    right.annotate("peak ½ at ρ = ½", (0.5, 0.5), xytext=(0.55, 0.8), fontsize=9,
                   arrowprops={"arrowstyle": "->", "lw": 0.8})
    right.set_xlabel("one-step correlation ρ")
    right.set_ylabel("alignment cost")
    right.set_title("what a non-linear (degree-2) feature costs extra", fontsize=10)
    right.legend(fontsize=8, loc="upper right")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.set_xlim(0, 1)
    fig.suptitle("Alignment prefers linear features: the OU spectrum", fontsize=12)
    return fig


def spectrum_text(mc: pd.DataFrame, rho: float) -> list[str]:
    """The gap at ``rho``, where it peaks, and how well Monte Carlo matches theory."""
    at = mc[mc["rho"] == rho].set_index("k")
    c1, c2 = float(at.loc[1, "analytic"]), float(at.loc[2, "analytic"])
    gap_fact = theory.spectral_gap()
    zmax = float(mc["z"].abs().max())
    inside = int((mc["z"].abs() <= SE_MULTIPLE).sum())
    outside = sorted(set(mc.loc[mc["z"].abs() > SE_MULTIPLE, "k"].astype(int)))
    return [f"At ρ = {rho} a linear feature costs {c1:.4f} and the cheapest non-linear "
            f"one (degree 2) {c2:.4f}: the gap {c2 - c1:.4f} = 2ρ(1−ρ) is "
            f"{100 * (c2 - c1) / c1:.0f}% of the linear cost, so alignment clearly favours "
            "the degree-1 (rotation) solution once SIGReg fixes the output law.",
            f"The gap is largest at ρ = ½ and vanishes at ρ → 0 and ρ → 1 (sympy check "
            f"spectral_gap {'holds' if gap_fact.holds else 'FAILS'}): very slow or very "
            "fast worlds separate the degrees weakly.",
            f"{inside} of {len(mc)} Monte-Carlo estimates fall within {SE_MULTIPLE:g} "
            f"standard errors of the analytic costs (largest |z| = {zmax:.2f})"
            + (f"; the misses are at degree {listing(outside)}, whose squared differences are "
               "heavy-tailed, so their sample standard errors are themselves unreliable."
               if outside else ".")]
