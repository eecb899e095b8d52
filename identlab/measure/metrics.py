"""Evaluation metrics (design §5): how close is the learned h = f∘g to a rotation of z?

Inputs are an eval set of pairs one transition apart: embeddings ``h_t, h_t1`` (n, N) of
true latents ``z_t, z_t1`` (n, N). Conventions used throughout:

* **Split.** Anything *fitted* with many parameters (linear regression, CCA directions,
  kNN) is fitted on the first ``fit_fraction`` of the *pairs* and scored on the rest; both
  views of a pair land on the same side, so correlated pairs never straddle the split.
  Within each side the two views are pooled (2·n_fit and 2·n_test rows). The rule, and
  n_fit = round(fit_fraction · n), live in :mod:`identlab.measure.split`.
* **Full set.** Statistics that are not regressions (MCC's assignment, orthogonality,
  Procrustes, ε, δ, SIGReg, alignment, variances) use the whole pooled set (2n rows).
* **Covariances** are population covariances (``ddof=0``), so that δ is exactly a mean
  of per-pair terms (its standard error is then exact for that estimator); the O(1/n)
  difference from ``ddof=1`` is far below the Monte-Carlo error.
* **Degenerate input** (collapsed h, constant columns) never raises and never yields NaN:
  each function says what it returns instead (usually 0 for a correlation, ``None`` for
  an R² whose target has no variance).

The theorem (Klindt, LeCun, Balestriero 2026, Thm 3): for a stationary Gaussian OU world
with one-step correlation ρ and Cov(z) = I, any encoder with

    ε = ‖Cov(h) − I‖_F,    δ = E‖h(z') − h(z)‖² − 2(1−ρ)·tr Cov(h),   D = δ / (2ρ(1−ρ))

satisfies  min_{Q ∈ O(N)} E‖(h − h̄) − (z − z̄)Q‖²  ≤  D + (ε + D)².
2(1−ρ) is the alignment cost of a degree-1 (linear) Hermite component and 2ρ(1−ρ) the
gap to degree 2, so δ measures alignment spent on nonlinear components.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.linalg import orthogonal_procrustes
from scipy.optimize import linear_sum_assignment
from scipy.stats import rankdata
from sklearn.linear_model import LinearRegression
from sklearn.neighbors import KNeighborsRegressor
from sklearn.preprocessing import StandardScaler

from identlab.measure.config import EvalConfig
from identlab.measure.split import heldout_split, n_fit
from identlab.measure.thresholds import SE_MULTIPLE
from identlab.sigreg import (
    QUADRATURE,
    gaussian_expectation,
    get_impl,
    knot_weights,
    random_directions,
)

__all__ = [
    "evaluate", "r2_scores", "r2_linear", "r2_knn", "bulk_rows", "r2_linear_bulk", "cca",
    "correlation_matrix", "mcc",
    "orth_err", "procrustes", "covariance", "epsilon", "delta", "bound_terms",
    "sigreg_stat", "sigreg_pairs_expectation", "alignment", "METRIC_KEYS", "BOUND_KEYS",
]

KNOTS, T_MAX = QUADRATURE.knots, QUADRATURE.t_max  # SIGReg's default quadrature

METRIC_KEYS = (
    "r2_hz", "r2_zh", "r2_hz_dims", "r2_zh_dims", "cca_mean", "cca_min", "cca_corrs",
    "mcc", "mcc_spearman", "orth_err", "procrustes", "procrustes_se", "epsilon", "delta",
    "delta_se", "D",
    "bound", "bound_se", "bound_holds", "nl_r2_hz", "sigreg_stat", "sigreg_stat_expected",
    "sigreg_stat_expected_pairs", "align", "h_var", "h_std_min",
)
BOUND_KEYS = ("epsilon", "delta", "delta_se", "D", "bound", "bound_se", "bound_holds")


# ------------------------------------------------------------------ small helpers
def _constant_columns(x: np.ndarray) -> np.ndarray:
    """(N,) bool: columns with no spread at all (exact check, immune to mean rounding)."""
    return np.ptp(x, axis=0) == 0


def _center(x: np.ndarray) -> np.ndarray:
    """Column-centred copy; exactly constant columns become exact zeros."""
    xc = x - x.mean(axis=0)
    xc[:, _constant_columns(x)] = 0.0
    return xc


def _pool(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Stack the two views: (n, N), (n, N) -> (2n, N)."""
    return np.concatenate([a, b], axis=0)


