"""Symbolic and numeric facts behind LeJEPA's linear-identifiability theorem (design §5).

The forward direction of the theorem rests on the spectrum of the Ornstein–Uhlenbeck (OU)
transition operator  (T_ρ f)(z) = E[f(ρz + √(1−ρ²)η)],  η ~ N(0, 1):

* the probabilists' Hermite polynomials He_k are orthogonal under N(0, 1), with
  E[He_j He_k] = k!·δ_jk;
* they are its eigenfunctions (Mehler): T_ρ He_k = ρ^k He_k;
* hence a unit-variance degree-k feature costs 2(1 − ρ^k) in alignment, and the cheapest
  non-linear feature (degree 2) costs 2ρ(1 − ρ) more than the linear one. Alignment
  therefore prefers degree 1 — the rotation of z — once SIGReg pins the output law to
  N(0, I).

The converse direction (only Gaussian latents work) is Cramér's decomposition theorem:
a non-trivial linear mix of independent non-Gaussian components is never Gaussian, so no
linear map of such latents can satisfy SIGReg. The remaining facts cover stationarity
(which noise keeps N(0, I) or the Laplace law invariant), the Thm 3 approximation bound,
and the per-dimension-ρ "timescales" failure of whitening-only objectives.

Every public ``*`` fact function returns a :class:`Fact`: a boolean ``holds`` plus the
evidence (sympy residuals or numbers) so tests can assert it and a report can print it.
Symbolic Gaussian expectations are exact: polynomials are expanded and each monomial is
replaced by its moment E[z^m] = (m − 1)!! (0 for odd m) — no symbolic integration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from types import MappingProxyType
from typing import Any

import numpy as np
import sympy as sp
import torch
from numpy.polynomial import hermite_e
from scipy import linalg, stats

from identlab.sigreg import QUADRATURE, gaussian_expectation, knot_weights, sigreg_direct

__all__ = [
    "Fact", "MCEstimate", "Z", "ETA", "RHO", "U",
    "gaussian_moment", "gaussian_expect", "hermite_poly", "ou_conditional_expectation",
    "ou_alignment_cost_expr",
    "hermite_orthogonality", "mehler_eigenrelation", "alignment_cost", "spectral_gap",
    "linear_gaussian_stationarity", "ou_stationarity", "ou_wrong_noise",
    "laplace_cf", "laplace_ar_innovation",
    "sample_standardized", "sigreg_null_quantile", "cramer_demo",
    "approx_bound", "approx_bound_small", "approx_bound_comparison",
    "hermite_alignment_mc", "hermite_alignment_analytic", "hermite_alignment",
    "whitening_prefers_he2", "timescale_boundary",
    "all_facts",
]

# Symbols: z ~ N(0,1) the latent, η ~ N(0,1) the OU innovation, ρ ∈ (0,1) the one-step
# correlation, u the characteristic-function argument. S stands for √(1 − ρ²) while
# expanding (keeps sympy in a polynomial ring); it is eliminated at the end.
Z = sp.Symbol("z", real=True)
ETA = sp.Symbol("eta", real=True)
RHO = sp.Symbol("rho", positive=True)
U = sp.Symbol("u", real=True)
_S = sp.Symbol("s", positive=True)


# ---------------------------------------------------------------------------------------
# Result containers
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fact:
    """One checked statement: ``holds`` plus the evidence that decided it."""

    name: str
    claim: str
    holds: bool
    evidence: Mapping[str, Any] = field(default_factory=dict)
    headline: str = ""  # the key numbers, one line, for reports

    def __post_init__(self) -> None:
        object.__setattr__(self, "holds", bool(self.holds))
        object.__setattr__(self, "evidence", MappingProxyType(dict(self.evidence)))

    def summary(self) -> str:
        mark = "holds" if self.holds else "FAILS"
        tail = f" — {self.headline}" if self.headline else ""
        return f"[{mark}] {self.name}: {self.claim}{tail}"


@dataclass(frozen=True)
class MCEstimate:
    """A Monte-Carlo mean with its standard error (sample std / √n)."""

    mean: float
    se: float
    n: int


# ---------------------------------------------------------------------------------------
# Exact Gaussian calculus on polynomials
# ---------------------------------------------------------------------------------------

def gaussian_moment(m: int) -> sp.Integer:
    """E[z^m] for z ~ N(0, 1): (m − 1)!! for even m, 0 for odd m."""
    if m % 2:
        return sp.Integer(0)
    return sp.factorial2(m - 1)  # factorial2(−1) = 1 covers m = 0


def gaussian_expect(expr: sp.Expr, *variables: sp.Symbol) -> sp.Expr:
    """E[expr] over independent N(0, 1) ``variables``; expr must be polynomial in them."""
    poly = sp.Poly(sp.expand(expr), *variables)
    total = sp.Integer(0)
    for powers, coeff in poly.terms():
        moment = math.prod(int(gaussian_moment(p)) for p in powers)
        if moment:
            total += coeff * moment
    return sp.expand(total)


@cache
def hermite_poly(k: int, x: sp.Symbol = Z) -> sp.Expr:
    """Probabilists' Hermite He_k(x) from He_{k+1} = x·He_k − k·He_{k−1}."""
    if k < 0:
        raise ValueError("degree must be >= 0")
    prev, cur = sp.Integer(1), x
    if k == 0:
        return prev
    for j in range(1, k):
        prev, cur = cur, sp.expand(x * cur - j * prev)
    return cur


