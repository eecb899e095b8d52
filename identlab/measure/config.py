"""The evaluation section of a run config: the held-out set and its protocol, and the
optional planning evaluation (``eval.plan``, design §8) and the attribution losses
(``eval.attribution``, design §7)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from identlab.core.schema import ConfigError, interval, param
from identlab.measure.split import n_fit
from identlab.measure.thresholds import POWER_FRACTION, SE_MULTIPLE

__all__ = ["EvalConfig", "PlanConfig", "AttributionConfig"]

PLAN_FIELD = "eval.plan"


@dataclass(frozen=True)
class PlanConfig:
    """Planning evaluation (design §8): the controlled world z' = z + b·u (+ the world's
    transition when ``noise``), the latent-LQR regret and the interpolation test, and in
    worlds with a reach task (the Reacher) the success rates of latent LQR and of a
    receding-horizon cross-entropy planner (``cem_*``). Validated at construction; errors
    name ``eval.plan.<field>``."""

    enabled: bool = param(False, doc="score plan_regret, plan_regret_p90 and "
                                     "plan_interp_ratio after training (and the plan_success "
                                     "keys where the world has a reach task)")
    horizon: int = param(15, check=interval(1), doc="LQR horizon T (steps)")
    r: float = param(1.0, check=interval(0.0, lo_open=True), doc="control weight r")
    pairs: int = param(200, check=interval(1), doc="start–goal pairs from the latent law")
    transitions: int = param(20000, check=interval(2),
                             doc="random-action transitions for the latent model fit "
                                 "(also the kNN gallery of the interpolation test)")
    rendered_transitions: int = param(2000, check=interval(2),
                                      doc="transitions for rendered (pixel) worlds, whose "
                                          "every observation is a rendered frame")
    rendered_pairs: int = param(50, check=interval(1),
                                doc="at most this many pairs for rendered worlds (their "
                                    "success rates are shares of these pairs; "
                                    "sweeps/reacher.yaml asks for 100; the default stays "
                                    "50 so that records of earlier planning runs keep "
                                    "their hashes)")
    noise: bool = param(False, doc="add the world's own transition (mean reversion and "
                                   "noise) instead of holding z still between actions")
    action_scale: float = param(1.0, check=interval(0.0, lo_open=True),
                                doc="B = action_scale·I (reacher: radians per unit u)")
    action_std: float = param(0.3, check=interval(0.0, lo_open=True),
                              doc="standard deviation of the random actions u ~ N(0, σ²I) "
                                  "of the model fit; small, so that z' = z + u stays "
                                  "where the encoder was trained (marginal std "
                                  "√(1 + σ²) ≈ 1.04): at σ = 1 a trained spiral encoder's "
                                  "extrapolation corrupts the fitted model (median regret "
                                  "2.0 against 0.013 at σ = 0.3)")
    interp_steps: int = param(8, check=interval(2),
                              doc="waypoints of the interpolation test, both ends included")
    knn: int = param(1, check=interval(1), doc="neighbours averaged to decode a waypoint")
    cem_population: int = param(64, check=interval(2), omit_default=True,
                                doc="reach task: action sequences the cross-entropy planner "
                                    "samples per pair and iteration, at every step")
    cem_elites: int = param(8, check=interval(2), omit_default=True,
                            doc="reach task: the cheapest sequences whose mean and standard "
                                "deviation become the planner's next sampling law (at most "
                                "cem_population; at least 2 for a standard deviation)")
    cem_iterations: int = param(3, check=interval(1), omit_default=True,
                                doc="reach task: sample-and-refit rounds of the cross-entropy "
                                    "planner before it acts, at every step")
    cem_std: float = param(0.5, check=interval(0.0, lo_open=True), omit_default=True,
                           doc="reach task: standard deviation of the planner's first "
                               "sampling law at every step, in action units (its mean is "
                               "the previous step's plan, shifted by one)")

    def __post_init__(self) -> None:
        least = min(self.transitions, self.rendered_transitions)
        if self.knn > least:
            raise ConfigError(f"{PLAN_FIELD}.knn", f"= {self.knn}: at most the gallery size "
                              f"(transitions, rendered_transitions) = {least}")
        if self.cem_elites > self.cem_population:
            raise ConfigError(f"{PLAN_FIELD}.cem_elites", f"= {self.cem_elites}: at most "
                              f"{PLAN_FIELD}.cem_population = {self.cem_population}")

    def for_world(self, rendered: bool) -> "PlanConfig":
        """The budget actually used: rendered worlds take ``rendered_transitions`` and at
        most ``rendered_pairs`` pairs (every observation there is a rendered frame)."""
        if not rendered:
            return self
        return dataclasses.replace(self, transitions=self.rendered_transitions,
                                   pairs=min(self.pairs, self.rendered_pairs))


@dataclass(frozen=True)
class AttributionConfig:
    """Attribution losses (design §7, :mod:`identlab.measure.attribution`): the expected
    training loss J of the learned embedding and of oracles built from the theorem's
    target, on the first ``pairs`` held-out pairs over ``directions`` seeded directions
    (the ``attribution`` stream; doubled up to ``max_directions`` while the verdict is
    underpowered), the oracles' scales fitted on the next ``pairs`` pairs over
    ``fit_directions`` other directions, at the run's λ (its final value under a
    schedule), batch, knots, t_max, views and SIGReg scale. On by default: every record
    carries the keys."""

    enabled: bool = param(True, doc="add the attribution keys (loss_*, lam_star, "
                                    "r2_hz_gauss, verdict) to every record")
    pairs: int = param(2000, check=interval(20),
                       doc="held-out pairs J is estimated on: the first min(pairs, eval.n) "
                           "of the eval set")
    directions: int = param(16, check=interval(2),
                            doc="seeded unit directions J is averaged over (its "
                                "direction SE needs at least 2)")
    path: tuple[float, ...] = param((0.5,), check=interval(0.0, 1.0, lo_open=True,
                                                            hi_open=True),
                                    doc="points s of the oracle path (1-s)·target + "
                                        "s·alternative (z and Φ⁻¹(F(z)), one way or the "
                                        "other)")
    max_directions: int = param(256, check=interval(2), omit_default=True,
                                doc="cap of the adaptive direction budget: directions "
                                    "double while the verdict is underpowered")
    fit_directions: int = param(32, check=interval(2), omit_default=True,
                                doc="directions the oracles' scales are fitted on (fresh "
                                    "ones, disjoint from the scored directions)")
    power: float = param(POWER_FRACTION, check=interval(0.0, 1.0, lo_open=True),
                         omit_default=True,
                         doc=f"a verdict is powered when {SE_MULTIPLE:g} SE of its "
                             "comparisons with the "
                             "rotation are at most this share of the rotation's J; else "
                             "'underpowered'")

    def __post_init__(self) -> None:
        if self.max_directions < self.directions:
            raise ConfigError("eval.attribution.max_directions",
                              f"= {self.max_directions}: at least eval.attribution."
                              f"directions = {self.directions}")


@dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation set (its own random stream)."""

    n: int = param(10000, check=interval(1), doc="evaluation pairs")
    fit_fraction: float = param(0.5, check=interval(0.0, 1.0, lo_open=True, hi_open=True),
                                doc="share of the eval set used to fit regressions")
    knn: int = param(10, check=interval(1), doc="neighbours for the nonlinear R²")
    sigreg_slices: int = param(256, check=interval(1), doc="slices for sigreg_stat")
    grid: int = param(0, check=interval(0),
                      doc="2-D worlds: also score linear recovery on a regular grid of "
                          "grid x grid latent points over [-grid_range, grid_range]^2 "
                          "(the paper's gennorm protocol; 0: off)")
    grid_range: float = param(3.0, check=interval(0.0, lo_open=True),
                              doc="half-width of the scoring grid")
    at_steps: tuple[int, ...] = param((), check=interval(0), omit_default=True,
                                      doc="steps at which the trajectory metrics (R² "
                                          "against z and Φ⁻¹(F(z)), best-rescaled J) are "
                                          "recorded (at most train.steps; empty: off)")
    traj_pairs: int = param(1000, check=interval(40), omit_default=True,
                            doc="held-out pairs of the trajectory metrics")
    plan: PlanConfig = param(factory=PlanConfig, omit_default=True,
                             doc="planning evaluation (off by default)")
    attribution: AttributionConfig = param(factory=AttributionConfig, omit_default=True,
                                           doc="objective-or-optimizer attribution "
                                               "losses and verdict (on by default)")

    def __post_init__(self) -> None:
        if 0 < self.grid < 8:
            raise ConfigError("eval.grid", f"= {self.grid}: use 0 (off) or at least 8 "
                              "points per side")
        fit = n_fit(self.n, self.fit_fraction)
        need = max(20, self.knn + 1)  # rows on each side of the split
        if min(fit, self.n - fit) < need:
            least = int(need / min(self.fit_fraction, 1 - self.fit_fraction)) + 1
            raise ConfigError("eval.n", f"= {self.n}: too small for a held-out split "
                              f"(fit_fraction {self.fit_fraction}); use at least {least}")