# ------------------------------------------------------------------ R² (linear, kNN)
def r2_scores(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float | None, list]:
    """Pooled and per-dimension R² of predictions (design §5 ``r2_*``).

    pooled = 1 − Σ_d SS_res,d / Σ_d SS_tot,d (so dims weigh by their variance), per-dim
    = 1 − SS_res,d / SS_tot,d; SS_tot uses the scored set's own mean. A target dim with
    no variance has an undefined R²: its entry is ``None`` and it is left out of the
    pooled sum; the pooled value is ``None`` when every target dim is constant.
    """
    y_true = np.asarray(y_true, float)  # (m, D)
    const = _constant_columns(y_true)
    ss_res = ((y_true - y_pred) ** 2).sum(axis=0)  # (D,)
    ss_tot = (_center(y_true) ** 2).sum(axis=0)  # (D,)
    dims = [None if c else float(1.0 - r / t) for c, r, t in zip(const, ss_res, ss_tot)]
    ok = ~const
    pooled = float(1.0 - ss_res[ok].sum() / ss_tot[ok].sum()) if ok.any() else None
    return pooled, dims


def r2_linear(x_fit, y_fit, x_test, y_test) -> tuple[float | None, list]:
    """Held-out R² of y from x by least squares with intercept (design §5 ``r2_hz/r2_zh``).

    Under the theorem h is a rotation of z, so both directions give R² = 1; any
    invertible affine map does too, so R² alone tests *linear* identifiability only.
    Rank-deficient x (collapsed h) is fine: least squares takes the minimum-norm fit.
    """
    model = LinearRegression().fit(x_fit, y_fit)
    return r2_scores(y_test, model.predict(x_test))


def bulk_rows(z: np.ndarray, quantile: float) -> np.ndarray:
    """Boolean mask of the rows whose radius ‖z‖ is at or below the ``quantile`` of the
    radii of z: the bulk of the law, without its farthest tail."""
    r = np.linalg.norm(np.asarray(z, np.float64), axis=1)
    return r <= np.quantile(r, quantile)


def r2_linear_bulk(x_fit, y_fit, x_test, y_test, quantile: float) -> float | None:
    """:func:`r2_linear` fitted and scored on the bulk rows only (:func:`bulk_rows`, one
    radius cut over fit and test rows together)."""
    keep = bulk_rows(np.concatenate([y_fit, y_test]), quantile)
    kf, kt = keep[:len(y_fit)], keep[len(y_fit):]
    r2, _ = r2_linear(np.asarray(x_fit)[kf], np.asarray(y_fit)[kf], np.asarray(x_test)[kt],
                      np.asarray(y_test)[kt])
    return None if r2 is None or not np.isfinite(r2) else float(r2)


def r2_knn(x_fit, y_fit, x_test, y_test, k: int = 10) -> tuple[float | None, list]:
    """Held-out R² of y from standardized x by k-nearest-neighbour regression.

    design §5 ``nl_r2_hz``: how much of z survives in h at all (information kept), with
    no linearity assumed. High nl_r2 with low linear R² means h is an invertible but
    nonlinear function of z: identified up to a nonlinear map, not up to a rotation.
    Constant x columns are left unscaled (StandardScaler's rule); a collapsed h gives
    R² ≈ 0 (the neighbours are arbitrary, the prediction is about the mean).
    """
    scaler = StandardScaler().fit(x_fit)
    k = max(1, min(k, len(x_fit)))
    model = KNeighborsRegressor(n_neighbors=k).fit(scaler.transform(x_fit), y_fit)
    return r2_scores(y_test, model.predict(scaler.transform(x_test)))