def _eliminate_s(expr: sp.Expr) -> sp.Expr:
    """Put √(1 − ρ²) back for S; only even powers survive a Gaussian average over η."""
    return sp.expand(expr.subs(_S, sp.sqrt(1 - RHO**2)))


def ou_conditional_expectation(poly_in_z: sp.Expr) -> sp.Expr:
    """(T_ρ f)(z) = E_η[f(ρz + √(1−ρ²)η)] for a polynomial f(z), exactly."""
    shifted = poly_in_z.subs(Z, RHO * Z + _S * ETA)
    return _eliminate_s(gaussian_expect(shifted, ETA))


@cache
def ou_alignment_cost_expr(k: int) -> sp.Expr:
    """E[(f(z') − f(z))²] for f = He_k/√k! under one OU(ρ) step, by direct averaging.

    Computed from the pair law (z, η) itself — not from Mehler — so it is an independent
    check of the spectral prediction 2(1 − ρ^k).
    """
    he = hermite_poly(k)
    diff = he.subs(Z, RHO * Z + _S * ETA) - he
    return sp.expand(_eliminate_s(gaussian_expect(diff**2, Z, ETA)) / sp.factorial(k))


# ---------------------------------------------------------------------------------------
# 1–3. Hermite spectrum of the OU operator
# ---------------------------------------------------------------------------------------

def hermite_orthogonality(max_degree: int = 8,
                          basis: Callable[[int], sp.Expr] | None = None) -> Fact:
    """E[He_j He_k] = k!·δ_jk under N(0, 1) for all j, k ≤ max_degree.

    ``basis`` (k → polynomial in Z) replaces He_k, for negative controls (monomials fail).
    """
    basis = basis or hermite_poly
    polys = [sp.expand(basis(k)) for k in range(max_degree + 1)]
    gram = sp.zeros(max_degree + 1, max_degree + 1)
    for j in range(max_degree + 1):
        for k in range(j, max_degree + 1):
            gram[j, k] = gram[k, j] = gaussian_expect(polys[j] * polys[k], Z)
    expected = sp.diag(*[sp.factorial(k) for k in range(max_degree + 1)])
    residual = gram - expected
    worst = max(abs(v) for v in residual)
    return Fact(
        name="hermite_orthogonality",
        claim=f"E[He_j He_k] = k!·δ_jk under N(0,1), j,k ≤ {max_degree}",
        holds=residual.is_zero_matrix,
        evidence={"gram": gram, "expected": expected, "residual": residual,
                  "max_abs_residual": worst},
        headline=f"Gram matrix {max_degree + 1}×{max_degree + 1}, max |residual| = {worst}",
    )


