"""Sweep reports: results table, figures, generated paragraphs, safe paths, index."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from identlab.core.fmt import fmt
from identlab.core.io import write_json_atomic
from identlab.core.schema import ConfigError
from identlab.measure.stats import align_orthogonal, seed_std
from identlab.show import plots
from identlab.show.report import (
    describe_bound,
    describe_heatmap,
    load_records,
    report_dir,
    write_index,
    write_report,
)
from identlab.sweep.store import Store, config_digest

RHOS = (0.5, 0.8, 0.99)
OBJECTIVES = ("lejepa", "whiten")
SEEDS = (0, 1)
DIVERGED = {("whiten", (0.5, 0.5), 1)}
LINK_RE = re.compile(r"!?\[[^\]]*\]\(([^)]+)\)")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ synthetic sweep
def _label(rho) -> str:
    return "[" + ",".join(f"{r:g}" for r in rho) + "]"


def _record(k, idx, rho, obj, seed, rng) -> dict:
    """A hand-made record: whitening fails where max(rho)^2 > min(rho)."""
    fail = obj == "whiten" and max(rho) ** 2 > min(rho)
    div = (obj, rho, seed) in DIVERGED
    z = rng.normal(size=(120, 2))
    th = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    h = np.c_[z[:, 0] ** 2 - 1, z[:, 0]] if fail else z @ rot.T
    r2 = (0.3 if fail else 0.97) + 0.02 * rng.normal()
    proc = abs(rng.normal(0.05, 0.02)) * (10 if fail else 1)
    bnd = proc * rng.uniform(0.5, 3)
    metrics = {} if div else {
        "r2_hz": r2, "r2_hz_dims": [r2, r2], "cca_min": r2 - 0.05, "mcc": r2,
        "procrustes": proc, "bound": bnd, "bound_se": 0.01, "bound_holds": proc <= bnd + 0.03}
    config = {"seed": seed, "world": {"dim": 2, "dynamics": {"kind": "ou", "rho": list(rho)}},
              "learner": {"objective": {"kind": obj}}, "train": {"betas": [0.9, 0.999]}}
    return {
        "hash": config_digest(config), "seed": seed, "status": "diverged" if div else "ok",
        "diverged_at": 7 if div else None,
        "config": config,
        "metrics": metrics, "flags": {"gaussian": True, "stationary": True, "additive": True},
        "theorem_applies": obj == "lejepa" or rho[0] == rho[1], "reasons": [], "mixer": {},
        "sample": None if div else {"z": z.tolist(), "h": h.tolist()},
        "train": {"final_loss": 0.1, "history": []},
        "provenance": {"identlab": "0.1.0", "git_sha": "abc1234", "torch": "2.x",
                       "device": "cpu", "wall_s": 3.0, "train_s": 2.0, "steps_per_s": 10.0,
                       "group_size": 4},
        "sweep": {"name": "synth", "cell_index": idx,
                  "cell": {"world.dynamics.rho": _label(rho), "learner.objective.kind": obj},
                  "values": {"world.dynamics.rho": list(rho), "learner.objective.kind": obj}}}


PLOTS = [
    {"kind": "heatmap", "x": "world.dynamics.rho[0]", "y": "world.dynamics.rho[1]",
     "metric": "r2_hz", "facet": "learner.objective.kind", "overlay": "rho_sq",
     "threshold": 0.9},
    {"kind": "heatmap", "x": "learner.objective.kind", "y": "world.dynamics.rho",
     "metric": "procrustes", "overlay": "theorem"},
    {"kind": "line", "x": "world.dynamics.rho[0]", "group": "learner.objective.kind",
     "metric": "r2_hz"},
    {"kind": "scatter"},
    {"kind": "bound"},
]


def make_synthetic(root: Path, name: str = "synth") -> Path:
    """A sweep directory written by hand: per-dim rho grid × objective × 2 seeds."""
    rng = np.random.default_rng(0)
    grid = {"world.dynamics.rho": [[a, b] for a in RHOS for b in RHOS],
            "learner.objective.kind": list(OBJECTIVES)}
    spec = {"name": name, "description": "A synthetic sweep.\nSecond line.", "grid": grid,
            "zip": [], "seeds": list(SEEDS), "plots": PLOTS, "digest": "d", "base": {}}
    write_json_atomic(root / "spec.json", spec)
    store, k, idx = Store(root), 0, 0
    for rho in grid["world.dynamics.rho"]:
        for obj in OBJECTIVES:
            for seed in SEEDS:
                k += 1
                store.put(_record(k, idx, tuple(rho), obj, seed, rng))
            idx += 1
    return root


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """(sweep dir, reports root, README path) of the synthetic sweep's report."""
    base = tmp_path_factory.mktemp("synth")
    sweep = make_synthetic(base / "sweep")
    readme = write_report(sweep, base / "reports")
    return sweep, base / "reports", readme


