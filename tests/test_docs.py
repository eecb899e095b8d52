"""The documentation site: generated references cover the code, public names have
docstrings, the extending example runs, and the strict build succeeds."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import importlib.util
import inspect
import os
import pkgutil
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from tiny_config import TINY_RUN

import identlab

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("docs_generate",
                                                  ROOT / "docs" / "hooks" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


GEN = _generator()


def _walk_fields():
    """(dotted key, kind, field, is the kind selector) of every field of the run config
    tree, walked here independently of the generator; kind is '' outside a registered
    section, else (kind name, implementation class, section key)."""
    from identlab.config import RunConfig

    out = []

    def walk(cls, prefix, kind, params_root=False):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key = prefix + f.name
            registry = f.metadata.get("registry")
            if registry is not None:
                out.append((f"{key}.kind", "", f, False))
                for k in registry.kinds():
                    walk(registry.params_class(k), key + ".", (k, registry.get(k), key), True)
            elif dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], key + ".", kind)
            else:
                out.append((key, kind, f, params_root and f.name == "kind"))

    walk(RunConfig, "", "")
    return out


def _kind_sections(page: str) -> dict[str, str]:
    """'world.latent.kind: gennorm' -> the text of that kind's section."""
    parts = re.split(r"^### `([^`]+)`$", page, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_config_reference_lists_every_field():
    page = GEN.config_page()
    sections = _kind_sections(page)
    top = page.split("\n## Kinds of", 1)[0]
    for key, kind, _f, selector in _walk_fields():
        if not kind:
            assert f"`{key}`" in top, key
            continue
        name, impl, section = kind
        text = sections.get(f"{section}.kind: {name}")
        assert text is not None, f"no section for {section}.kind: {name}"
        if not selector:
            assert f"`{key}`" in text, f"{key} ({name}) missing from the config reference"


def test_every_config_field_has_a_doc():
    missing = []
    for key, kind, f, selector in _walk_fields():
        if selector:  # a kind is documented by its implementation's docstring
            name, impl, _ = kind
            if not (impl.__doc__ or "").strip():
                missing.append(f"{key}={name} (class docstring)")
        elif not str(f.metadata.get("doc", "")).strip():
            missing.append(key)
    assert not missing, f"config fields without a doc: {missing}"


def test_config_reference_shows_ranges_and_choices():
    rows = {(r.key, r.kind): r for r in GEN.config_rows()}
    assert rows[("train.steps", "")].allowed.startswith("must be in")
    assert "'pooled'" in rows[("learner.objective.views", "lejepa")].allowed
    assert "'gennorm'" in rows[("world.latent.kind", "")].allowed


@pytest.fixture(scope="module")
def tiny_records():
    """Real records of the tiny config: plain, and with planning, a trajectory, a
    supervised warm start and grid scoring switched on."""
    from identlab.config import load_run
    from identlab.run.program import run_group

    plain = load_run(copy.deepcopy(TINY_RUN), [])
    rich = load_run(copy.deepcopy(TINY_RUN), [
        "world.mixer={kind: linear}", "eval.plan.enabled=true", "eval.plan.pairs=10",
        "eval.plan.transitions=300", "eval.at_steps=[0,30]", "eval.grid=10",
        "learner.init.kind=supervised", "learner.init.steps=10", "learner.init.pool=2000"])
    return [run_group([cfg], device="cpu", progress=False)[0] for cfg in (plain, rich)]


def test_records_page_lists_every_key_of_a_real_record(tiny_records):
    from identlab.measure import glossary

    page = GEN.records_page()
    for rec in tiny_records:
        assert rec["status"] == "ok"
        for key in rec:
            assert key in glossary.RECORD_KEYS and f"`{key}`" in page, key
        for key in rec["metrics"]:
            assert glossary.describe(key), f"metric {key!r} has no glossary entry"
            assert f"`{key}`" in page, key
        for key in rec["provenance"]:
            assert key in glossary.PROVENANCE_GLOSSARY, f"provenance {key!r} undocumented"


def test_glossary_covers_every_declared_metric_key():
    from identlab.measure import attribution, glossary, metrics, planning, stats
    from identlab.run import trajectory
    from identlab.run.score import TARGET_KEYS, TIMING_KEYS

    declared = {*metrics.METRIC_KEYS, *metrics.BOUND_KEYS, *attribution.ATTRIBUTION_KEYS,
                *TARGET_KEYS,
                *planning.PLAN_KEYS, *planning.PLAN_TASK_KEYS, *trajectory.TRAJ_KEYS,
                *stats.SUMMARY_KEYS}
    missing = sorted(k for k in declared if not glossary.describe(k))
    assert not missing, missing
    assert set(TIMING_KEYS) <= set(glossary.PROVENANCE_GLOSSARY)
    assert all(v.strip() for v in glossary.METRIC_GLOSSARY.values())


def test_cli_reference_lists_every_command_and_option():
    page = GEN.cli_page()
    commands = GEN.cli_commands()
    assert {"run", "world", "sweep"} <= {path for path, _, _ in commands}
    for path, _, parser in commands:
        assert f"## `identlab {path}`" in page
        for action in parser._actions:
            for opt in action.option_strings:
                if opt not in ("-h", "--help"):
                    assert opt in page, f"identlab {path} {opt}"


def test_sweep_reference_documents_every_key():
    assert not GEN.undocumented_spec_keys()
    page = GEN.sweep_page()
    from identlab.sweep import spec

    for key in (*spec.SPEC_KEYS, *spec.PRESET_KEYS, *spec.PLOT_KINDS, *spec.OVERLAYS):
        assert f"`{key}`" in page


# ------------------------------------------------------------------ docstrings
def _has_doc(obj) -> bool:
    doc = obj.__doc__
    if not doc or not doc.strip():
        return False
    # a dataclass without a docstring gets "Name(field: type, ...)" generated
    return not (inspect.isclass(obj) and dataclasses.is_dataclass(obj)
                and doc.startswith(obj.__name__ + "("))


def _public_modules() -> list[str]:
    names = ["identlab"]
    for info in pkgutil.walk_packages(identlab.__path__, "identlab."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


def test_every_public_name_has_a_docstring():
    missing = []
    for name in _public_modules():
        try:
            module = importlib.import_module(name)
        except ImportError:  # an optional extra (pixels, slurm, track) not installed
            continue
        if not _has_doc(module):
            missing.append(name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            if (inspect.isclass(obj) or inspect.isroutine(obj)) and not _has_doc(obj):
                missing.append(f"{name}.{attr}")
    assert not missing, f"public names without a docstring: {missing}"


# ------------------------------------------------------------------ the site
def test_extending_example_runs():
    text = (ROOT / "docs" / "extending.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "r2_hz = " in res.stdout


def test_strict_build(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                          str(tmp_path / "site")], capture_output=True, text=True,
                         timeout=600, cwd=ROOT, env={**os.environ,
                                                     "NO_MKDOCS_2_WARNING": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    for page in ("reference/config", "reference/cli", "reference/records",
                 "reference/sweep-spec", "reference/api", "design", "reports"):
        assert (tmp_path / "site" / page / "index.html").is_file(), page
    config = (tmp_path / "site" / "reference" / "config" / "index.html").read_text()
    assert "world.latent.alpha" in config


def test_every_design_citation_points_at_a_section_that_ships():
    """Code and docs cite docs/design.md as "design §N"; each N is a section there."""
    root = Path(__file__).parents[1]
    design = (root / "docs" / "design.md").read_text()
    sections = set(re.findall(r"^## (\d+)\.", design, flags=re.M))
    files = [*root.glob("identlab/**/*.py"), root / "README.md", *root.glob("docs/*.md"),
             *root.glob("sweeps/*.yaml")]
    cited = {(f.relative_to(root).as_posix(), n) for f in files
             for n in re.findall(r"design §(\d+)", f.read_text())}
    assert len({n for _, n in cited}) >= 4, "the citations were not found"
    missing = sorted((f, n) for f, n in cited if n not in sections)
    assert not missing, f"citations of sections docs/design.md lacks: {missing}"
    assert not [f for f in files if "DESIGN §" in f.read_text()]