def mehler_eigenrelation(max_degree: int = 8,
                         eigenvalue: Callable[[int], sp.Expr] | None = None) -> Fact:
    """E[He_k(ρz + √(1−ρ²)η) | z] = ρ^k He_k(z) exactly, for k ≤ max_degree.

    The Hermite polynomials diagonalize the OU transition operator, with eigenvalue ρ^k
    for degree k. ``eigenvalue`` (k → expr in RHO) replaces ρ^k for negative controls.
    """
    eigenvalue = eigenvalue or (lambda k: RHO**k)
    residuals = {}
    for k in range(max_degree + 1):
        he = hermite_poly(k)
        residuals[k] = sp.expand(ou_conditional_expectation(he) - eigenvalue(k) * he)
    bad = [k for k, r in residuals.items() if r != 0]
    return Fact(
        name="mehler_eigenrelation",
        claim=f"T_ρ He_k = ρ^k He_k (OU eigenfunctions), k ≤ {max_degree}",
        holds=not bad,
        evidence={"residuals": residuals, "failing_degrees": bad},
        headline="all residuals simplify to 0" if not bad else f"nonzero at k = {bad}",
    )


def alignment_cost(k: int, claimed: sp.Expr | None = None) -> Fact:
    """A unit-variance degree-k feature He_k/√k! costs E[(f(z')−f(z))²] = 2(1 − ρ^k).

    2E[f²] − 2E[f(z)·(T_ρ f)(z)] = 2 − 2ρ^k by orthogonality + Mehler; here the cost is
    computed directly from the pair law and compared with ``claimed`` (default 2(1−ρ^k)).
    """
    claimed = 2 * (1 - RHO**k) if claimed is None else claimed
    cost = ou_alignment_cost_expr(k)
    residual = sp.simplify(cost - claimed)
    return Fact(
        name=f"alignment_cost[k={k}]",
        claim=f"degree-{k} unit-variance feature costs 2(1 − ρ^{k}) in alignment",
        holds=residual == 0,
        evidence={"cost": cost, "claimed": claimed, "residual": residual},
        headline=f"cost = {sp.factor(cost)}",
    )


def spectral_gap() -> Fact:
    """cost(2) − cost(1) = 2ρ(1 − ρ), maximal (= 1/2) at ρ = 1/2.

    The gap is what alignment pays for swapping a linear output for the cheapest
    non-linear one; it vanishes as ρ → 0 (no temporal signal) and ρ → 1 (no motion).
    """
    gap = sp.factor(ou_alignment_cost_expr(2) - ou_alignment_cost_expr(1))
    residual = sp.simplify(gap - 2 * RHO * (1 - RHO))
    d1 = sp.diff(gap, RHO)
    crit = sp.solve(sp.Eq(d1, 0), RHO)
    d2 = sp.diff(gap, RHO, 2)
    is_max = crit == [sp.Rational(1, 2)] and bool(d2.subs(RHO, crit[0]) < 0)
    peak = gap.subs(RHO, sp.Rational(1, 2))
    return Fact(
        name="spectral_gap",
        claim="cost(2) − cost(1) = 2ρ(1−ρ), maximal at ρ = 1/2",
        holds=residual == 0 and is_max and peak == sp.Rational(1, 2),
        evidence={"gap": gap, "residual": residual, "derivative": d1,
                  "critical_points": crit, "second_derivative": d2, "peak_value": peak},
        headline=f"gap = {gap}; d/dρ = {d1} = 0 at ρ = {crit}; peak {peak}",
    )


# ---------------------------------------------------------------------------------------
# 4. Which Gaussian noise keeps N(0, I) stationary
# ---------------------------------------------------------------------------------------

