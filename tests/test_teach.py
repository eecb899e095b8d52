"""`identlab teach`: the walkthrough renders end to end from real (tiny) runs, its runs are
the sweep specs under sweeps/teach/ (same config hashes as before the move, resumable), and
the functions that decide what it says are checked on constructed records."""

import json
import math
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from identlab.cli import main
from identlab.config import config_hash
from identlab.measure import theory
from identlab.record import Record
from identlab.studies.teach import (
    additive,
    gaussianity,
    planning,
    stationarity,
    timescales,
    unmix,
)
from identlab.studies.teach.bound import bound_text
from identlab.studies.teach.compare import (
    GAUSS,
    REF_OK,
    Arm,
    condition_text,
    split_levels,
    weak_reference_text,
)
from identlab.studies.teach.runs import (
    SPECS,
    Budget,
    load_specs,
    plan_runs,
    results_frame,
    spec_path,
)
from identlab.studies.teach.text import listing, md_table, ms, num, tolerance
from identlab.studies.teach.walkthrough import ROWS
from identlab.sweep.spec import load_spec

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("teach")
    out = root / "t"
    t0 = time.perf_counter()
    code = main(["teach", "--quick", "--no-progress", "--out", str(out), "--runs",
                 str(root / "runs")])
    return code, out, time.perf_counter() - t0


def section_text(readme: str, number: int) -> str:
    """The body of section ``number`` (up to the next level-2 heading)."""
    m = re.search(rf"^## {number}\. .*?$(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert m, f"section {number} missing"
    return m.group(1)


def first_table(text: str) -> list[list[str]]:
    rows = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("|")]
    assert len(rows) >= 3, "no markdown table"
    cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
    assert set("".join(cells[1])) <= set("-: "), "second row is not a separator"
    return [cells[0]] + cells[2:]


def test_quick_walkthrough_renders(quick_report):
    code, out, wall = quick_report
    assert code == 0
    assert wall < 90
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "budgets are tiny" in readme
    for n in range(1, 10):
        assert re.search(rf"^## {n}\. ", readme, re.M), f"heading {n} missing"
    assert "## Facts checked" in readme


