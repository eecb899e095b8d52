"""The reports index's "what the default sweeps show": every number from the records."""

import re

from test_report import make_synthetic

from identlab.core.fmt import fmt
from identlab.measure.thresholds import RECOVERED_R2
from identlab.show.findings import sweep_findings
from identlab.show.report import load_records, write_index


def test_findings_are_the_records_numbers(tmp_path):
    df = load_records(make_synthetic(tmp_path / "sweep"))
    text = sweep_findings("synth", df, "synth/README.md")
    assert text.startswith(f"- **[synth](synth/README.md)** ({len(df)} runs, ")
    ok = df[df["status"] == "ok"]
    cells = ok.groupby("cell_index")["r2_hz"].mean()
    assert "best cell" in text and fmt(cells.max()) in text and fmt(cells.min()) in text
    for applies in (True, False):
        part = ok[ok["theorem_applies"] == applies]
        if len(part):
            rec = (part.groupby("cell_index")["r2_hz"].mean() >= RECOVERED_R2).sum()
            n = part["cell_index"].nunique()
            assert f"{rec}/{n} cells recovered" in text
    if "verdict" in ok and ok["verdict"].notna().any():
        assert "verdicts over runs" in text
    if "bound_holds" in ok and ok["bound_holds"].notna().any():
        held = int(ok["bound_holds"].dropna().astype(bool).sum())
        assert f"bound holds in {held}/" in text


def test_index_keeps_findings_of_earlier_runs(tmp_path):
    root = tmp_path / "reports"
    write_index(root, {"a": {"planned": 1}}, 1.0, {"a": "- **a**: first."})
    write_index(root, {"b": {"planned": 2}}, None, {"b": "- **b**: second."})
    text = (root / "README.md").read_text()
    assert "## What the default sweeps show" in text
    assert text.index("- **a**: first.") < text.index("- **b**: second.")


def test_an_empty_sweep_says_so(tmp_path):
    import pandas as pd

    assert sweep_findings("x", pd.DataFrame()) == "- **x**: no records."
    assert not re.search(r"\bnan\b", sweep_findings("synth", load_records(
        make_synthetic(tmp_path / "s"))), re.I)