def linear_gaussian_stationarity(A, Q, tol: float = 1e-9) -> Fact:
    """z' = Az + η, η ~ N(0, Q): the stationary covariance Σ = AΣAᵀ + Q equals I.

    For stable A the Lyapunov map Σ ↦ Σ − AΣAᵀ is injective, so Σ = I iff
    Q = I − AAᵀ (the OU noise is exactly what A removes). Returns holds = (Σ ≈ I).
    """
    A = np.atleast_2d(np.asarray(A, dtype=float))
    Q = np.atleast_2d(np.asarray(Q, dtype=float))
    n = A.shape[0]
    eye = np.eye(n)
    radius = float(np.max(np.abs(np.linalg.eigvals(A))))
    q_gap = float(np.linalg.norm(Q - (eye - A @ A.T)))
    q_psd = bool(np.all(np.linalg.eigvalsh((Q + Q.T) / 2) >= -tol))
    if radius >= 1.0:  # no stationary law: the covariance grows without bound
        sigma, dev = None, math.inf
    else:
        sigma = linalg.solve_discrete_lyapunov(A, Q)
        dev = float(np.linalg.norm(sigma - eye))
    holds = dev <= tol
    return Fact(
        name="linear_gaussian_stationarity",
        claim="z' = Az + N(0,Q) keeps N(0,I) iff Q = I − AAᵀ",
        holds=holds,
        evidence={"A": A, "Q": Q, "sigma": sigma, "sigma_minus_I": dev,
                  "Q_minus_target": q_gap, "spectral_radius": radius, "Q_psd": q_psd,
                  "iff_consistent": holds == (q_gap <= tol)},
        headline=f"‖Σ − I‖ = {dev:.2e}, ‖Q − (I − AAᵀ)‖ = {q_gap:.2e}",
    )


def ou_stationarity(rho) -> Fact:
    """Per-dim OU, A = diag ρ, Q = diag(1 − ρ²): the special case used by the ``ou`` world."""
    rho = np.atleast_1d(np.asarray(rho, dtype=float))
    fact = linear_gaussian_stationarity(np.diag(rho), np.diag(1 - rho**2))
    return replace(fact, name="ou_stationarity",
                   claim=f"OU with ρ = {rho.tolist()} and noise var 1 − ρ² keeps N(0,I)")


def ou_wrong_noise(rho) -> Fact:
    """Mis-scaled noise var (1 − ρ) instead of 1 − ρ² drifts to Σ = 1/(1 + ρ) ≠ I.

    holds = the mis-scaled world is indeed *not* stationary at N(0, I).
    """
    rho = np.atleast_1d(np.asarray(rho, dtype=float))
    inner = linear_gaussian_stationarity(np.diag(rho), np.diag(1 - rho))
    sigma = np.diag(inner.evidence["sigma"])
    return Fact(
        name="ou_wrong_noise",
        claim="OU with noise var 1 − ρ (not 1 − ρ²) does not keep N(0,I)",
        holds=not inner.holds and np.allclose(sigma, 1 / (1 + rho)),
        evidence={**inner.evidence, "stationary_variances": sigma},
        headline=f"stationary variances {np.round(sigma, 4).tolist()} = 1/(1+ρ)",
    )


# ---------------------------------------------------------------------------------------
# 5. Laplace AR(1): a stationary, additive, non-Gaussian world
# ---------------------------------------------------------------------------------------

def laplace_cf(u: sp.Expr) -> sp.Expr:
    """Characteristic function of the unit-variance Laplace (scale b = 1/√2)."""
    return 1 / (1 + u**2 / 2)