# ------------------------------------------------------------------ CCA
def _whitener(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (N,), W (N, r)) with Cov(x W) = I on x's column space of rank r.

    Rank by the numpy rule (singular values above max·max(m, N)·eps); r = 0 for a
    collapsed x, giving an (N, 0) whitener.
    """
    mean = x.mean(axis=0)
    xc = _center(x)  # (m, N)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    tol = (s.max() if s.size else 0.0) * max(xc.shape) * np.finfo(float).eps
    keep = s > tol if s.size and s.max() > 0 else np.zeros_like(s, dtype=bool)
    w = vt[keep].T * (math.sqrt(len(x)) / s[keep])  # (N, r)
    return mean, w


def _paired_correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(k,) Pearson correlation of a[:, i] with b[:, i]; 0 where either has no variance."""
    ac, bc = _center(a), _center(b)
    num = (ac * bc).sum(axis=0)
    den = np.sqrt((ac**2).sum(axis=0) * (bc**2).sum(axis=0))
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def cca(h, z, h_test=None, z_test=None) -> np.ndarray:
    """Canonical correlations between h and z, sorted descending, length min(N_h, N_z).

    design §5 ``cca_*``: centre and whiten both, SVD of the whitened cross-covariance.
    With only (h, z) these are the in-sample canonical correlations. With a test set the
    canonical directions come from (h, z) and the reported values are the correlations
    of the paired canonical variates on (h_test, z_test): a held-out estimate, free of
    the in-sample upward bias (and may then be slightly negative for junk directions).
    All ones iff h is an invertible affine map of z. Directions missing because h or z
    is rank-deficient (collapsed) count as correlation 0.
    """
    h, z = np.asarray(h, float), np.asarray(z, float)
    k_out = min(h.shape[1], z.shape[1])
    mh, wh = _whitener(h)  # (Nh, rh)
    mz, wz = _whitener(z)  # (Nz, rz)
    cross = (_center(h) @ wh).T @ (_center(z) @ wz) / len(h)  # (rh, rz)
    u, s, vt = np.linalg.svd(cross, full_matrices=False)
    k = min(wh.shape[1], wz.shape[1])
    if h_test is None:
        corrs = np.clip(s[:k], 0.0, 1.0)
    else:
        a = (np.asarray(h_test, float) - mh) @ wh @ u[:, :k]  # (m, k)
        b = (np.asarray(z_test, float) - mz) @ wz @ vt[:k].T  # (m, k)
        corrs = _paired_correlations(a, b)
    out = np.zeros(k_out)
    out[:k] = corrs
    return np.sort(out)[::-1]


# ------------------------------------------------------------------ MCC
def correlation_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(Na, Nb) Pearson correlations between columns of a and b; 0 for a constant column."""
    ac, bc = _center(np.asarray(a, float)), _center(np.asarray(b, float))
    sa, sb = np.sqrt((ac**2).sum(axis=0)), np.sqrt((bc**2).sum(axis=0))  # (Na,), (Nb,)
    an = np.divide(ac, sa, out=np.zeros_like(ac), where=sa > 0)
    bn = np.divide(bc, sb, out=np.zeros_like(bc), where=sb > 0)
    return an.T @ bn


def mcc(h, z, method: str = "pearson") -> float:
    """Mean correlation coefficient after the best one-to-one matching of h- to z-dims.

    design §5 ``mcc``: |correlation| matrix, ``linear_sum_assignment`` maximising the
    matched total, mean over the min(N_h, N_z) matched pairs. Equals 1 under permutation,
    sign flips and per-dim affine maps; with ``method="spearman"`` (ranks first) also
    under any per-dim strictly monotone map. A rotation of z that mixes dims scores < 1
    although the theorem counts it as success: MCC tests *axis* identifiability, which
    the theorem does not promise (h is identified up to O(N)). Constant h-dims score 0.
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman', not {method!r}")
    if method == "spearman":
        h, z = rankdata(h, axis=0), rankdata(z, axis=0)
    c = np.clip(np.abs(correlation_matrix(h, z)), 0.0, 1.0)  # (Nh, Nz)
    rows, cols = linear_sum_assignment(c, maximize=True)
    return float(c[rows, cols].mean())