def test_every_image_link_is_a_png(quick_report):
    _, out, _ = quick_report
    readme = (out / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert len(links) >= 9
    for link in links:
        path = out / link
        assert path.is_file(), link
        data = path.read_bytes()
        assert len(data) > 1000 and data.startswith(PNG_MAGIC), link
    assert not list(out.glob(".*.tmp")), "temp files left behind"


def test_section_two_table_parses(quick_report):
    _, out, _ = quick_report
    readme = (out / "README.md").read_text(encoding="utf-8")
    header, *rows = first_table(section_text(readme, 2))
    assert header[0] == "seed" and "R² (h→z)" in header
    assert rows
    for row in rows:
        assert len(row) == len(header)
        assert row[0] == "mean" or row[0].isdigit()
        values = [float(c) for c in row[1:]]
        assert all(v == v for v in values)  # no NaN


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main(["teach", "--quick", "--out", str(target), "--runs",
                 str(tmp_path / "runs")]) == 2
    assert "error" in capsys.readouterr().err
    assert target.read_text() == "x"


def test_runs_file_is_refused(tmp_path, capsys):
    target = tmp_path / "runs.txt"
    target.write_text("x")
    code = main(["teach", "--quick", "--out", str(tmp_path / "o"), "--runs", str(target)])
    assert code == 2 and "--runs" in capsys.readouterr().err
    assert target.read_text() == "x"


def test_second_call_resumes_from_the_store(quick_report, tmp_path):
    """A second call on the same record store trains nothing and writes the same numbers."""
    _, out, _ = quick_report
    runs = out.parent / "runs"
    n_records = len(list((runs / "records").glob("*.json")))
    again = tmp_path / "again"
    assert main(["teach", "--quick", "--no-progress", "--out", str(again), "--runs",
                 str(runs)]) == 0
    readme = (again / "README.md").read_text(encoding="utf-8")
    assert f"({n_records} trained now" not in readme
    assert f"(0 trained now, {n_records} reused from the record store)" in readme
    assert (again / "results.csv").read_bytes() == (out / "results.csv").read_bytes()


# ------------------------------------------------------------------ the specs
HASHES = Path(__file__).parent / "data" / "teach_hashes.json"


@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
def test_specs_plan_the_same_configs_as_before(quick):
    """The sweep specs resolve to the run configs (by hash) the walkthrough trained before
    it moved onto the sweep engine, for both budgets; the full budget's condition
    sections have since gained a third seed, whose configs are the only new ones."""
    want = json.loads(HASHES.read_text())["quick" if quick else "full"]
    runs = plan_runs(load_specs(quick), ROWS)
    got = {r.hash for r in runs}
    if quick:
        assert sorted(got) == want
    else:
        assert set(want) <= got
        assert {r.seed for r in runs if r.hash not in set(want)} == {2}
    assert len(runs) == (29 if quick else 87)  # rows, shared configs counted per section


@pytest.mark.parametrize("stem", sorted(SPECS.values()))
def test_every_teach_spec_loads_with_each_preset(stem):
    for preset in (None, "quick"):
        spec = load_spec(spec_path(stem), preset)
        assert spec.name == f"teach-{stem}"
    assert len(load_spec(spec_path(stem), "quick").seeds) == 1


def test_budget_is_read_from_the_specs():
    full, quick = (Budget.from_specs(load_specs(q), q) for q in (False, True))
    assert (full.steps, full.batch, full.depth, full.hidden, full.slices, full.eval_n) == \
        (1500, 256, 3, 64, 64, 4000)
    assert (quick.steps, quick.batch, quick.depth, quick.hidden, quick.eval_n) == \
        (30, 64, 2, 16, 500)
    assert full.main_seeds == (0, 1, 2) and full.seeds == (0, 1, 2) and quick.seeds == (0,)
    assert full.rho == 0.95 and full.lam == 1e-3 and quick.quick and not full.quick


def test_strength_zero_is_the_reference_of_both_drift_targets():
    runs = [r for r in plan_runs(load_specs(True), ROWS) if r.section == stationarity.SECTION]
    zero = {r.arm: r.hash for r in runs if r.level == 0.0}
    assert set(zero) == {"mean", "scale"} and len(set(zero.values())) == 1
    assert len(runs) == 6 and len({r.hash for r in runs}) == 5


def test_row_functions_name_cells():
    assert gaussianity.rows({"world.latent.kind": "laplace",
                             "learner.objective.lam": 0.01}, 3) == [("Laplace AR", 0.01, (3,))]
    assert additive.rows({"world.latent.kind": "uniform",
                          "learner.objective.lam": 0.1}, 1) == [("uniform (copula)", 0.1, (1,))]
    assert timescales.rows({"learner.objective.kind": "whiten",
                            "world.dynamics.rho": [0.99, 0.6]}, 0)[0][:2] == \
        ("whiten", "(0.99, 0.6)")
    assert unmix.rows({"learner.objective.lam": 0.001}, 0)[0][:2] == ("Gaussian OU", 0.001)


# ------------------------------------------------------------------ constructed records
QUICK_B = Budget(steps=30, batch=64, lr=3e-3, hidden=16, depth=2, slices=16, eval_n=500,
                 rho=0.95, lam=1e-3, main_seeds=(0,), seeds=(0,), diag_n=2000, mc_n=20000,
                 quick=True)
FULL_B = Budget(steps=1500, batch=256, lr=3e-3, hidden=64, depth=3, slices=64, eval_n=4000,
                rho=0.95, lam=1e-3, main_seeds=(0, 1, 2), seeds=(0, 1), diag_n=20000,
                mc_n=200_000)


def frame(rows: list[dict]) -> pd.DataFrame:
    """Constructed result rows with defaults for what a test does not set."""
    base = {"status": "ok", "seed": 0, "nl_r2_hz": 0.99, "h_var": 1.0, "sigreg_stat": 1.0}
    return pd.DataFrame([{**base, **r} for r in rows])


def two_arms(ref: dict, alt: dict, seeds=(0, 1)) -> pd.DataFrame:
    """(arm, level) -> list of R² per seed for a reference and an alternative arm."""
    rows = []
    for arm, cells in (("ref", ref), ("alt", alt)):
        for lev, vals in cells.items():
            rows += [{"arm": arm, "level": lev, "seed": s, "r2_hz": v}
                     for s, v in zip(seeds, vals)]
    return frame(rows)


REF, ALT = Arm("ref", "the reference"), Arm("alt", "the violation")


def test_split_levels_sorts_by_difference_beyond_the_seed_spread():
    df = two_arms({1: [0.99, 0.99], 2: [0.99, 0.99], 3: [0.95, 0.97], 4: [0.5, 0.6]},
                  {1: [0.80, 0.82], 2: [0.985, 0.99], 3: [0.99, 0.99], 4: [0.4, 0.4]})
    sp = split_levels(df, REF, ALT, [1, 2, 3, 4])
    assert sp["hurt"] == [1] and sp["same"] == [2] and sp["better"] == [3]
    assert sp["ref_weak"] == [4]  # reference mean 0.55 < REF_OK: cannot test
    assert sp["drops"] == [pytest.approx(0.99 - 0.81)]
    # a wide seed spread makes the same drop not significant
    noisy = two_arms({1: [0.99, 0.91]}, {1: [0.90, 0.90]})
    assert split_levels(noisy, REF, ALT, [1])["same"] == [1]
    steady = two_arms({1: [0.95, 0.95]}, {1: [0.90, 0.90]})
    assert split_levels(steady, REF, ALT, [1])["hurt"] == [1]


def test_split_levels_with_a_fixed_reference_level():
    """Drift sections compare every strength with strength 0 of the same arm."""
    df = frame([{"arm": "mean", "level": 0.0, "r2_hz": 0.99},
                {"arm": "mean", "level": 1.0, "r2_hz": 0.98},
                {"arm": "mean", "level": 2.0, "r2_hz": 0.70}])
    sp = split_levels(df, Arm("mean", "no drift"), Arm("mean", "drift"), [1.0, 2.0],
                      ref_level=0.0)
    assert sp["same"] == [1.0] and sp["hurt"] == [2.0]


def test_condition_text_explains_only_quiet_levels():
    df = two_arms({1: [0.99, 0.99], 2: [0.99, 0.99]}, {1: [0.70, 0.72], 2: [0.99, 0.99]})
    asked = []
    text = " ".join(condition_text(FULL_B, df, REF, ALT, [1, 2], "λ",
                                   lambda quiet: asked.append(list(quiet)) or ["because"]))
    assert asked == [[2]]
    assert "costs linear recovery at λ = 1" in text and "lower by up to 0.28" in text
    assert "At λ = 2 it did not hurt" in text and "Likely explanation: because." in text
    hurt_only = two_arms({1: [0.99, 0.99]}, {1: [0.5, 0.5]})
    lines = condition_text(FULL_B, hurt_only, REF, ALT, [1], "λ", lambda q: pytest.fail())
    assert not any("did not hurt" in ln for ln in lines)


def test_weak_reference_text_reads_the_reason_off_the_numbers():
    collapsed = frame([{"arm": "ref", "level": 1e-4, "r2_hz": 0.1, "nl_r2_hz": 0.1,
                        "h_var": 0.05}])
    text = weak_reference_text(FULL_B, collapsed, REF, [1e-4], "λ")
    assert f"below R² {REF_OK}" in text and "shrunk" in text and "twisted" not in text
    assert "budget" not in text  # the collapse explains it fully
    twisted = frame([{"arm": "ref", "level": 1e-4, "r2_hz": 0.3, "nl_r2_hz": 0.95}])
    text = weak_reference_text(QUICK_B, twisted, REF, [1e-4], "λ")
    assert "keeps the information but not linearly" in text and "0.3 vs 0.95" in text
    assert "tiny, 30 steps" in text
    neither = frame([{"arm": "ref", "level": 1e-4, "r2_hz": 0.7, "nl_r2_hz": 0.75}])
    assert weak_reference_text(FULL_B, neither, REF, [1e-4], "λ").endswith(
        "a 3×64 encoder.")


def gauss_laplace(sig_laplace: float, lam: float) -> pd.DataFrame:
    return frame([{"arm": "Gaussian OU", "level": lam, "r2_hz": 0.99, "sigreg_stat": 1.0},
                  {"arm": "Laplace AR", "level": lam, "r2_hz": 0.99,
                   "sigreg_stat": sig_laplace}])


def test_gaussianity_reasons():
    quiet_weak = gaussianity.gaussianity_reasons(FULL_B, gauss_laplace(1.2, 1e-3), [1e-3])
    assert quiet_weak[0].startswith("λ = 0.001 is weak")
    assert not any("visibly non-Gaussian" in w for w in quiet_weak)
    assert "linear R² of 0.9" in quiet_weak[-1]  # Gaussianized Laplace stays linear
    assert not any("budget" in w for w in quiet_weak)  # 1500 steps: not blamed
    strong = gaussianity.gaussianity_reasons(QUICK_B, gauss_laplace(3.0, 0.1), [0.1])
    assert not any("is weak" in w for w in strong)
    assert any("visibly non-Gaussian" in w and "3 vs 1" in w for w in strong)
    assert strong[-1] == "the training budget is tiny, 30 steps"


def test_stationarity_reasons_split_by_pooled_kurtosis():
    pooled = {("mean", 1.0): (0.1, 1.2), ("mean", 2.0): (-0.9, 2.0),
              ("scale", 1.0): (0.3, 1.1)}
    why = stationarity.stationarity_reasons(FULL_B, "mean", [1.0, 2.0], pooled)
    assert "strength 1 the pooled marginal stays close to Gaussian (excess kurtosis 0.10)" \
        in why[0]
    assert "strength 2 the pooled marginal is non-Gaussian (excess kurtosis -0.90)" in why[1]
    assert len(why) == 2
    scale = stationarity.stationarity_reasons(QUICK_B, "scale", [1.0], pooled)
    assert any("radial" in w for w in scale) and scale[-1].startswith("the training budget")


def test_additive_reasons_place_the_measurement_against_the_gaussian_coordinates():
    r2g = 0.95
    why = additive.additive_reasons(FULL_B, "uniform", r2g, [1e-3, 0.1],
                                    {1e-3: 0.99, 0.1: 0.955})
    assert "λ = 0.1 the encoder matches the rotation-of-u solution" in why[0]
    assert "λ = 0.001 the measured R² is above the 0.950" in why[1]
    assert len(why) == 2  # λ = 0.001 is weak, but 'above' already explains it
    fallback = additive.additive_reasons(FULL_B, "laplace", r2g, [0.1], {0.1: 0.5})
    assert fallback == ["the copula world is a monotone per-coordinate transform of a "
                        "Gaussian OU world, which the encoder can absorb"]


def fast(r2: float, slow: float = 0.99, sd: float = 0.0) -> timescales.Fast:
    return timescales.Fast(r2=r2, sd=sd, slow=slow, sigreg=2.0, mcc=0.9)


def test_timescale_verdict_follows_the_prediction():
    swap = theory.whitening_prefers_he2(0.99, 0.6)      # 0.99² > 0.6: predicted swap
    no_swap = theory.whitening_prefers_he2(0.7, 0.6)    # 0.49 < 0.6: no swap
    assert swap.holds and not no_swap.holds
    v = timescales.timescale_verdict
    assert v(FULL_B, swap, fast(0.2), fast(0.98)).startswith("As predicted, whitening lost")
    assert v(FULL_B, swap, fast(0.97), fast(0.98)).startswith("Whitening kept the fast")
    assert v(FULL_B, no_swap, fast(0.97), fast(0.98)).startswith("As predicted, both")
    assert v(FULL_B, no_swap, fast(0.3), fast(0.98)).startswith(
        "Whitening lost the fast latent even though")
    assert "recovers neither" in v(FULL_B, swap, fast(0.9), fast(0.1, slow=0.2))
    assert "does not keep the fast latent" in v(FULL_B, swap, fast(0.9), fast(0.5))
    assert "unfinished optimisation" in v(FULL_B, no_swap, fast(0.9), fast(0.5))
    # whitening below KEPT but within the seed spread of LeJEPA: no swap claimed
    assert "disagree too much" in v(FULL_B, no_swap, fast(0.75, sd=0.2), fast(0.85))


def bound_rows(proc, bound, holds) -> pd.DataFrame:
    return pd.DataFrame({"section": ["s2"] * len(proc), "level": [1e-3] * len(proc),
                         "seed": range(len(proc)), "procrustes": proc, "bound": bound,
                         "bound_holds": holds})


def test_bound_text():
    assert bound_text(bound_rows([], [], []))[0].startswith("No finished Gaussian OU run")
    text = bound_text(bound_rows([0.01, 0.02, 0.03], [0.1, 0.04, -0.01], [True, True, False]))
    assert text[0] == ("The bound holds (within 3 standard errors of δ) in 2 of 3 runs "
                       "(67%).")
    assert "median 30% of the bound (range 10–50%)" in text[1] and "conservative" in text[1]
    assert text[2].startswith("1 run(s) have a non-positive bound")
    assert "It fails for section 2, level 0.001, seed 2 (error 0.03 vs bound -0.01)" in text[3]
    tight = bound_text(bound_rows([0.08, 0.09], [0.1, 0.1], [True, True]))
    assert len(tight) == 2 and "tight to within a factor of 2" in tight[1]


def test_unmix_text_verdicts():
    good = frame([{"seed": s, "r2_hz": v, "cca_min": 0.99, "procrustes": 0.1}
                  for s, v in enumerate((0.99, 0.98))])
    text = unmix.unmix_text(FULL_B, good, baseline=0.6)
    assert "seeds 0 and 1" in text[0] and "R²(h→z) = 0.985 ± 0.0071" in text[0]
    assert text[1].startswith("Every seed recovers z up to a rotation to within 2%")
    partial = frame([{"seed": 0, "r2_hz": 0.8, "cca_min": 0.7, "procrustes": 0.3},
                     {"seed": 1, "status": "diverged", "r2_hz": np.nan, "cca_min": np.nan,
                      "procrustes": np.nan}])
    text = unmix.unmix_text(QUICK_B, partial, baseline=0.6)
    assert "un-mixes much of the spiral" in text[1] and text[-1].startswith("1 run(s) diverged")
    assert unmix.unmix_text(QUICK_B, partial.iloc[1:], 0.6)[0].startswith("Every run")


def test_results_frame_reads_records():
    runs = [r for r in plan_runs(load_specs(True), ROWS) if r.section == unmix.SECTION]
    rec = Record(hash=runs[0].hash, config={}, seed=0, status="ok", diverged_at=None,
                 metrics={"r2_hz": 0.9, "mcc": None, "r2_hz_dims": [0.8, 1.0], "flag": True,
                          "name": "skip"}, flags={}, theorem_applies=True, reasons=[],
                 mixer={}, sample=None, train={}, provenance={})
    df = results_frame(runs, {runs[0].hash: rec})
    row = df.iloc[0]
    assert (row.section, row.arm, row.level, row.seed) == ("s2", "Gaussian OU", 1e-3, 0)
    assert row.r2_hz == 0.9 and math.isnan(row.mcc) and "name" not in df
    assert (row.r2_dim1, row.r2_dim2) == (0.8, 1.0) and row.hash == config_hash(runs[0].cfg)


# ------------------------------------------------------------------ text helpers
@given(st.lists(st.text(alphabet="abc", min_size=1, max_size=3), max_size=6))
def test_listing_keeps_every_item_in_order(items):
    text = listing(items)
    assert text.count(" and ") == (1 if len(items) > 1 else 0) + sum(
        " and " in i for i in items)
    pos = 0
    for item in items:
        pos = text.index(item, pos) + len(item)


@given(st.lists(st.floats(0, 1), max_size=4))
def test_tolerance_is_at_least_two_percent_and_twice_the_spread(stds):
    tol = tolerance(*stds, float("nan"))
    assert tol >= 0.02 and all(tol >= 2 * s for s in stds)
    assert tol == pytest.approx(max([0.02] + [2 * s for s in stds]))


def test_number_and_table_formatting():
    assert ms(0.5, 0.01, 1) == "0.5" and "±" in ms(0.5, 0.01, 3)
    assert num(12345.6) == "12346" and num(0.12345) == "0.123" and num(float("nan")) == "n/a"
    table = md_table(["a", "b"], [[True, "x|y"], [3, 0.123456]]).splitlines()
    assert table[1] == "|---|---|" and table[2] == "| yes | x\\|y |"
    assert table[3].startswith("| 3 | 0.123")
    assert GAUSS.name == "Gaussian OU"


# ------------------------------------------------------------------ section 9: planning
@pytest.fixture(scope="module")
def plan_df():
    return planning.plan_table(0.95, planning.PAIRS[False])


def test_planning_table_reproduces_the_calibration(plan_df):
    """With measure/planning's own protocol: the rotation plans like z (regret 0 to
    1e-9); det-1 affine maps of condition number 2 and 4 give the population medians
    0.0264 and 0.1036 of the scalar reference (tests/test_planning.py); regret grows with
    κ while the interpolation ratio stays at the straight line's 3/φ."""
    by = plan_df.set_index("encoder")
    rot = by.loc["rotation h = Qz + b"]
    assert abs(rot.regret) < 1e-9 and abs(rot.p90) < 1e-9
    assert by.loc["affine, κ = 2", "regret"] == pytest.approx(0.0264, rel=0.12)
    assert by.loc["affine, κ = 4", "regret"] == pytest.approx(0.1036, rel=0.12)
    aff = plan_df[plan_df["kind"] == "affine"].sort_values("kappa")
    assert np.all(np.diff(aff["regret"]) > 0) and np.all(aff["p90"] > aff["regret"])
    lin = plan_df[plan_df["kind"] != "spiral"]
    assert np.all(np.abs(lin["interp"] - planning.LINE_RATIO) < planning.FLAT)
    spi = plan_df[plan_df["kind"] == "spiral"]
    assert np.all(spi["regret"] > 0.01)


def test_planning_text_on_its_own_table(plan_df):
    text = " ".join(planning.planning_text(plan_df))
    assert "plans exactly as well as z" in text and "grows with κ" in text
    assert "linearity, not orthogonality" in text


def _plan_rows(rot=(0.0, 0.0, 1.855), affine=((0.01, 0.02, 1.856), (0.03, 0.05, 1.854)),
               spiral=((0.05, 0.1, 1.86), (2.0, 9.0, 2.5))) -> pd.DataFrame:
    rows = [{"kind": "rotation", "kappa": 1.0, "turns": 0.0, "regret": rot[0],
             "p90": rot[1], "interp": rot[2]}]
    rows += [{"kind": "affine", "kappa": 2.0 ** (i + 1), "turns": 0.0, "regret": r,
              "p90": p, "interp": x} for i, (r, p, x) in enumerate(affine)]
    rows += [{"kind": "spiral", "kappa": float("nan"), "turns": 0.1 * (i + 1), "regret": r,
              "p90": p, "interp": x} for i, (r, p, x) in enumerate(spiral)]
    return pd.DataFrame(rows)


def test_planning_text_reads_the_numbers():
    """Each verdict follows its number: the corollary's zero, monotone regret, a flat
    interpolation ratio, and a spiral the test misses."""
    text = " ".join(planning.planning_text(_plan_rows()))
    assert "plans exactly as well as z" in text and "grows with κ" in text
    assert "0.01 and 0.03 in median regret" in text
    assert "linearity, not orthogonality" in text
    assert "At 0.1 turns the ratio is within" in text  # 1.86 vs 1.855; 2.5 is not
    bad = " ".join(planning.planning_text(_plan_rows(
        rot=(0.2, 0.4, 1.855), affine=((0.05, 0.1, 1.856), (0.03, 0.05, 1.95)),
        spiral=((2.0, 9.0, 2.5),))))
    assert "does not reproduce the corollary" in bad and "not monotone in κ" in bad
    assert "more than the 0.02 expected" in bad and "linearity, not" not in bad
    assert "the test misses" not in bad