def laplace_ar_innovation(cf: Callable[[sp.Expr], sp.Expr] | None = None) -> Fact:
    """φ(u)/φ(ρu) = ρ² + (1 − ρ²)·φ(u) for the Laplace cf φ = φ_L.

    z' = ρz + ε keeps z's law iff φ_ε(u) = φ(u)/φ(ρu). For Laplace that ratio is the cf of
    "ε = 0 w.p. ρ², else Laplace", so the world is stationary and additive but not
    Gaussian — the converse of the theorem needs such worlds. ``cf`` swaps the law (the
    identity then fails, e.g. for the Gaussian cf).
    """
    cf = cf or laplace_cf
    ratio = cf(U) / cf(RHO * U)
    mixture = RHO**2 + (1 - RHO**2) * cf(U)
    residual = sp.simplify(sp.together(ratio - mixture))
    # A numeric sweep guards against "simplify could not decide" being read as a proof.
    f = sp.lambdify((U, RHO), ratio - mixture, "numpy")
    uu, rr = np.meshgrid(np.linspace(0.1, 6.0, 40), np.linspace(0.05, 0.95, 19))
    numeric = float(np.max(np.abs(f(uu, rr))))
    innovation_var = sp.simplify(-sp.diff(mixture, U, 2).subs(U, 0))
    return Fact(
        name="laplace_ar_innovation",
        claim="φ_L(u)/φ_L(ρu) = ρ² + (1 − ρ²)φ_L(u): innovation = 0 w.p. ρ², else Laplace",
        holds=residual == 0 and numeric < 1e-12,
        evidence={"ratio": sp.simplify(ratio), "mixture": mixture, "residual": residual,
                  "max_abs_numeric_residual": numeric, "innovation_variance": innovation_var},
        headline=f"residual = {residual}; innovation variance = {innovation_var}",
    )


# ---------------------------------------------------------------------------------------
# 6. Cramér: linear mixes of non-Gaussian components are not Gaussian
# ---------------------------------------------------------------------------------------

_SQRT3 = math.sqrt(3.0)
# Standardized (mean 0, variance 1) samplers and their excess kurtosis κ.
_LAWS: dict[str, tuple[Callable[[np.random.Generator, tuple], np.ndarray], float]] = {
    "gaussian": (lambda rng, size: rng.standard_normal(size), 0.0),
    "laplace": (lambda rng, size: rng.laplace(0.0, 1 / math.sqrt(2.0), size), 3.0),
    "uniform": (lambda rng, size: rng.uniform(-_SQRT3, _SQRT3, size), -1.2),
}


def sample_standardized(law: str, size, rng: np.random.Generator) -> np.ndarray:
    """i.i.d. unit-variance draws of ``law`` ∈ {gaussian, laplace, uniform}."""
    if law not in _LAWS:
        raise ValueError(f"unknown law {law!r}; choose from {sorted(_LAWS)}")
    return _LAWS[law][0](rng, size)


@cache
def sigreg_null_quantile(q: float = 0.999, knots: int = QUADRATURE.knots,
                         t_max: float = QUADRATURE.t_max,
                         draws: int = 100_000, seed: int = 0) -> float:
    """q-quantile of the 1-D SIGReg statistic at an exact Gaussian (large-n limit).

    √n(ecf − φ) at the knots is asymptotically Gaussian with Cov[cos tZ, cos sZ] =
    (φ(t−s) + φ(t+s))/2 − φ(t)φ(s), Cov[sin tZ, sin sZ] = (φ(t−s) − φ(t+s))/2, so the
    statistic tends to Σ λ_i χ²_1 with λ the eigenvalues of W^{1/2} C W^{1/2}. Its mean
    Σ λ_i is ``gaussian_expectation()`` (≈ 1.05).
    """
    t, _, w = (x.numpy() for x in knot_weights(knots, t_max, device="cpu"))
    phi = lambda x: np.exp(-0.5 * x**2)
    tt, ss = np.meshgrid(t, t, indexing="ij")
    c_cos = (phi(tt - ss) + phi(tt + ss)) / 2 - phi(tt) * phi(ss)
    c_sin = (phi(tt - ss) - phi(tt + ss)) / 2
    root_w = np.sqrt(w)
    lam = np.concatenate([np.linalg.eigvalsh(root_w[:, None] * c * root_w[None, :])
                          for c in (c_cos, c_sin)])
    lam = np.clip(lam, 0.0, None)
    rng = np.random.default_rng(seed)
    samples = rng.standard_normal((draws, lam.size)) ** 2 @ lam  # Σ λ_i χ²_1 draws
    return float(np.quantile(samples, q))


