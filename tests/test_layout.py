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


# The README's layer table, top to bottom: a module may import its own layer and the
# layers above it, never one below, at module level or inside a function. Packages that
# share a row are siblings and import neither each other. The root package (its version
# and the lazy attribute access of the API) is not a layer.
LAYERS = (
    ("identlab.core",),
    ("identlab.world",),
    ("identlab.sigreg",),
    ("identlab.learn", "identlab.measure"),
    ("identlab.config", "identlab.record", "identlab.sizes", "identlab.testing"),
    ("identlab.run",),
    ("identlab.track",),
    ("identlab.sweep",),
    ("identlab.show",),
    ("identlab.api",),
    ("identlab.studies",),
    ("identlab.cli", "identlab.__main__"),
)


def _layer(module: str) -> tuple[int, str] | None:
    """(row, package) of a module in LAYERS, or None for the root package."""
    for row, names in enumerate(LAYERS):
        for name in names:
            if module == name or module.startswith(name + "."):
                return row, name
    return None


def layer_violations(module: str, source: str) -> list[str]:
    """Every import in ``source`` (module-level or inside a function) of ``module`` that
    points down the table or across to a sibling, as "module -> target"."""
    here = _layer(module)
    if here is None:
        return []
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module]
        else:
            continue
        for target in targets:
            there = _layer(target) if target.startswith("identlab") else None
            if there is None:
                continue
            if there[0] > here[0] or (there[0] == here[0] and there[1] != here[1]
                                      and len(LAYERS[here[0]]) > 1
                                      and here[1] in ("identlab.learn", "identlab.measure")):
                out.append(f"{module} -> {target}")
    return out


def test_every_import_points_up_the_layer_table():
    bad = [v for name, path in _modules().items()
           for v in layer_violations(name, path.read_text())]
    assert not bad, "imports against the layer table:\n" + "\n".join(bad)


def test_the_layer_check_sees_an_upward_import_inside_a_function():
    planted = ("def f():\n    from identlab.run.program import run_group\n"
               "    return run_group\n")
    assert layer_violations("identlab.learn.x", planted) == \
        ["identlab.learn.x -> identlab.run.program"]
    sibling = "def g():\n    import identlab.measure.metrics\n"
    assert layer_violations("identlab.learn.y", sibling) == \
        ["identlab.learn.y -> identlab.measure.metrics"]
    assert layer_violations("identlab.run.z", planted) == []  # its own layer
    assert layer_violations("identlab.cli.w", "import identlab.learn.train\n") == []


def test_every_module_has_a_layer():
    missing = [n for n in _modules() if n != "identlab" and _layer(n) is None]
    assert not missing, f"modules outside the README's layer table: {missing}"


def test_importing_the_world_loads_no_learner():
    mods = _loaded_after("import identlab.world.world")
    assert not [m for m in mods if m.startswith(LEARNER)]
    assert "torch" in mods  # the mixers are torch maps


def test_metrics_and_theory_load_no_plotting():
    mods = _loaded_after("import identlab.measure.metrics, identlab.measure.theory, "
                         "identlab.run.score")
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


def test_the_readme_table_lists_the_layers_in_order():
    import re

    readme = (PKG.parent / "README.md").read_text()
    table = readme[readme.index("## Layout"):]
    rows = []
    for line in table.splitlines():
        if not line.startswith("| `identlab"):
            continue
        first = line.split("|")[1]
        paths = re.findall(r"`([\w/.]+)`", first)
        names = []
        for p in paths:
            if p.endswith(".py") and "/" not in p:
                p = f"identlab/{p}"
            names.append(p.removesuffix("/").removesuffix(".py").replace("/", "."))
        rows.append(tuple(names))
    expected = [tuple(n for n in row if n != "identlab.__main__") for row in LAYERS]
    assert rows == expected, f"README layout rows {rows} != test_layout.LAYERS {expected}"
