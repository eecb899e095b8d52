"""Text formatting of numbers: the one home of how identlab prints a value."""

from __future__ import annotations

import math

__all__ = ["fmt", "mean_std", "cell_value", "fixed"]


def fmt(x, digits: int = 3) -> str:
    """A short number: 3 significant digits, 'n/a' for missing values."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{float(x):.{digits}g}"


def mean_std(mean, std, n: int, digits: int = 3) -> str:
    """``mean ± std`` over n runs with ``digits`` significant digits for the mean and
    two for the spread; just the mean for one run; 'n/a' without runs."""
    if not n:
        return "n/a"
    return f"{fmt(mean, digits)} ± {fmt(std, 2)}" if n > 1 else fmt(mean, digits)


def cell_value(v) -> str:
    """A record value in a terminal table: '-' for missing, yes/no for booleans, 4
    significant digits (exponent form from 1e4 up) for floats."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)


def fixed(v, width: int = 8, decimals: int = 4) -> str:
    """A right-aligned fixed-point column entry; 'n/a' for a missing value."""
    return f"{'n/a':>{width}}" if v is None else f"{v:>{width}.{decimals}f}"
