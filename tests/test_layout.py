"""The layering rules of the package, each checked in a fresh interpreter or on source."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).parents[1] / "identlab"
LEARNER = ("identlab.learn",)
PLOTTING = ("matplotlib", "identlab.show")


def _loaded_after(stmt: str) -> set[str]:
    code = f"import sys, json; {stmt}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=PKG.parent)
    return set(json.loads(out.stdout))


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _imports(path: Path, module: str) -> set[str]:
    """identlab modules imported at module level (not inside functions)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("identlab") and m in _modules()}


def test_importing_the_world_loads_no_learner():
    mods = _loaded_after("import identlab.world.world")
    assert not [m for m in mods if m.startswith(LEARNER)]
    assert "torch" in mods  # the mixers are torch maps


def test_metrics_and_theory_load_no_plotting():
    mods = _loaded_after("import identlab.measure.metrics, identlab.measure.theory, "
                         "identlab.measure.protocol")
    assert not [m for m in mods if m.startswith(PLOTTING)]


def test_top_level_import_is_lazy():
    mods = _loaded_after("import identlab")
    assert not [m for m in mods if m.startswith(("identlab.", "torch"))]
    assert "identlab.api" in _loaded_after("import identlab; identlab.fit")


def test_no_module_outside_cli_imports_argparse_or_the_cli():
    for name, path in _modules().items():
        if name.startswith("identlab.cli") or name == "identlab.__main__":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            bad = [n for n in names if n == "argparse" or n.startswith("identlab.cli")]
            assert not bad, f"{name} imports {bad}"


def test_no_import_cycles():
    graph = {name: _imports(path, name) for name, path in _modules().items()}
    # a package's __init__ importing its own submodule is not a cycle of the layers
    for name in graph:
        graph[name] = {m for m in graph[name] if m != name and not name.startswith(m + ".")}
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_report_tables_take_numbers_from_measure_not_plots():
    src = (PKG / "show" / "report.py").read_text()
    tree = ast.parse(src)
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "plots":
            used.add(node.attr)
    stats = {"cell_stats", "mean_std", "heatmap_cells", "summary"}
    assert not (used & stats), f"report takes statistics from plots: {used & stats}"
