"""Report figures: human labels, no overlapping text, labelled thresholds, legends and
panels only for what is drawn."""

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from test_report import make_synthetic

from identlab.measure.stats import VERDICT_NAMES
from identlab.show import labels, plots
from identlab.show.report import _check_text, _sweep_records, load_records, write_report

DOTTED_RE = re.compile(r"[A-Za-z_]+(?:\.[A-Za-z_]+)+")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """(records table, grid, samples) of the synthetic sweep."""
    root = make_synthetic(tmp_path_factory.mktemp("figs") / "sweep")
    df = load_records(root)
    grid = json.loads((root / "spec.json").read_text())["grid"]
    samples = {r["hash"]: r["sample"] for r in _sweep_records(root) if r.get("sample")}
    return df, grid, samples


def _with_trajectories(df: pd.DataFrame) -> pd.DataFrame:
    steps = [0, 100, 200, 400]
    rng = np.random.default_rng(1)
    out = df.copy()
    out["traj_steps"] = ";".join(map(str, steps))
    out["traj_r2_hz"] = [";".join(f"{v:.4f}" for v in np.clip(
        r + 0.02 * rng.normal(size=len(steps)), 0, 1)) for r in out["r2_hz"].fillna(0)]
    out["traj_loss"] = [";".join(f"{v:.4f}" for v in 0.2 + rng.random(len(steps)))
                        for _ in range(len(out))]
    out["traj_loss_rotation"] = 0.25
    out["traj_loss_gaussianized"] = 0.22
    return out


def _with_verdicts(df: pd.DataFrame) -> pd.DataFrame:
    """lejepa rows get attribution verdicts; whitening has none (as in real records)."""
    out = df.copy()
    lejepa = out["learner.objective.kind"] == "lejepa"
    good = out["r2_hz"].fillna(0) >= 0.95
    out["verdict"] = np.where(lejepa, np.where(good, "recovered", "nonrotation_optimum"),
                              None)
    return out


def _figures(df, grid, samples) -> dict[str, Figure]:
    """One figure of every kind the reports draw."""
    rho = "world.dynamics.rho"
    kind = "learner.objective.kind"
    traj = _with_trajectories(df)
    images = np.random.default_rng(0).integers(0, 255, (2, 6, 3, 16, 16), dtype=np.uint8)
    return {
        "heatmap": plots.heatmap(df, grid, metric="r2_hz", x=f"{rho}[0]", y=f"{rho}[1]",
                                 facet=kind, overlay="rho_sq", threshold=0.95),
        "heatmap-categorical": plots.heatmap(df, grid, metric="procrustes", x=kind, y=rho,
                                             overlay="theorem"),
        "heatmap-verdicts": plots.heatmap(_with_verdicts(df), grid, metric="r2_hz",
                                          x=f"{rho}[0]", y=f"{rho}[1]", facet=kind,
                                          threshold=0.95),
        "line": plots.line(df, grid, metric="r2_hz", x=f"{rho}[0]", group=kind,
                           threshold=0.95),
        "line-categorical": plots.line(df, grid, metric="cca_min", x=rho, facet=kind),
        "scatter": plots.scatter(df, samples, grid, max_cells=5),
        "bound": plots.bound(df),
        "versus": plots.versus(df, grid, metric="procrustes", x="r2_hz", group=kind,
                               threshold=0.95),
        "frames": plots.frames(images, np.zeros((2, 6, 2))),
        "trajectory": plots.trajectory(traj, grid, metric="traj_r2_hz", group=kind,
                                       facet=f"{rho}[0]"),
        "trajectory-oracles": plots.trajectory(traj, grid, metric="traj_loss", group=kind,
                                               y=f"{rho}[1]"),
    }


@pytest.fixture(scope="module")
def figures(sweep):
    return _figures(*sweep)


def _texts(fig) -> list[str]:
    plots.text_overlaps(fig)  # draws the figure
    return [t.get_text() for t, _ in plots._figure_texts(fig)]