def _paragraph(readme: Path, n: int) -> str:
    """The generated paragraph under figure heading ``## n.``."""
    text = readme.read_text()
    block = text.split(f"## {n}. ", 1)[1].split("\n## ", 1)[0]
    return [ln for ln in block.splitlines() if ln and not ln.startswith(("!", "[", "#"))][-1]


# ------------------------------------------------------------------ table
def test_results_csv_one_row_per_record_with_columns(synth):
    sweep, _, readme = synth
    df = load_records(sweep)
    n = len(list((sweep / "records").glob("*.json")))
    assert len(df) == n == len(RHOS) ** 2 * len(OBJECTIVES) * len(SEEDS)
    assert not (sweep / "results.csv").exists()  # the sweep directory is only read
    csv = pd.read_csv(readme.parent / "results.csv")
    assert len(csv) == n
    expected = {"hash", "seed", "status", "diverged_at", "theorem_applies", "flag.gaussian",
                "flag.stationary", "flag.additive", "cell.world.dynamics.rho",
                "cell.learner.objective.kind", "world.dynamics.rho", "world.dynamics.rho[0]",
                "world.dynamics.rho[1]", "learner.objective.kind", "cfg.world.dynamics.kind",
                "cfg.world.dynamics.rho[1]", "cfg.train.betas[0]", "r2_hz", "procrustes",
                "bound_holds", "wall_s", "steps_per_s"}
    assert expected <= set(csv.columns)
    assert set(csv["world.dynamics.rho[0]"]) == set(RHOS)
    assert (csv["status"] == "diverged").sum() == len(DIVERGED)
    assert str(csv["r2_hz_dims"].dropna().iloc[0]).count(";") == 1  # list metric joined


# ------------------------------------------------------------------ figures
@pytest.mark.parametrize("stem", ["01-heatmap-r2_hz", "02-heatmap-procrustes",
                                  "03-line-r2_hz", "04-scatter-h-vs-z", "05-bound-bound"])
def test_each_plot_kind_renders(synth, stem):
    out = synth[2].parent
    png, svg = out / f"{stem}.png", out / f"{stem}.svg"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 8000
    assert svg.stat().st_size > 4000 and b"<svg" in svg.read_bytes()[:2000]


def test_readme_references_only_existing_files(synth):
    readme = synth[2]
    links = LINK_RE.findall(readme.read_text())
    images = [ln for ln in links if ln.endswith(".png")]
    assert len(images) == len(PLOTS)
    for link in links:
        assert (readme.parent / link).is_file(), link
    assert "A synthetic sweep." in readme.read_text()


def test_plots_render_empty_inputs_and_leave_matplotlib_state_alone(tmp_path):
    import matplotlib

    before = (matplotlib.get_backend(), dict(matplotlib.rcParams))
    df = pd.DataFrame({"hash": [], "status": [], "seed": [], "cell_index": []})
    for fig in (plots.bound(df), plots.scatter(df, {}, {})):
        paths = plots.save(fig, tmp_path / "empty")
        assert all(p.stat().st_size > 0 for p in paths)
    assert (matplotlib.get_backend(), dict(matplotlib.rcParams)) == before


def test_report_of_a_sweep_without_records(tmp_path):
    sweep = tmp_path / "sweep"
    write_json_atomic(sweep / "spec.json", {"name": "empty", "description": "Nothing yet.",
                                            "grid": {"a": [1, 2]}, "seeds": [0],
                                            "plots": [{"kind": "heatmap", "x": "a", "y": "a"}]})
    readme = write_report(sweep, tmp_path / "reports")
    text = readme.read_text()
    assert "0 records" in text and "No finished runs" in text
    assert all((readme.parent / ln).is_file() for ln in LINK_RE.findall(text))


# ------------------------------------------------------------------ paragraphs
def test_seed_std_is_the_sample_std_over_runs():
    assert seed_std([0.99, 0.98]) == pytest.approx(np.std([0.99, 0.98], ddof=1))
    assert seed_std([0.5]) == 0.0 and np.isnan(seed_std([]))  # one run: no spread
    assert seed_std(pd.Series([1.0, np.nan, 3.0])) == pytest.approx(np.sqrt(2))
    np.testing.assert_allclose(seed_std(np.array([[1.0, 5.0], [3.0, np.nan]]), axis=0),
                               [np.sqrt(2), 0.0])


