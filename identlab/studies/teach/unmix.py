"""Section 2: LeJEPA un-mixes the spiral (Gaussian latents, OU dynamics)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from identlab.core.fmt import fmt
from identlab.measure.stats import TABLE_METRICS, align_orthogonal, ok_rows, seed_std
from identlab.studies.teach.runs import Budget
from identlab.studies.teach.text import Section, budget_note, listing, md_table, ms, save_png

__all__ = ["SECTION", "rows", "section_unmix", "unmix_figure", "unmix_text"]

SECTION = "s2"
UNMIX_METRICS = TABLE_METRICS + ("nl_r2_hz", "sigreg_stat")


def rows(values: dict, index: int) -> list[tuple[str, object, tuple]]:
    """Every run of the spec is one seed of the reference world at the paper's λ."""
    return [("Gaussian OU", values["learner.objective.lam"], (index,))]


def section_unmix(b: Budget, df: pd.DataFrame, records: dict, baseline: float,
                  out: Path) -> Section:
    """h vs z after Procrustes alignment for the main Gaussian OU runs."""
    sub = df[df["section"] == SECTION].sort_values("seed")
    samples = [(int(r.seed), records[r.hash].sample, r.r2_hz)
               for r in sub.itertuples() if r.status == "ok"]
    name = save_png(unmix_figure(samples), out, "02-unmix.png")
    table_rows = [[int(r.seed)] + [getattr(r, m, np.nan) for m in UNMIX_METRICS]
                  for r in sub.itertuples()]
    fin = ok_rows(sub)
    if len(fin):
        table_rows.append(["mean"] + [float(fin[m].mean()) for m in UNMIX_METRICS])
    headers = ["seed", "R² (h→z)", "CCA min", "MCC", "Procrustes error",
               "nonlinear R²", "SIGReg stat"]
    intro = (f"Gaussian latents, OU dynamics with ρ = {b.rho}, LeJEPA with λ = {b.lam:g}, an "
             f"MLP encoder {b.depth}×{b.hidden}, {b.slices} slices, {b.steps} steps of "
             f"{b.batch} pairs, evaluated on {b.eval_n} held-out pairs.")
    return Section("2. LeJEPA un-mixes the spiral", name, md_table(headers, table_rows),
                   unmix_text(b, sub, baseline), intro)


def unmix_figure(samples: list) -> Figure:
    """Per seed: aligned h in the plane (coloured by angle of z) and z_i vs (hQᵀ)_i."""
    n = max(len(samples), 1)
    fig = Figure(figsize=(3.9 * n + 0.4, 8.0), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    if not samples:
        axes[0, 0].text(0.5, 0.5, "every run diverged", ha="center")
    for j, (seed, sample, r2) in enumerate(samples):
        if sample is None:
            continue
        z, h = np.asarray(sample["z"], float), np.asarray(sample["h"], float)
        ha, zc = align_orthogonal(h, z)
        angle = np.arctan2(zc[:, 1], zc[:, 0])
        top, bot = axes[0, j], axes[1, j]
        top.scatter(ha[:, 0], ha[:, 1], c=angle, cmap=colormaps["twilight"], s=9, lw=0)
        top.set_title(f"seed {seed}: aligned h = f(g(z))·Qᵀ\n(colour = angle of z)",
                      fontsize=10)
        top.set_xlabel("(hQᵀ)₁")
        top.set_ylabel("(hQᵀ)₂")
        for d, col in ((0, "tab:blue"), (1, "tab:orange")):
            bot.scatter(zc[:, d], ha[:, d], s=6, color=col, alpha=0.6, lw=0,
                        label=f"dim {d + 1}")
        lim = float(np.max(np.abs(np.concatenate([zc.ravel(), ha.ravel()])))) * 1.05
        bot.plot([-lim, lim], [-lim, lim], color="grey", ls="--", lw=0.8)
        bot.set_title(f"seed {seed}: z_i vs (hQᵀ)_i, R² = {fmt(r2)}", fontsize=10)
        bot.set_xlabel("z_i (centred)")
        bot.set_ylabel("(hQᵀ)_i")
        bot.legend(fontsize=8, loc="upper left", markerscale=2)
        for ax in (top, bot):
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            ax.grid(alpha=0.25)
    fig.suptitle("LeJEPA's embedding after the best rotation: a straight diagonal means "
                 "h is a rotation of z", fontsize=12)
    return fig


def unmix_text(b: Budget, sub: pd.DataFrame, baseline: float) -> list[str]:
    """Sentences on how well the runs unmix z, against reading z off x."""
    fin = ok_rows(sub)
    seeds = listing(sorted(int(s) for s in sub["seed"]))
    if not len(fin):
        return [f"Every run (seeds {seeds}) diverged, so there is nothing to report."]
    r2, cca, proc = (fin[m] for m in ("r2_hz", "cca_min", "procrustes"))
    out = [f"Over seeds {seeds}, R²(h→z) = {ms(r2.mean(), seed_std(r2), len(fin))} "
           f"(lowest {fmt(r2.min())}), CCA min = {ms(cca.mean(), seed_std(cca), len(fin))} "
           f"and Procrustes error = {ms(proc.mean(), seed_std(proc), len(fin))}, against "
           f"R² = {fmt(baseline)} for reading z linearly off x itself."]
    if r2.min() >= 0.95:
        out.append(f"Every seed recovers z up to a rotation to within "
                   f"{fmt(100 * (1 - r2.min()), 2)}% unexplained variance, as the theorem "
                   "predicts for this Gaussian, stationary, additive world.")
    elif r2.mean() > baseline + 0.05:
        out.append(f"The encoder un-mixes much of the spiral, but not fully (lowest R² "
                   f"{fmt(r2.min())}); the theorem describes the optimum, and "
                   f"{budget_note(b)}, so the shortfall is most likely unfinished training.")
    else:
        out.append(f"The encoder does no better than x itself here; the theorem describes "
                   f"the optimum, and {budget_note(b)}, so this says nothing against it.")
    if (sub["status"] != "ok").any():
        out.append(f"{int((sub['status'] != 'ok').sum())} run(s) diverged and are left out.")
    return out