# ------------------------------------------------------------------ labels
def test_label_table_and_fallback():
    assert labels.label("learner.objective.lam") == "λ"
    assert labels.label("world.dynamics.rho") == "ρ"
    assert labels.label("world.dynamics.rho[0]") == "ρ₁"
    assert labels.label("learner.objective.kind") == "objective"
    assert labels.label("world.latent.alpha") == "α (generalized-normal shape)"
    assert labels.label("r2_hz") == "R²(h→z)"
    assert labels.label("cca_min") == "min CCA"
    assert labels.label("orth_err") == "orthogonality error"
    assert labels.label("plan_regret") == "planning regret"
    assert labels.label("train.lr_drop.some_new_key") == "some new key"
    assert labels.label("world.mixer.pairs[1]") == "mixer coupling pairs (dim 2)"
    assert labels.label(None) == ""


# ------------------------------------------------------------------ overlaps
def test_no_text_overlaps_in_any_figure_kind(figures):
    for name, fig in figures.items():
        pairs = plots.text_overlaps(fig)
        assert pairs == [], f"{name}: {plots.describe_overlaps(pairs)}"


def test_overlap_check_detects_a_planted_overlap():
    fig = Figure(figsize=(4, 3))
    fig.text(0.5, 0.5, "first label", ha="center")
    fig.text(0.5, 0.5, "second label", ha="center")
    fig.text(0.1, 0.1, "far away")
    pairs = plots.text_overlaps(fig)
    assert [(a.get_text(), b.get_text()) for a, b in pairs] == [("first label",
                                                               "second label")]


def test_overlap_check_on_slanted_and_categorical_labels():
    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot()
    ax.set_xticks([0, 1], ["a long level name", "another long name"])
    ax.set_xlim(-0.2, 1.2)
    for t in ax.get_xticklabels():
        t.set_fontsize(30)
    assert plots.text_overlaps(fig), "level names placed by the plot must not collide"
    for t in ax.get_xticklabels():
        t.set_fontsize(8)
        t.set_rotation(30)
        t.set_horizontalalignment("right")
    assert plots.text_overlaps(fig) == []  # parallel slanted labels apart: no overlap
    fig.text(0.5, 0.5, "slanted", rotation=30)
    fig.text(0.5, 0.5, "slanted too", rotation=30)
    assert len(plots.text_overlaps(fig)) == 1


def test_report_writer_checks_every_figure(tmp_path):
    root = make_synthetic(tmp_path / "sweep")
    with warnings.catch_warnings():
        warnings.simplefilter("error", plots.OverlapWarning)
        write_report(root, tmp_path / "reports")
    fig = Figure(figsize=(3, 2))
    fig.text(0.5, 0.5, "x")
    fig.text(0.5, 0.5, "y")
    with pytest.warns(plots.OverlapWarning, match="overlapping text"):
        _check_text(fig, "01-planted")


# ------------------------------------------------------------------ raw keys
def test_no_raw_keys_in_any_text(figures, sweep):
    df, grid, _ = sweep
    raw = {c for c in df.columns if "_" in c or "." in c} | set(grid)
    for name, fig in figures.items():
        for text in _texts(fig):
            assert not DOTTED_RE.search(text), f"{name}: dotted key in {text!r}"
            for key in raw:
                assert not re.search(rf"(?<![\w.]){re.escape(key)}(?![\w])", text), \
                    f"{name}: raw key {key!r} in {text!r}"


