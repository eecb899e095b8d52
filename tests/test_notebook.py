"""The teaching notebook examples/walkthrough.ipynb runs end to end (tiny budget).

The notebook is executed as committed, in a python3 kernel of this interpreter, from the
repository root and with IDENTLAB_NOTEBOOK_QUICK=1 (60 training steps, a small MLP).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "walkthrough.ipynb"
BUILDER = ROOT / "examples" / "build_walkthrough.py"


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.output_type == "stream" and o.name == "stdout")


def _pngs(nb) -> int:
    return sum("image/png" in o.get("data", {})
               for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.fixture(scope="module")
def executed():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:  # run from a clean slate, not the committed outputs
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    env = dict(os.environ, IDENTLAB_NOTEBOOK_QUICK="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}})
    client.execute(env=env)  # raises CellExecutionError on the first failing cell
    return nb


def test_notebook_runs_and_prints_scores(executed):
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert all(o.output_type != "error" for c in code for o in c.outputs)
    assert "quick budget" in _stdout(code[0])
    text = "\n".join(_stdout(c) for c in code)
    # the flags cell: the Gaussian world satisfies the theorem, the Laplace one does not
    assert "theorem applies: True" in text and "theorem applies: False" in text
    assert "not Gaussian" in text
    score_lines = [line for c in code for line in _stdout(c).splitlines()
                   if line.split()[:1] in (["r2_hz"], ["procrustes"], ["bound_holds"])]
    assert len(score_lines) == 3  # the score table: one row per key, both worlds in each
    assert all(len(line.split()) == 3 for line in score_lines)
    assert "fresh pairs: r2_hz=" in text  # il.evaluate on the user's own samples
    assert _pngs(executed) == 3  # loss curves, h vs z, the Laplace histogram


def test_committed_notebook_matches_its_builder_and_carries_outputs():
    """The committed notebook is the builder's cells, executed with the full budget."""
    spec = importlib.util.spec_from_file_location("build_walkthrough", BUILDER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.build()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert [(c.cell_type, c.source) for c in nb.cells] == \
        [(c.cell_type, c.source) for c in built.cells]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "full budget" in _stdout(code[0])
    assert _pngs(nb) == 3
    assert NOTEBOOK.stat().st_size < 400_000  # figures as modest PNGs