def _cell_means(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    ok = df[df["status"] == "ok"]
    g = ok.groupby(["cell.learner.objective.kind", "cell.world.dynamics.rho"])
    out = g[metric].agg(["mean", lambda s: s.std(ddof=1) if len(s) > 1 else 0.0]).reset_index()
    out.columns = ["kind", "rho", "mean", "std"]
    theorem = df.groupby(["cell.learner.objective.kind", "cell.world.dynamics.rho"])[
        "theorem_applies"].all().reset_index(drop=True)
    return out.assign(theorem=theorem.to_numpy())


def test_heatmap_paragraph_matches_direct_computation(synth):
    sweep, _, readme = synth
    df = load_records(sweep)
    cells = _cell_means(df, "r2_hz")
    yes = cells[cells["theorem"]]
    no = cells[~cells["theorem"]]
    para = _paragraph(readme, 1)
    assert para == describe_heatmap(df, json.loads((sweep / "spec.json").read_text())["grid"],
                                    PLOTS[0])
    assert f"{(yes['mean'] >= 0.9).sum()}/{len(yes)} cells where the theorem applies" in para
    assert f"{(no['mean'] >= 0.9).sum()}/{len(no)} cells where it does not" in para
    best = cells.loc[cells["mean"].idxmax()]
    assert f"Highest: {fmt(best['mean'])} ± {fmt(best['std'], 2)}" in para
    beyond = df[(df["status"] == "ok") & (df[["world.dynamics.rho[0]", "world.dynamics.rho[1]"]]
                                          .max(axis=1) ** 2 > df[["world.dynamics.rho[0]",
                                                                 "world.dynamics.rho[1]"]]
                                          .min(axis=1))]
    n_beyond, mean_beyond = beyond["cell_index"].nunique(), fmt(beyond["r2_hz"].mean())
    assert f"ρ_min ({n_beyond} cells) the mean r2_hz is {mean_beyond}" in para
    assert f"Diverged: {len(DIVERGED)} of {len(df)} runs" in para


def test_bound_paragraph_matches_direct_computation(synth):
    sweep, _, readme = synth
    df = load_records(sweep)
    ok = df[(df["status"] == "ok") & (df["bound"] > 0)]
    k = int(ok["bound_holds"].astype(bool).sum())
    para = _paragraph(readme, 5)
    assert para == describe_bound(df)
    assert f"holds in {k}/{len(ok)} runs" in para
    ratio = ok["procrustes"] / ok["bound"]
    assert f"ratio procrustes / bound is {fmt(ratio.median())}" in para
    assert f"{int((ok['r2_hz'] < 0.5).sum())} runs have r2_hz < 0.5" in para


def test_cell_table_counts_diverged_and_rates(synth):
    text = synth[2].read_text()
    row = next(ln for ln in text.splitlines() if ln.startswith("| [0.5,0.5] | whiten |"))
    assert "| 1/2 |" in row  # one ok run of two
    assert "96 records" not in text and f"{len(RHOS) ** 2 * 4} records" in text


# ------------------------------------------------------------------ helpers
def test_align_orthogonal_undoes_a_rotation_and_shift():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(200, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    h_aligned, zc = align_orthogonal(z @ q.T + 5.0, z)
    assert np.allclose(h_aligned, zc, atol=1e-10)


# ------------------------------------------------------------------ safety, index
@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", "", "..", "x y"])
def test_bad_report_names_are_refused(tmp_path, name):
    """A refused name creates nothing anywhere: not the report folder, not a folder the
    name points at (``../evil``, ``a/b``, ``.hidden``), not the reports root."""
    sweep, reports = tmp_path / "sweep", tmp_path / "reports" / "inner"
    write_json_atomic(sweep / "spec.json", {"name": name, "grid": {}, "plots": []})
    # the reports root is two levels down, so ``..`` and ``../evil`` stay in the snapshot
    before = sorted(tmp_path.rglob("*"))
    assert before == [sweep, sweep / "spec.json"]
    with pytest.raises(ConfigError):
        write_report(sweep, reports)
    assert sorted(tmp_path.rglob("*")) == before
    with pytest.raises(ConfigError):
        report_dir(reports, name)
    assert sorted(tmp_path.rglob("*")) == before


def test_write_index_lists_every_report(synth, tmp_path):
    root = tmp_path / "reports"
    (root / "synth").mkdir(parents=True)
    (root / "synth" / "README.md").write_text(synth[2].read_text())
    (root / "teach").mkdir()
    (root / "teach" / "README.md").write_text("# Teaching\n\nWhy Gaussian latents matter.\n")
    (root / "bench.md").write_text("# Bench\n\nms per step by ensemble size.\n")
    timings = {"synth": {"planned": 36, "trained": 30, "skipped": 6, "wall_s": 12.5},
               "lost": {"planned": 4, "trained": 0, "skipped": 0, "wall_s": 0.1}}
    text = write_index(root, timings, 99.0).read_text()
    assert "[synth](synth/README.md)" in text and "A synthetic sweep." in text
    assert "[teach](teach/README.md)" in text and "Why Gaussian latents matter." in text
    assert "[bench](bench.md)" in text
    assert "| 36 | 30 | 6 | 12.5 |" in text and "lost" in text
    assert "99.0 s" in text
    # a re-render of finished records keeps the timing of the run that trained them
    again = {"synth": {"planned": 36, "trained": 0, "skipped": 36, "wall_s": 0.4}}
    text = write_index(root, again, 1.2).read_text()
    assert "| 36 | 30 | 6 | 12.5 |" in text and "99.0 s" in text and "1.2 s" not in text
    # a run that trains replaces it
    text = write_index(root, {"synth": {"planned": 36, "trained": 36, "skipped": 0,
                                        "wall_s": 20.0}}, 30.0).read_text()
    assert "| 36 | 36 | 0 | 20.0 |" in text and "30.0 s" in text


# ------------------------------------------------------------------ end to end
def test_tiny_real_sweep_end_to_end(tmp_path):
    from identlab.sweep.run import run_sweep
    from identlab.sweep.spec import load_spec

    spec = load_spec({
        "name": "tiny-e2e", "description": "Gaussian vs Laplace copula-OU, two lambdas.",
        "base": {"world": {"dim": 2, "latent": {"kind": "gaussian"},
                           "dynamics": {"kind": "copula_ou", "rho": 0.9},
                           "mixer": {"kind": "spiral"}},
                 "learner": {"encoder": {"kind": "mlp", "hidden": 16, "depth": 2},
                             "objective": {"kind": "lejepa", "slices": 16}},
                 "train": {"steps": 20, "batch": 64},
                 "eval": {"n": 600, "sigreg_slices": 16}},
        "grid": {"world.latent": [{"kind": "gaussian"}, {"kind": "laplace"}],
                 "learner.objective.lam": [0.01, 0.5]},
        "seeds": 1,
        "plots": [{"kind": "heatmap", "x": "learner.objective.lam", "y": "world.latent",
                   "metric": "r2_hz", "overlay": "theorem"},
                  {"kind": "line", "x": "learner.objective.lam", "group": "world.latent",
                   "metric": "cca_min"},
                  {"kind": "scatter"}, {"kind": "bound"}]})
    summary = run_sweep(spec, tmp_path / "run", executor="local", progress=False)
    assert summary["trained"] == 4
    readme = write_report(tmp_path / "run", tmp_path / "reports")
    assert readme == (tmp_path / "reports" / "tiny-e2e" / "README.md").resolve()
    df = pd.read_csv(readme.parent / "results.csv")
    assert len(df) == 4 and {"cell.world.latent", "learner.objective.lam"} <= set(df.columns)
    text = readme.read_text()
    for link in LINK_RE.findall(text):
        assert (readme.parent / link).is_file(), link
    assert text.count("![") == 4 and "All 4 runs finished" in text
    assert "git sha" in text and "torch" in text


def test_tiny_real_per_dim_rho_sweep_with_rho_sq_overlay(tmp_path):
    """A list-valued grid axis plotted by its entries ``rho[0]`` × ``rho[1]``."""
    from identlab.sweep.run import run_sweep
    from identlab.sweep.spec import load_spec

    rhos = [[a, b] for a in (0.5, 0.99) for b in (0.5, 0.99)]
    spec = load_spec({
        "name": "rho-e2e", "description": "Per-dimension rho.",
        "base": {"world": {"dim": 2, "latent": {"kind": "gaussian"},
                           "dynamics": {"kind": "ou", "rho": [0.9, 0.9]},
                           "mixer": {"kind": "spiral"}},
                 "learner": {"encoder": {"kind": "mlp", "hidden": 16, "depth": 2},
                             "objective": {"kind": "whiten"}},
                 "train": {"steps": 20, "batch": 64}, "eval": {"n": 600, "sigreg_slices": 16}},
        "grid": {"world.dynamics.rho": rhos}, "seeds": 1,
        "plots": [{"kind": "heatmap", "x": "world.dynamics.rho[0]",
                   "y": "world.dynamics.rho[1]", "metric": "r2_hz", "overlay": "rho_sq"}]})
    run_sweep(spec, tmp_path / "run", executor="local", progress=False)
    readme = write_report(tmp_path / "run", tmp_path / "reports")
    df = load_records(tmp_path / "run")
    beyond = np.maximum(df["world.dynamics.rho[0]"], df["world.dynamics.rho[1]"]) ** 2 > \
        np.minimum(df["world.dynamics.rho[0]"], df["world.dynamics.rho[1]"])
    assert f"ρ_min ({int(beyond.sum())} cells) the mean r2_hz is " \
           f"{fmt(df.loc[beyond, 'r2_hz'].mean())}" in readme.read_text()
    assert (readme.parent / "01-heatmap-r2_hz.png").stat().st_size > 8000
