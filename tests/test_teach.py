"""`identlab teach --quick`: the walkthrough renders end to end from real (tiny) runs."""

import re
import time

import pytest

from identlab.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("teach") / "t"
    t0 = time.perf_counter()
    code = main(["teach", "--quick", "--no-progress", "--out", str(out)])
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
    for n in range(1, 9):
        assert re.search(rf"^## {n}\. ", readme, re.M), f"heading {n} missing"
    assert "## Facts checked" in readme


def test_every_image_link_is_a_png(quick_report):
    _, out, _ = quick_report
    readme = (out / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert len(links) >= 8
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
    assert main(["teach", "--quick", "--out", str(target)]) == 2
    assert "error" in capsys.readouterr().err
    assert target.read_text() == "x"