def _sigreg_1d(p: np.ndarray) -> float:
    """SIGReg of a 1-D sample (a single slice, direction +1)."""
    h = torch.from_numpy(np.ascontiguousarray(p, dtype=np.float64)).reshape(1, -1, 1)
    return float(sigreg_direct(h, torch.ones(1, 1, 1, dtype=torch.float64, device="cpu"))[0])


def cramer_demo(law: str = "laplace", n: int = 20_000, seed: int = 0,
                weights: Sequence[float] = (1.0, 1.0), alpha: float = 1e-4) -> Fact:
    """A unit-norm mix Σ w_i z_i of independent unit-variance components vs N(0, 1).

    Cramér: the mix is Gaussian iff the components are. Two detectors at level ``alpha``:
    the 1-D SIGReg statistic against its Gaussian null quantile, and D'Agostino's K²
    normality test. holds = both reject for a non-Gaussian law, neither for the Gaussian.
    Since any rotation Qz has such mixes as coordinates (and SIGReg's slices are mixes),
    no linear map of non-Gaussian latents can satisfy SIGReg.
    """
    w = np.asarray(weights, dtype=float)
    if np.count_nonzero(w) < 2:
        raise ValueError("a non-trivial mix needs at least two nonzero weights")
    w = w / np.linalg.norm(w)
    rng = np.random.default_rng(seed)
    p = sample_standardized(law, (n, w.size), rng) @ w
    # Fourth cumulants add: excess kurtosis of the mix is κ·Σ w_i⁴ (≠ 0 unless κ = 0).
    kurt_theory = _LAWS[law][1] * float(np.sum(w**4))
    stat = _sigreg_1d(p)
    null_q = sigreg_null_quantile(1 - alpha)
    pvalue = float(stats.normaltest(p).pvalue)
    rej_sigreg, rej_normal = stat > null_q, pvalue < alpha
    gaussian = law == "gaussian"
    holds = (not rej_sigreg and not rej_normal) if gaussian else (rej_sigreg and rej_normal)
    return Fact(
        name=f"cramer_demo[{law}]",
        claim=("a linear mix of Gaussian components passes as N(0,1)" if gaussian else
               f"a linear mix of {law} components is not N(0,1) (Cramér)"),
        holds=holds,
        evidence={"law": law, "weights": w, "n": n, "seed": seed,
                  "sigreg_stat": stat, "sigreg_gaussian_expectation": gaussian_expectation(),
                  "sigreg_null_quantile": null_q, "sigreg_rejects": rej_sigreg,
                  "normaltest_pvalue": pvalue, "normaltest_rejects": rej_normal,
                  "excess_kurtosis_theory": kurt_theory,
                  "excess_kurtosis_sample": float(stats.kurtosis(p))},
        headline=(f"SIGReg {stat:.2f} vs E_Gauss {gaussian_expectation():.2f} "
                  f"(null q{1 - alpha:g} {null_q:.2f}); K² p = {pvalue:.2g}"),
    )


# ---------------------------------------------------------------------------------------
# 7. Thm 3: approximate identifiability bound
# ---------------------------------------------------------------------------------------

def approx_bound(eps, D):
    """Thm 3: Procrustes error ≤ D + (ε + D)²  (ε = ‖Cov h − I‖_F, D = δ/(2ρ(1−ρ)))."""
    return D + (np.asarray(eps) + D) ** 2


def approx_bound_small(eps, D):
    """First-order form of the bound in s = ε + D: just D (the (ε + D)² term is O(s²))."""
    return np.asarray(D) + 0.0 * np.asarray(eps)


