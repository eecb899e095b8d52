"""Compare a record with a pinned record, number for number, within a stated tolerance.

A pinned record (``tests/data/pin_spiral.json``) proves that a fixed config and seed
still behave as they did: the same config hash, the same metrics, the same sample and
loss history. It cannot prove the same bits. The last bits of BLAS/LAPACK kernels
(torch's float32 matrix products and reductions, numpy's eigen- and least-squares
solvers) differ across CPUs, instruction sets and thread counts, and that is normal.
Here they start in float32 training (one float32 ulp is 1.2e-7 relative) and carry into
every metric; measured against the pin on one Xeon with torch's kernels forced to
AVX512, AVX2 and no SIMD (``ATEN_CPU_CAPABILITY``, ``MKL_ENABLE_INSTRUCTIONS``,
``OPENBLAS_CORETYPE``): at most 1.5e-7 relative on O(1) metrics (sigreg_stat
191.4295561 vs 191.4295856), 2.5e-8 on the loss history, 4e-9 absolute on near-zero
R²s (r2_hz_dims[1] 0.0022090033 vs 0.0022090013), and one flipped last digit in the
4-decimal sample (-0.9066 vs -0.9067).

So floats are compared with ``math.isclose`` at ``REL`` = 8e-7 relative with an
absolute floor ``ABS`` = 2e-8 (each about 5x the largest difference measured, and a
relative change of 1e-6 fails; another seed, step count or formula moves these numbers
by 1e-3 or more), and the rounded sample within ``SAMPLE_ABS`` (one unit of its 4th
decimal, with slack). A tolerance of 1e-9, right for float64 arithmetic alone, fails
across CPUs here because the training itself is float32. Everything that is not a float
stays exact: hashes, strings, integers, booleans and ``None``.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

REL = 8e-7          # relative tolerance for floats (~7 float32 ulps)
ABS = 2e-8          # absolute floor, for floats that are (close to) zero
SAMPLE_ABS = 1.5e-4  # the sample is rounded to 4 decimals: one last-digit flip allowed


def _is_bool(x) -> bool:
    return isinstance(x, (bool, np.bool_))


def _is_number(x) -> bool:
    return isinstance(x, Real) and not _is_bool(x)


def _where(path: str) -> str:
    return path or "<root>"


def assert_matches_pin(actual, pinned, rel: float = REL, abs_: float = ABS,
                       path: str = "") -> None:
    """Assert that ``actual`` matches ``pinned``: dicts with the same keys, lists of the
    same length, floats within ``math.isclose(rel_tol=rel, abs_tol=abs_)`` (NaN equals
    NaN; an int against a float compares as floats), everything else exactly.

    The error names the dotted path (``metrics.epsilon``, ``sample.h[3][1]``) and both
    values."""
    if isinstance(pinned, dict) or isinstance(actual, dict):
        if not (isinstance(pinned, dict) and isinstance(actual, dict)):
            raise AssertionError(f"{_where(path)}: {actual!r} != pinned {pinned!r}")
        missing = [k for k in pinned if k not in actual]
        extra = [k for k in actual if k not in pinned]
        if missing:
            raise AssertionError(f"missing key {_join(path, missing[0])} "
                                 f"(pinned {pinned[missing[0]]!r}); all missing: {missing}")
        if extra:
            raise AssertionError(f"extra key {_join(path, extra[0])} "
                                 f"(actual {actual[extra[0]]!r}); all extra: {extra}")
        for k in pinned:
            assert_matches_pin(actual[k], pinned[k], rel, abs_, _join(path, k))
        return
    if isinstance(pinned, (list, tuple)) or isinstance(actual, (list, tuple)):
        if not (isinstance(pinned, (list, tuple)) and isinstance(actual, (list, tuple))):
            raise AssertionError(f"{_where(path)}: {actual!r} != pinned {pinned!r}")
        if len(actual) != len(pinned):
            raise AssertionError(f"{_where(path)}: length {len(actual)} != pinned length "
                                 f"{len(pinned)}")
        for i, (a, p) in enumerate(zip(actual, pinned)):
            assert_matches_pin(a, p, rel, abs_, f"{path}[{i}]")
        return
    if _is_number(actual) and _is_number(pinned):
        if isinstance(actual, Integral) and isinstance(pinned, Integral):
            if actual != pinned:  # integers (counts, steps, seeds) stay exact
                raise AssertionError(f"{_where(path)}: {actual!r} != pinned {pinned!r}")
            return
        a, p = float(actual), float(pinned)
        if math.isnan(a) and math.isnan(p):
            return
        if not math.isclose(a, p, rel_tol=rel, abs_tol=abs_):
            raise AssertionError(f"{_where(path)}: {a!r} != pinned {p!r} "
                                 f"(rel={rel:g}, abs={abs_:g})")
        return
    # hashes, strings, bools, None: exact, and a bool is not a number (True is not 1)
    if _is_bool(actual) != _is_bool(pinned) or _is_number(actual) != _is_number(pinned) \
            or actual != pinned:
        raise AssertionError(f"{_where(path)}: {actual!r} != pinned {pinned!r}")


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def assert_record_matches_pin(rec: dict, pinned: dict) -> None:
    """A run's record (``provenance`` aside, as it names the machine) matches the pinned
    record: every pinned metric (a record may carry new metric keys; the caller checks
    which), the sample within ``SAMPLE_ABS``, everything else (hash, config, history,
    flags, status) within the default tolerance or exactly."""
    rec = {k: v for k, v in rec.items() if k != "provenance"}
    pinned = {k: v for k, v in pinned.items() if k != "provenance"}
    assert "metrics" in rec and "sample" in rec, sorted(rec)
    assert_matches_pin({k: v for k, v in rec["metrics"].items() if k in pinned["metrics"]},
                       pinned["metrics"], path="metrics")
    assert_matches_pin(rec["sample"], pinned["sample"], rel=0.0, abs_=SAMPLE_ABS,
                       path="sample")
    assert_matches_pin({k: v for k, v in rec.items() if k not in ("metrics", "sample")},
                       {k: v for k, v in pinned.items() if k not in ("metrics", "sample")})
