"""Text formatting of numbers: the one home of how identlab prints a value."""

from __future__ import annotations

import math

__all__ = ["fmt", "mean_std"]


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