def approx_bound_comparison(eps: float, D: float,
                            scales: Sequence[float] = (1.0, 1e-1, 1e-2, 1e-3)) -> Fact:
    """Along (t·ε, t·D), t → 0: full vs first-order bound.

    The absolute gap (ε + D)² is second order, so gap/(ε + D) → 0 always. The *relative*
    gap t s²/(D + t s²) → 0 only when D > 0: with D = 0 the first-order form is 0 while
    the bound is ε², so it is not a useful approximation there.
    """
    if eps < 0 or D < 0:
        raise ValueError("the comparison needs ε ≥ 0 and D ≥ 0")
    rows = []
    for t in scales:
        e, d = t * eps, t * D
        full, small = float(approx_bound(e, d)), float(approx_bound_small(e, d))
        rel = (full - small) / full if full > 0 else 0.0
        rows.append({"scale": t, "eps": e, "D": d, "bound": full, "first_order": small,
                     "relative_gap": rel, "gap_over_s": (full - small) / (e + d)})
    tt = sp.Symbol("t", positive=True)
    e_s, d_s = sp.nsimplify(eps), sp.nsimplify(D)
    full_s = approx_bound(tt * e_s, tt * d_s)
    rel_limit = sp.limit((full_s - tt * d_s) / full_s, tt, 0, "+")
    gap_limit = sp.limit((full_s - tt * d_s) / (tt * (e_s + d_s)), tt, 0, "+")
    return Fact(
        name="approx_bound_comparison",
        claim="D + (ε+D)² → D to first order: relative gap → 0 as ε + D → 0 (needs D > 0)",
        holds=rel_limit == 0 and gap_limit == 0,
        evidence={"rows": rows, "relative_gap_limit": rel_limit,
                  "gap_over_s_limit": gap_limit},
        headline=("relative gaps " + ", ".join(f"{r['relative_gap']:.2e}" for r in rows)
                  + f" → {rel_limit}"),
    )


# ---------------------------------------------------------------------------------------
# 8. Monte-Carlo check of the Hermite alignment spectrum
# ---------------------------------------------------------------------------------------

def _hermite_coefficients(weights: Sequence[float]) -> np.ndarray:
    """He-series coefficients of h = Σ_k √w_k He_k/√k!, weights[i] = w_{i+1} (k ≥ 1)."""
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1 or np.any(w < 0):
        raise ValueError("weights must be a 1-D sequence of non-negative numbers")
    k = np.arange(1, w.size + 1)
    fact = np.array([math.factorial(int(j)) for j in k], dtype=float)
    return np.concatenate([[0.0], np.sqrt(w / fact)])


def hermite_alignment_mc(weights: Sequence[float], rho: float, n: int,
                         seed: int) -> MCEstimate:
    """Monte-Carlo E[(h(z') − h(z))²] over OU(ρ) pairs, with its standard error."""
    c = _hermite_coefficients(weights)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    z_next = rho * z + math.sqrt(1 - rho**2) * rng.standard_normal(n)
    d = (hermite_e.hermeval(z_next, c) - hermite_e.hermeval(z, c)) ** 2
    return MCEstimate(mean=float(d.mean()), se=float(d.std(ddof=1) / math.sqrt(n)), n=n)


def hermite_alignment_analytic(weights: Sequence[float], rho: float) -> float:
    """Σ_k w_k·2(1 − ρ^k): degrees are orthogonal and each is an OU eigenfunction."""
    w = np.asarray(weights, dtype=float)
    k = np.arange(1, w.size + 1)
    return float(np.sum(w * 2 * (1 - rho**k)))