# ------------------------------------------------------------------ rotation tests
def orth_err(h, z) -> float:
    """‖AᵀA − I‖_F / √N_h, A (N_z, N_h) from least squares h ≈ zA + b (design §5).

    0 iff the best linear map from z to h is orthogonal. Meaningful when h is close to
    linear in z (check r2_zh); for collapsed h, A = 0 and the error is 1.
    """
    a = LinearRegression().fit(z, h).coef_.T  # (Nz, Nh)
    n_h = a.shape[1]
    return float(np.linalg.norm(a.T @ a - np.eye(n_h)) / math.sqrt(n_h))


def procrustes(h, z) -> float:
    """min over orthogonal Q of mean_i ‖(h_i − h̄) − (z_i − z̄)Q‖² (design §5, Thm 3 LHS).

    Both sides centred (the theorem's h is a rotation up to translation); Q ranges over
    all of O(N), reflections included; the mean is over samples of the squared norm
    summed over dims, so a unit-variance dim fully lost costs about 1. Collapsed h gives
    E‖z − z̄‖² (= N for standardized z).
    """
    return float(procrustes_residuals(h, z).mean())


def procrustes_residuals(h, z) -> np.ndarray:
    """Per-sample squared residuals ‖(h_i − h̄) − (z_i − z̄)Q‖² at the optimal Q; their
    mean is :func:`procrustes`, their spread its Monte-Carlo error."""
    hc, zc = _center(np.asarray(h, float)), _center(np.asarray(z, float))  # (m, N)
    if hc.shape != zc.shape:
        raise ValueError(f"procrustes needs equal shapes, got {hc.shape} and {zc.shape}")
    q, _ = orthogonal_procrustes(zc, hc)  # (N, N): argmin ‖zc Q − hc‖_F
    return ((hc - zc @ q) ** 2).sum(axis=1)


# ------------------------------------------------------------------ Thm 3 terms
def covariance(h) -> np.ndarray:
    """(N, N) population covariance (ddof=0); exactly 0 for constant columns."""
    hc = _center(np.asarray(h, float))
    return hc.T @ hc / len(hc)


def epsilon(h) -> float:
    """ε = ‖Cov(h) − I‖_F (Thm 3): distance from whiteness. √N for a collapsed h."""
    c = covariance(h)
    return float(np.linalg.norm(c - np.eye(len(c))))


def _check_rho(rho) -> float:
    if isinstance(rho, (Sequence, np.ndarray)) or not 0.0 < float(rho) < 1.0:
        raise ValueError(f"rho must be a single number in (0, 1), got {rho!r}")
    return float(rho)


def delta(h_t, h_t1, rho: float) -> tuple[float, float]:
    """(δ, SE(δ)) with δ = E‖h(z') − h(z)‖² − 2(1−ρ)·tr Cov(h) (Thm 3), not clipped.

    Cov(h) is the population covariance of the pooled views (2n rows, pooled mean m).
    Then δ is exactly the mean over pairs of

        u_i = ‖h_t1,i − h_t,i‖² − (1−ρ)(‖h_t,i − m‖² + ‖h_t1,i − m‖²),

    and SE(δ) = std(u, ddof=1)/√n. This *propagates* the sampling error of tr Cov(h)
    (including its correlation with the alignment term, which makes SE much smaller
    than treating tr Cov as fixed); only the O(1/n) effect of estimating m is ignored.
    Assumes the n pairs are independent. A collapsed h gives (0, 0).
    """
    rho = _check_rho(rho)
    h_t, h_t1 = np.asarray(h_t, float), np.asarray(h_t1, float)  # (n, N) each
    hc = _center(_pool(h_t, h_t1))  # (2n, N), centred at the pooled mean m
    n = len(h_t)
    step = ((h_t1 - h_t) ** 2).sum(axis=1)  # (n,)
    spread = (hc[:n] ** 2).sum(axis=1) + (hc[n:] ** 2).sum(axis=1)  # (n,)
    u = step - (1.0 - rho) * spread  # (n,)
    se = float(u.std(ddof=1) / math.sqrt(len(u))) if len(u) > 1 else 0.0
    return float(u.mean()), se


