"""Formatting for the walkthrough: numbers in prose, markdown tables, sections, figures."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from identlab.core.fmt import fmt, mean_std
from identlab.core.io import write_bytes_atomic
from identlab.show.plots import DPI

__all__ = ["num", "ms", "md_table", "listing", "lam_text", "levels_text", "tolerance",
           "contrast", "budget_note", "save_png", "Section"]


def num(x: float) -> str:
    """A number for prose: 3 significant digits, whole numbers from 1000 up."""
    return f"{x:.0f}" if np.isfinite(x) and abs(x) >= 1000 else fmt(x)


def ms(mean: float, std: float, n: int) -> str:
    """``mean ± std`` over n runs (just the mean for one run)."""
    return mean_std(mean, std, n)


def md_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A markdown table; cells are formatted with :func:`fmt` when numeric."""
    def cell_text(v) -> str:
        if isinstance(v, (bool, np.bool_)):
            return "yes" if v else "no"
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        if isinstance(v, (float, np.floating)):
            return fmt(v, 4)
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell_text(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def listing(values: Sequence) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    vals = [str(v) for v in values]
    if len(vals) <= 1:
        return "".join(vals)
    return ", ".join(vals[:-1]) + " and " + vals[-1]


def lam_text(lam) -> str:
    """λ written compactly (``0.001``)."""
    return f"{lam:g}"


def levels_text(levels: Sequence, name: str) -> str:
    """``λ = 0.001 and 0.1``."""
    return f"{name} = {listing([f'{v:g}' for v in levels])}"


def tolerance(*stds: float) -> float:
    """What counts as a real difference in R²: 0.02, or twice the larger seed spread."""
    spread = [s for s in stds if np.isfinite(s)]
    return max(0.02, 2 * max(spread, default=0.0))


def contrast(ref: tuple, alt: tuple) -> tuple[float, float]:
    """(ref − alt mean difference, tolerance) of two (mean, std, n) cells."""
    return ref[0] - alt[0], tolerance(ref[1], alt[1])


def budget_note(b) -> str:
    """How small the training budget ``b`` (a :class:`~.runs.Budget`) is, in words."""
    return (f"the training budget is tiny, {b.steps} steps" if b.quick else
            f"the budget is small: {b.steps} steps of {b.batch} pairs, a "
            f"{b.depth}×{b.hidden} encoder")


def save_png(fig: Figure, out: Path, name: str) -> str:
    """Render ``fig`` to ``out/name`` atomically; returns the file name for the README."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    write_bytes_atomic(out / name, buf.getvalue())
    return name


@dataclass
class Section:
    """One README section: heading, figure file, table and generated sentences."""

    heading: str
    figure: str | None
    table: str
    text: list[str]
    intro: str = ""

    def markdown(self) -> str:
        parts = [f"## {self.heading}", ""]
        if self.intro:
            parts += [self.intro, ""]
        if self.figure:
            parts += [f"![{self.heading}]({self.figure})", ""]
        parts += [self.table, "", " ".join(self.text), ""]
        return "\n".join(parts)