def hermite_alignment(weights: Sequence[float], rho: float, n: int = 400_000,
                      seed: int = 0, n_se: float = 5.0) -> Fact:
    """MC alignment cost of a Hermite mix agrees with Σ w_k 2(1 − ρ^k) within n_se SEs."""
    mc = hermite_alignment_mc(weights, rho, n, seed)
    exact = hermite_alignment_analytic(weights, rho)
    z_score = (mc.mean - exact) / mc.se if mc.se > 0 else 0.0
    return Fact(
        name="hermite_alignment",
        claim="MC E[(h(z')−h(z))²] = Σ_k w_k·2(1 − ρ^k) for h = Σ √w_k He_k/√k!",
        holds=abs(z_score) <= n_se,
        evidence={"weights": tuple(weights), "rho": rho, "mc": mc, "analytic": exact,
                  "z_score": z_score},
        headline=f"MC {mc.mean:.4f} ± {mc.se:.4f} vs analytic {exact:.4f} (z = {z_score:.2f})",
    )


# ---------------------------------------------------------------------------------------
# 9. Per-dimension ρ: whitening alone can prefer He₂(z₁) over z₂
# ---------------------------------------------------------------------------------------

def whitening_prefers_he2(rho1: float, rho2: float) -> Fact:
    """Alignment + decorrelation outputs He₂(z₁)/√2 instead of z₂ when 2(1−ρ₁²) < 2(1−ρ₂).

    He₂(z₁)/√2 has unit variance and is uncorrelated with z₁ and z₂, so a whitening-only
    objective cannot tell it from a real latent; it is cheaper to align iff ρ₁² > ρ₂
    (a slow dim's square beats a fast dim). SIGReg forbids it: its excess kurtosis is 12.
    holds = whitening prefers He₂ here.
    """
    cost_he2 = float(ou_alignment_cost_expr(2).subs(RHO, rho1))
    cost_z2 = float(ou_alignment_cost_expr(1).subs(RHO, rho2))
    he2 = hermite_poly(2) / sp.sqrt(2)
    variance = gaussian_expect(he2**2, Z)
    corr_z1 = gaussian_expect(he2 * Z, Z)
    excess_kurt = gaussian_expect(he2**4, Z) - 3
    prefers = cost_he2 < cost_z2
    return Fact(
        name="whitening_prefers_he2",
        claim=f"whitening-only prefers He₂(z₁)/√2 over z₂ at ρ₁ = {rho1}, ρ₂ = {rho2}",
        holds=prefers,
        evidence={"rho1": rho1, "rho2": rho2, "cost_he2": cost_he2, "cost_z2": cost_z2,
                  "rho1_squared_gt_rho2": rho1**2 > rho2,
                  "boundary_rho1": timescale_boundary(rho2), "he2_variance": variance,
                  "he2_corr_with_z1": corr_z1, "he2_excess_kurtosis": excess_kurt},
        headline=(f"cost He₂ {cost_he2:.4f} vs z₂ {cost_z2:.4f}; ρ₁² = {rho1**2:.4f} vs "
                  f"ρ₂ = {rho2}; He₂ excess kurtosis {excess_kurt}"),
    )


def timescale_boundary(rho_min):
    """ρ_max at which whitening flips to He₂ of the slow dim: ρ_max² = ρ_min."""
    return np.sqrt(rho_min)


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

def all_facts() -> list[Fact]:
    """Every fact at its default, report-sized settings (each should hold)."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((3, 3))
    a *= 0.9 / np.linalg.norm(a, 2)  # non-normal, spectral norm 0.9: I − AAᵀ is PSD
    return [
        hermite_orthogonality(),
        mehler_eigenrelation(),
        *[alignment_cost(k) for k in range(1, 5)],
        spectral_gap(),
        linear_gaussian_stationarity(a, np.eye(3) - a @ a.T),
        ou_stationarity([0.95, 0.5]),
        ou_wrong_noise([0.95, 0.5]),
        laplace_ar_innovation(),
        cramer_demo("laplace"),
        cramer_demo("uniform"),
        cramer_demo("gaussian"),
        approx_bound_comparison(0.1, 0.05),
        hermite_alignment((0.5, 0.3, 0.2), 0.9),
        whitening_prefers_he2(0.95, 0.8),
    ]