def test_axis_labels_and_titles_come_from_the_label_table(figures):
    heat = figures["heatmap"]
    panels = [ax for ax in heat.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["objective = lejepa", "objective = whiten"]
    assert panels[0].get_xlabel() == "ρ₁" and panels[0].get_ylabel() == "ρ₂"
    assert any(ax.get_ylabel() == "R²(h→z) (mean)" for ax in heat.axes)  # colour bar
    assert heat.get_suptitle() == "R²(h→z) over ρ₁ × ρ₂"
    line = figures["line"].axes[0]
    assert line.get_xlabel() == "ρ₁" and line.get_ylabel() == "R²(h→z)"
    assert line.get_legend().get_title().get_text() == "objective"
    versus = figures["versus"].axes[0]
    assert (versus.get_xlabel(), versus.get_ylabel()) == ("R²(h→z)", "Procrustes error")
    traj = figures["trajectory"].axes[0]
    assert traj.get_title() == "ρ₁ = 0.5" and traj.get_ylabel() == "R²(h→z)"


# ------------------------------------------------------------------ thresholds, legends
def test_colourbar_threshold_is_labelled(figures):
    cbar = [ax for ax in figures["heatmap"].axes if ax.get_ylabel() == "R²(h→z) (mean)"]
    assert len(cbar) == 1
    assert any("recovered ≥ 0.95" in t.get_text() for t in cbar[0].texts)
    assert any(abs(ln.get_ydata()[0] - 0.95) < 1e-9 for ln in cbar[0].lines)
    legend = [t.get_text() for t in figures["line"].axes[-1].get_legend().get_texts()]
    assert "recovered ≥ 0.95" in legend
    assert plots.threshold_label("procrustes", 0.2) == "Procrustes error ≥ 0.2"


def _legend_texts(fig) -> list[str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [t.get_text() for leg in legends for t in leg.get_texts()]


def test_no_verdict_legend_without_verdicts(figures):
    names = set(VERDICT_NAMES.values())
    for name in ("heatmap", "heatmap-categorical"):  # synthetic records: no verdicts
        texts = _legend_texts(figures[name])
        assert not any(t.split(" ", 1)[-1] in names for t in texts), (name, texts)
        assert not any("verdict" in t for t in texts)
    # the ρ² boundary is drawn, so its entry stays
    assert any("ρ_max²" in t for t in _legend_texts(figures["heatmap"]))


def test_verdict_legend_lists_only_the_classes_drawn(figures):
    fig = figures["heatmap-verdicts"]
    texts = _legend_texts(fig)
    assert "✓ recovered" in texts and "✗ non-rotation optimum" in texts
    assert not any("optimizer gap" in t or "diverged" in t for t in texts)
    whiten = next(ax for ax in fig.axes if ax.get_title() == "objective = whiten")
    assert not any("✓" in t.get_text() or "✗" in t.get_text() for t in whiten.texts)


def test_no_empty_panels(figures):
    assert len(figures["scatter"].axes) == 5  # 5 cells on a 2 × 3 grid: one removed
    for name, fig in figures.items():
        for ax in fig.axes:
            assert ax.has_data() or ax.images, f"{name}: an empty panel"


# ------------------------------------------------------------------ the default reports
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_default_reports_have_no_text_overlaps():
    """Every figure of the committed reports, redrawn from their results.csv (the h-vs-z
    scatter needs the records' samples: the synthetic sweep covers it)."""
    from identlab.show.report import BOOL_COLUMNS, _render, plot_id
    from identlab.sweep.spec import load_spec

    checked, bad = 0, []
    for path in sorted((ROOT / "sweeps").glob("*.yaml")):
        try:
            spec = load_spec(path)
        except Exception:  # not a sweep spec (a base config, a walkthrough)
            continue
        for preset in [None, *spec.presets]:
            sp = load_spec(path, preset=preset) if preset else spec
            csv = ROOT / "reports" / sp.report_name / "results.csv"
            if not csv.is_file():
                continue
            df = pd.read_csv(csv, low_memory=False)
            for c in [c for c in df if c in BOOL_COLUMNS or c.startswith("flag.")]:
                df[c] = df[c].astype("boolean")
            for c in [c for c in df if c.startswith("cell.")]:
                df[c] = df[c].astype(str)
            for i, p in enumerate(sp.to_json()["plots"]):
                p = {k: v for k, v in p.items() if v is not None}
                fig, _, _ = _render(p, df, sp.grid, {}, sp.base)
                pairs = plots.text_overlaps(fig)
                checked += 1
                if pairs:
                    bad.append(f"{sp.report_name}/{plot_id(i, p)}: "
                               f"{plots.describe_overlaps(pairs)}")
    if not checked:
        pytest.skip("no committed reports to redraw")
    assert bad == []
