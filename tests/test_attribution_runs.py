"""Attribution in runs, sweeps and reports (design §7): the ``eval.attribution`` section,
the keys every record carries, per-cell verdicts with their marks, the constraint sweep."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from identlab.cli import main
from identlab.config import config_hash, load_run
from identlab.core.schema import ConfigError, to_dict
from identlab.measure.attribution import ATTRIBUTION_KEYS, VERDICTS
from identlab.measure.stats import (
    VERDICT_MARKS,
    VERDICT_PRIORITY,
    cell_verdicts,
    majority_verdict,
    row_verdicts,
)
from identlab.run.program import run_configs
from identlab.run.score import attribution_setting
from identlab.show import plots
from identlab.show.report import verdict_text, write_report
from identlab.sweep.run import DEFAULT_SWEEPS, run_sweep
from identlab.sweep.spec import load_spec, plan

SPIRAL = "configs/spiral.yaml"
SPIRAL_HASH = "3c67158715c3888d"  # configs/spiral.yaml before eval.attribution existed
TINY = ["learner.encoder.hidden=16", "learner.encoder.depth=2", "learner.objective.slices=8",
        "train.steps=20", "train.batch=64", "eval.n=600", "eval.sigreg_slices=16"]


# ------------------------------------------------------------------ config
def test_default_attribution_section_keeps_existing_hashes():
    cfg = load_run(SPIRAL)
    assert config_hash(cfg) == SPIRAL_HASH and "attribution" not in to_dict(cfg)["eval"]
    assert cfg.eval.attribution.enabled  # on by default, yet not in the dict
    assert config_hash(load_run(SPIRAL, ["eval.attribution.directions=16"])) == SPIRAL_HASH
    off = load_run(SPIRAL, ["eval.attribution.enabled=false"])
    assert config_hash(off) != SPIRAL_HASH
    assert to_dict(off)["eval"]["attribution"]["enabled"] is False
    # the power settings (cross-fit directions, the adaptive cap, the power fraction)
    # enter records only when changed, also inside a section that is written out
    same = ["eval.attribution.max_directions=256", "eval.attribution.fit_directions=32",
            "eval.attribution.power=0.05"]
    assert config_hash(load_run(SPIRAL, same)) == SPIRAL_HASH
    assert "max_directions" not in to_dict(load_run(SPIRAL, [
        "eval.attribution.enabled=false", *same]))["eval"]["attribution"]


@pytest.mark.parametrize("override, field", [
    ("eval.attribution.pairs=3", "eval.attribution.pairs"),
    ("eval.attribution.directions=1", "eval.attribution.directions"),
    ("eval.attribution.path=[0.5, 1.5]", "eval.attribution.path"),
    ("eval.attribution.enabled=maybe", "eval.attribution.enabled"),
    ("eval.attribution.max_directions=8", "eval.attribution.max_directions"),
    ("eval.attribution.power=0", "eval.attribution.power"),
    ("eval.attribution.fit_directions=1", "eval.attribution.fit_directions"),
    ("eval.attribution.bogus=1", "eval.attribution.bogus"),
])
def test_bad_attribution_input_names_the_field(override, field, tmp_path, capsys):
    with pytest.raises(ConfigError) as e:
        load_run(SPIRAL, [override])
    assert e.value.field == field
    out = tmp_path / "o"
    assert main(["run", SPIRAL, *TINY, override, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err
    assert not out.exists() or not any(out.iterdir())


def test_attribution_setting_follows_the_objective():
    """J is evaluated at the λ the run ended on; sigreg_only is λ = 1; objectives
    without SIGReg have no setting."""
    ramp = load_run(SPIRAL, ["learner.objective.schedule.kind=ramp",
                             "learner.objective.schedule.end=0.1"])
    assert attribution_setting(ramp)["lam"] == pytest.approx(0.1)
    const = attribution_setting(load_run(SPIRAL, ["learner.objective.scale=sample"]))
    assert const["lam"] == pytest.approx(1e-3) and const["scale"] == "sample"
    assert attribution_setting(load_run(SPIRAL, ["learner.objective.kind=sigreg_only"]))[
        "lam"] == 1.0
    assert attribution_setting(load_run(SPIRAL, ["learner.objective.kind=whiten"])) is None
    # oracles at scale 1 only where encoder and mixer both preserve volume
    assert const["fixed_scale"] is False
    coupling = ["world.mixer.kind=coupling", "world.dim=4"]
    assert attribution_setting(load_run(SPIRAL, [*coupling, "learner.encoder.kind=matched"]))[
        "fixed_scale"] is True
    assert attribution_setting(load_run(SPIRAL, coupling))["fixed_scale"] is False


# ------------------------------------------------------------------ protocol
def test_every_record_carries_the_attribution_keys():
    """LeJEPA, sigreg_only and whitening members of vector worlds all carry the keys;
    whitening has no J (its loss keys and verdict are None) but R² against Φ⁻¹(F(z));
    for Gaussian latents r2_hz_gauss equals r2_hz to rounding."""
    base = [o for o in TINY if "slices=" not in o]
    cfgs = [load_run(SPIRAL, [f"learner.objective={k}", *base])
            for k in ("{kind: lejepa, slices: 8}", "{kind: sigreg_only, slices: 8}",
                      "{kind: whiten}")]
    cfgs.append(load_run(SPIRAL, ["learner.objective={kind: lejepa, slices: 8}", *base,
                                  "eval.attribution.enabled=false"]))
    by_hash = {r["hash"]: r for r in run_configs(cfgs, progress=False)}
    recs = [by_hash[config_hash(c)] for c in cfgs]
    for rec in recs[:3]:
        m = rec["metrics"]
        assert set(ATTRIBUTION_KEYS) <= set(m)
        assert m["r2_hz_gauss"] == pytest.approx(m["r2_hz"], abs=1e-6)
    for rec in recs[:2]:
        m = rec["metrics"]
        assert m["verdict"] in VERDICTS and m["loss_se"] > 0
        assert m["loss_rotation"] <= m["loss_rotation_scalar"] + 1e-12
    assert recs[1]["metrics"]["lam_effective"] == pytest.approx(2 * 64)  # λ = 1, M = 2B
    whiten = recs[2]["metrics"]
    assert whiten["verdict"] is None and whiten["loss_learned"] is None
    assert not set(ATTRIBUTION_KEYS) & set(recs[3]["metrics"])
    # the attribution stream is separate: metrics of the other keys are unchanged
    same = {k: v for k, v in recs[0]["metrics"].items() if k not in ATTRIBUTION_KEYS}
    assert same == {k: v for k, v in recs[3]["metrics"].items()}


# ------------------------------------------------------------------ cell verdicts
def _frame(verdicts, cells, status=None):
    n = len(verdicts)
    return pd.DataFrame({"cell.a": cells, "seed": range(n),
                         "status": status or ["ok"] * n, "verdict": verdicts,
                         "loss_learned": np.linspace(1, 2, n), "loss_rotation": 1.0,
                         "loss_alternative": 1.5, "loss_path_best": 1.2,
                         "lam_star": 0.01, "lam_effective": 0.5})


@given(st.lists(st.sampled_from(VERDICTS), min_size=1, max_size=12))
def test_majority_verdict_is_a_most_frequent_class(vs):
    counts = pd.Series(vs).value_counts().to_dict()
    major = majority_verdict(counts)
    assert counts[major] == max(counts.values())
    tied = [v for v in counts if counts[v] == counts[major]]
    assert VERDICT_PRIORITY.index(major) == min(VERDICT_PRIORITY.index(v) for v in tied)


def test_cell_verdicts_count_diverged_runs_without_metrics():
    """A diverged record has empty metrics (no verdict key); it still counts as
    diverged, and its losses are left out of the cell means."""
    df = _frame(["optimizer_gap", "optimizer_gap", None, "recovered", "recovered", None],
                ["x", "x", "x", "y", "y", "y"],
                ["ok", "ok", "diverged", "ok", "ok", "diverged"])
    assert row_verdicts(df).tolist()[2] == "diverged"
    cv = cell_verdicts(df, ["a"], {"a": ["x", "y"]}).set_index("a")
    assert (cv.loc["x", "verdict"], cv.loc["x", "k"], cv.loc["x", "n"]) == ("optimizer_gap", 2, 3)
    assert cv.loc["x", "n_diverged"] == 1
    assert cv.loc["x", "loss_learned"] == pytest.approx(np.mean(df["loss_learned"][:2]))
    text = verdict_text(df, {"a": ["x", "y"]}, ["a"])
    assert "optimizer gap ⚙ in 1/2 cells" in text and "recovered ✓ in 1/2 cells" in text
    assert "a=x fails: optimizer gap in 2/3 seeds; diverged in 1/3 seeds" in text
    assert "best rotation 1 vs the alternative 1.5" in text


def test_heatmap_shows_verdict_marks_and_legend():
    df = _frame(["nonrotation_optimum"] * 2 + [None], ["x", "x", "y"], ["ok", "ok", "diverged"])
    df["cell.b"] = "u"
    df["r2_hz"] = 0.5
    fig = plots.heatmap(df, {"a": ["x", "y"], "b": ["u"]}, metric="r2_hz", x="a", y="b")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("✗ 2/2" in t for t in texts) and any("† 1/1" in t for t in texts)
    legend = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    # the legend names the classes drawn, and only those
    assert {t for t in legend if t[:1] in "".join(VERDICT_MARKS.values())} == \
        {"✗ non-rotation optimum", "† diverged"}


# ------------------------------------------------------------------ sweeps
def test_tiny_sweep_report_shows_verdicts(tmp_path):
    spec = load_spec({
        "name": "tiny-verdicts", "description": "Gaussian vs uniform, constant vs ramp.",
        "base": {"world": {"dim": 2, "latent": {"kind": "gaussian"},
                           "dynamics": {"kind": "copula_ou", "rho": 0.9},
                           "mixer": {"kind": "spiral"}},
                 "learner": {"encoder": {"kind": "mlp", "hidden": 16, "depth": 2},
                             "objective": {"kind": "lejepa", "slices": 8}},
                 "train": {"steps": 20, "batch": 64}, "eval": {"n": 600}},
        "grid": {"world.latent": [{"kind": "gaussian"}, {"kind": "uniform"}],
                 "learner.objective.schedule.kind": ["constant", "ramp"]},
        "seeds": 1,
        "plots": [{"kind": "heatmap", "x": "world.latent",
                   "y": "learner.objective.schedule.kind", "metric": "r2_hz_gauss"}]})
    assert run_sweep(spec, tmp_path / "run", progress=False)["trained"] == 4
    text = write_report(tmp_path / "run", tmp_path / "reports").read_text()
    assert "Attribution (majority verdict over seeds" in text
    assert any(f"{m} in" in text for m in VERDICT_MARKS.values())
    table = text[text.index("## Cells"):]
    assert "| verdict |" in table and "r2_hz_gauss" in table
    assert sum(f" {m} 1/1" in table for m in VERDICT_MARKS.values()) >= 1


def test_constraint_sweep_is_a_default_sweep_with_its_cells():
    assert "constraint" in DEFAULT_SWEEPS
    spec = load_spec("sweeps/constraint.yaml")
    cfgs = [c for c, _ in plan(spec)]
    assert len(cfgs) == 5 * 2 * 3
    ramps = [c for c in cfgs if c.learner.objective.schedule.kind == "ramp"]
    assert len(ramps) == 15 and all(
        (c.train.lr_drop.at, c.train.lr_drop.factor, c.learner.objective.schedule.end,
         c.learner.objective.schedule.start, c.learner.objective.schedule.stop)
        == (0.5, 0.05, 0.1, 0.5, 0.75) for c in ramps)
    laws = {(c.world.latent.kind, c.world.dynamics.kind) for c in cfgs}
    assert laws == {("gaussian", "ou"), ("laplace", "laplace_ar"), ("uniform", "copula_ou"),
                    ("gennorm", "copula_ou")}


def test_bench_only_attribution_merges_its_rows(tmp_path, capsys):
    """`identlab bench --only attribution` adds the attribution rows (shares in [0, 1))
    and keeps every other row of the existing report."""
    import json

    out = tmp_path / "bench.md"
    out.with_suffix(".json").write_text(json.dumps({"spiral_k1_ms": 1.5, "threads": 1}))
    assert main(["bench", "--only", "attribution", "--quick", "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    assert res["spiral_k1_ms"] == 1.5
    for law in ("gaussian", "gennorm"):
        assert 0.0 <= res[f"attribution_share_{law}"] < 1.0
        assert res[f"attribution_member_s_{law}"] >= 0.0
    assert "`attribution_share_gaussian`" in out.read_text()
    assert res["attribution_provenance"]["device"] == "cpu"  # the section says where it ran
    assert "Rows `attribution_*` come from a later run" in out.read_text()


# ------------------------------------------------------------------ runs against the target
def test_weak_lambda_run_collapses_and_its_bound_is_not_informative():
    """λ 1e-5 on a tiny identity world: the alignment term shrinks the embedding (or the
    best rotation's scale to its bound), and the verdict says collapsed; a bound at or
    above a constant embedding's error cannot fail, and the record says so. The same
    world at λ 0.1 keeps an informative bound."""
    base = ["world.mixer.kind=identity", "learner.encoder.hidden=16",
            "learner.encoder.depth=2", "learner.objective.slices=8", "train.steps=300",
            "train.batch=64", "eval.n=600", "eval.sigreg_slices=16", "train.lr=0.01"]
    weak = load_run(SPIRAL, [*base, "learner.objective.lam=1e-5"])
    strong = load_run(SPIRAL, [*base, "learner.objective.lam=0.1"])
    by_hash = {r["hash"]: r["metrics"] for r in run_configs([weak, strong], progress=False)}
    w, s = by_hash[config_hash(weak)], by_hash[config_hash(strong)]
    assert w["verdict"] == "collapsed"
    assert w["theorem_target"] == "z" and w["bound_trivial"] == pytest.approx(2.0, abs=0.3)
    assert w["bound_informative"] is (w["bound"] < w["bound_trivial"])
    assert s["bound_informative"] is True and s["bound"] < s["bound_trivial"]
    assert s["r2_target"] == s["r2_hz"] and s["verdict"] != "collapsed"


def test_copula_run_is_scored_against_u():
    """A copula-OU record carries theorem_target u, its R², CCA and bound against u, and
    oracles that rotate u (with z as the alternative)."""
    cfg = load_run(SPIRAL, [*TINY, "world.latent.kind=uniform",
                            "world.dynamics.kind=copula_ou"])
    (rec,) = run_configs([cfg], progress=False)
    m = rec["metrics"]
    assert rec["theorem_applies"] and rec["reasons"] == []
    assert (m["theorem_target"], m["oracle_target"], m["alternative"]) == ("u", "u", "z")
    assert m["r2_target"] == pytest.approx(m["r2_hz_gauss"], abs=1e-9)
    assert m["bound"] is not None and m["procrustes_target"] is not None
    assert m["verdict"] in VERDICTS