def bound_terms(epsilon: float, delta: float, delta_se: float, rho: float) -> dict:
    """Thm 3's right-hand side from (ε, δ, SE(δ), ρ): {"D", "bound", "bound_se"}.

    D = δ / (2ρ(1−ρ)); bound = D + (ε + D)². ε is treated as fixed, and D as Gaussian
    with SE s = SE(δ) / (2ρ(1−ρ)). bound_se is the delta method,
    |∂bound/∂D|·s = |1 + 2(ε + D)|·s, plus the second-order term of a Gaussian
    quadratic: bound_se² = (1 + 2(ε + D))²·s² + 2s⁴. This is the exact variance of
    D + (ε + D)² for Gaussian D. The extra term keeps the SE positive where the
    first-order term vanishes (ε + D = −½), and it is negligible elsewhere.
    """
    rho = _check_rho(rho)
    gap = 2.0 * rho * (1.0 - rho)
    d, s = delta / gap, delta_se / gap
    slope = 1.0 + 2.0 * (epsilon + d)
    return {"D": d, "bound": d + (epsilon + d) ** 2,
            "bound_se": math.sqrt((slope * s) ** 2 + 2.0 * s**4)}


# ------------------------------------------------------------------ SIGReg, alignment
def sigreg_stat(h, slices: int = 1024, seed: int = 0, knots: int = KNOTS,
                t_max: float = T_MAX, impl: str = "auto", chunk_elems: int = 1 << 22) -> float:
    """SIGReg statistic of h (M, N) over ``slices`` seeded unit directions (design §4).

    The formula is :func:`identlab.sigreg.sigreg_direct`'s, run in float64 by
    ``identlab.sigreg.get_impl(impl)`` (``"auto"``: the angle-addition recurrence, same
    value, ~1/knots of the transcendentals; ``"direct"``: the reference). Directions come
    from a ``torch.Generator`` seeded with ``seed``; slices are processed in chunks so the
    (M, S, knots) working set of the direct path stays near ``chunk_elems`` elements.
    The statistic is M times a squared characteristic-function distance: for M
    *independent* Gaussian samples its mean is :func:`identlab.sigreg.gaussian_expectation`
    (≈ 1.05) whatever M, while for a non-Gaussian h it grows linearly with M, so compare
    values only at equal sample counts. Not centred: a shifted or rescaled Gaussian is
    penalised, as in training. A collapsed h is finite (every projection is 0).
    """
    fn = get_impl(impl)
    x = torch.as_tensor(np.asarray(h, float), dtype=torch.float64, device="cpu")[None]  # (1, M, N)
    gen = torch.Generator().manual_seed(int(seed))
    dirs = random_directions(x.shape[2], slices, gen, dtype=torch.float64)[None]  # (1, N, S)
    step = max(1, chunk_elems // (x.shape[1] * knots))
    total = 0.0
    for lo in range(0, slices, step):
        part = dirs[:, :, lo:lo + step]  # (1, N, s)
        total += float(fn(x, part, knots, t_max)[0]) * part.shape[2]
    return total / slices


def sigreg_pairs_expectation(rho: float, knots: int = KNOTS, t_max: float = T_MAX) -> float:
    """Mean SIGReg statistic of 2n pooled Gaussian samples forming n pairs of correlation ρ.

    Each pair adds a covariance term: E[stat] = Σ_j w_j (1 − 2φ_j² + φ_j^{2(1−ρ)}), which
    is gaussian_expectation at ρ = 0 and twice it at ρ = 1. The reference for
    ``sigreg_stat`` on pooled eval pairs when h is the theorem's optimum (a rotation of
    a Gaussian OU latent, whose every projection has lag correlation ρ).
    """
    _, phi, w = knot_weights(knots, t_max, device="cpu")
    return float((w * (1 - 2 * phi**2 + phi ** (2 * (1 - rho)))).sum())


def alignment(h_t, h_t1) -> float:
    """The LeJEPA alignment term on the eval pairs (design §4, no predictor).

    mean over (view, sample, dim) of (h̄ − h_v)², h̄ the mean of the two views. Since
    h̄ − h_t = (h_t1 − h_t)/2 = −(h̄ − h_t1), this equals ¼·mean over (sample, dim) of
    (h_t − h_t1)², i.e. E‖h(z') − h(z)‖² / (4N).
    """
    h_t, h_t1 = np.asarray(h_t, float), np.asarray(h_t1, float)
    hbar = 0.5 * (h_t + h_t1)  # (n, N)
    return float(np.mean([(hbar - h_t) ** 2, (hbar - h_t1) ** 2]))


# ------------------------------------------------------------------ evaluate
def _json_clean(x):
    """numpy scalars/arrays -> python; NaN/inf -> None (output passes allow_nan=False)."""
    if isinstance(x, dict):
        return {k: _json_clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_json_clean(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x


def _check_inputs(h_t, h_t1, z_t, z_t1, fit_fraction) -> tuple[np.ndarray, ...]:
    arrs = tuple(np.asarray(a, float) for a in (h_t, h_t1, z_t, z_t1))
    shapes = {a.shape for a in arrs}
    if len(shapes) != 1 or arrs[0].ndim != 2:
        raise ValueError(f"h_t, h_t1, z_t, z_t1 must share one (n, N) shape, got "
                         f"{[a.shape for a in arrs]}")
    if not all(np.isfinite(a).all() for a in arrs[2:]):
        raise ValueError("z_t, z_t1 contain non-finite values")
    n = arrs[0].shape[0]
    f = n_fit(n, fit_fraction)
    if not 0.0 < fit_fraction < 1.0 or f < 2 or n - f < 2:
        raise ValueError(f"need fit_fraction in (0, 1) leaving >= 2 pairs per side "
                         f"(n={n}, fit_fraction={fit_fraction})")
    return arrs


def _fitted_metrics(h, z, fit_fraction: float, knn: int) -> dict:
    """Metrics fitted on the first ``fit_fraction`` of the pairs and scored on the rest,
    both views pooled (h, z: the 2n stacked rows; :func:`~identlab.measure.split.heldout_split`)."""
    fit, test = heldout_split(len(h) // 2, fit_fraction)
    hf, zf, hs, zs = h[fit], z[fit], h[test], z[test]  # (2f, N), (2s, N)
    r2_hz, r2_hz_dims = r2_linear(hf, zf, hs, zs)
    r2_zh, r2_zh_dims = r2_linear(zf, hf, zs, hs)
    nl_r2, _ = r2_knn(hf, zf, hs, zs, k=knn)
    corrs = cca(hf, zf, hs, zs)
    return {"r2_hz": r2_hz, "r2_zh": r2_zh, "r2_hz_dims": r2_hz_dims,
            "r2_zh_dims": r2_zh_dims, "cca_mean": float(corrs.mean()),
            "cca_min": float(corrs.min()), "cca_corrs": corrs, "nl_r2_hz": nl_r2}


def _bound_metrics(h_t, h_t1, h, proc: float, proc_se: float, rho: float | None) -> dict:
    """Thm 3 terms (all None without ρ): ε, δ ± SE, D, bound ± SE, bound_holds.

    The theorem compares population quantities; both sides are estimated from the eval
    set, so the bound holds "within Monte-Carlo error" when procrustes ≤ bound +
    SE_MULTIPLE·sqrt(bound_se² + procrustes_se²) (SE_MULTIPLE = 3)."""
    if rho is None:
        return dict.fromkeys(BOUND_KEYS)
    eps = epsilon(h)
    dlt, dlt_se = delta(h_t, h_t1, rho)
    terms = bound_terms(eps, dlt, dlt_se, rho)
    holds = proc <= terms["bound"] + SE_MULTIPLE * math.hypot(terms["bound_se"], proc_se)
    return {"epsilon": eps, "delta": dlt, "delta_se": dlt_se, **terms, "bound_holds": holds}


def evaluate(h_t, h_t1, z_t, z_t1, cfg: EvalConfig | None = None, *, rho: float | None,
             seed: int = 0) -> dict:
    """All design §5 metrics for one encoder's eval pairs, as a JSON-able dict.

    h_t, h_t1, z_t, z_t1: (n, N) each; row i of the t1 arrays is one transition after
    row i of the t arrays. ``rho``: the world's scalar one-step correlation when Thm 3
    applies (stationary Gaussian OU), else None, which sets every bound key to None.

    Fitted metrics (r2_hz, r2_zh and their ``_dims`` lists, cca_mean / cca_min /
    cca_corrs, nl_r2_hz) use the first ``fit_fraction`` of the pairs to fit and the rest
    to score (CCA: directions from the fit part, correlations on the held-out part). The
    others (mcc, mcc_spearman, orth_err, procrustes, epsilon, delta(_se), D, bound(_se),
    bound_holds, sigreg_stat, align, h_var, h_std_min) use all 2n pooled rows.
    ``bound_holds`` = procrustes ≤ bound + SE_MULTIPLE·sqrt(bound_se² + procrustes_se²)
    (thresholds.SE_MULTIPLE = 3), where procrustes_se is the spread of the per-sample
    residuals over √n (pairs, not rows).
    ``sigreg_stat`` pools the two views, which are time-correlated: compare it with
    ``sigreg_stat_expected_pairs`` (Gaussian pairs of correlation ρ; None without ρ)
    rather than with ``sigreg_stat_expected`` (independent Gaussian samples, ≈ 1.05).

    ``cfg`` (an :class:`EvalConfig`, default ``EvalConfig()``) supplies fit_fraction, knn
    and sigreg_slices, so a call gives the same numbers as a record of the same config.

    Values are python floats, lists, bools or None — never NaN. If h contains NaN/inf
    (a diverged encoder) every metric is None and ``h_finite`` is False.
    """
    cfg = EvalConfig() if cfg is None else cfg
    fit_fraction, knn, sigreg_slices = cfg.fit_fraction, cfg.knn, cfg.sigreg_slices
    h_t, h_t1, z_t, z_t1 = _check_inputs(h_t, h_t1, z_t, z_t1, fit_fraction)
    if rho is not None:
        rho = _check_rho(rho)
    if not (np.isfinite(h_t).all() and np.isfinite(h_t1).all()):
        return {**dict.fromkeys(METRIC_KEYS), "h_finite": False}
    h, z = _pool(h_t, h_t1), _pool(z_t, z_t1)  # (2n, N)
    res = procrustes_residuals(h, z)
    proc = float(res.mean())
    # the two views of a pair are correlated: count pairs, not pooled rows (conservative)
    proc_se = float(res.std(ddof=1) / math.sqrt(len(h_t)))
    h_std = np.sqrt(np.diag(covariance(h)))  # (N,)
    out = {
        **_fitted_metrics(h, z, fit_fraction, knn),
        "mcc": mcc(h, z), "mcc_spearman": mcc(h, z, "spearman"),
        "orth_err": orth_err(h, z), "procrustes": proc, "procrustes_se": proc_se,
        **_bound_metrics(h_t, h_t1, h, proc, proc_se, rho),
        "sigreg_stat": sigreg_stat(h, sigreg_slices, seed),
        "sigreg_stat_expected": gaussian_expectation(KNOTS, T_MAX),
        "sigreg_stat_expected_pairs": None if rho is None else sigreg_pairs_expectation(rho),
        "align": alignment(h_t, h_t1),
        "h_var": float(np.mean(h_std**2)), "h_std_min": float(h_std.min()),
        "h_finite": True,
    }
    return _json_clean(out)
