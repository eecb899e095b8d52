"""Build-time generation of the reference pages from the code itself.

MkDocs loads this file through ``hooks:`` in mkdocs.yml. ``on_files`` adds the reference
pages as generated (in-memory) files, so nothing generated is written into docs/ and no
page can fall behind the code: the config reference walks the frozen config dataclasses
and the kind registries, the CLI reference walks the argparse parser, the sweep-spec
reference reads identlab.sweep.spec, the records page reads identlab.measure.glossary and
the reports page lists the committed reports/ folder. tests/test_docs.py imports the
same functions.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import typing
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[2]

GENERATED = {
    "reference/config.md": "config_page",
    "reference/cli.md": "cli_page",
    "reference/sweep-spec.md": "sweep_page",
    "reference/records.md": "records_page",
    "reports.md": "reports_page",
}


# ------------------------------------------------------------------ helpers
def _cell(text: Any) -> str:
    """Text safe inside one Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _code(text: Any) -> str:
    text = str(text)
    return f"``{text}``" if "`" in text else f"`{text}`"


def _inline(text: str) -> str:
    """reST inline literals (``x``) as Markdown code spans."""
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def _first_line(doc: str | None) -> str:
    doc = inspect.cleandoc(doc or "")
    return _inline(" ".join(doc.split("\n\n")[0].split())) if doc else ""


def rst_to_md(doc: str) -> str:
    """A module docstring as Markdown: ``x`` becomes `x` and a ``::`` literal block a
    fenced block (enough for the project's docstrings)."""
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::"):
            out.append(_inline(line.rstrip()[:-1]))
            i += 1
            block: list[str] = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            body = inspect.cleandoc("\n".join(block)) if block else ""
            out += ["", "```yaml", body, "```", ""]
            continue
        out.append(_inline(line))
        i += 1
    return "\n".join(out)


# ------------------------------------------------------------------ config
@dataclasses.dataclass(frozen=True)
class ConfigRow:
    """One config field: its dotted key, the kind it belongs to (or ""), and its text."""

    key: str
    kind: str
    type: str
    default: str
    allowed: str
    doc: str


def _allowed(tp: Any, check: Any) -> str:
    """Allowed values of a field: its Literal choices, or its check's message."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) is Literal:
        return ", ".join(repr(a) for a in typing.get_args(tp))
    if check is None:
        return ""
    base = tp if not args else next((a for a in args if a in (int, float)), None)
    if typing.get_origin(tp) is tuple:
        base = typing.get_args(tp)[0]
    if base not in (int, float):
        return ""
    for probe in (float("-inf"), float("inf")):
        try:
            msg = check((probe,) if typing.get_origin(tp) is tuple else probe)
        except Exception:  # a check that only understands its own type
            continue
        if isinstance(msg, str) and msg.startswith("must"):
            return msg
    return ""


def config_rows() -> list[ConfigRow]:
    """Every field of the run config tree, the registered kinds' Params included."""
    from identlab.config import RunConfig
    from identlab.core.schema import _type_name, field_default

    rows: list[ConfigRow] = []

    def walk(cls: type, prefix: str, kind: str, params_root: bool = False) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key = f"{prefix}{f.name}"
            registry = f.metadata.get("registry")
            tp = hints[f.name]
            doc = f.metadata.get("doc", "")
            if registry is not None:
                default_kind = field_default(f).kind
                rows.append(ConfigRow(f"{key}.kind", "", "a string", repr(default_kind),
                                      ", ".join(repr(k) for k in registry.kinds()), doc))
                for k in registry.kinds():
                    walk(registry.params_class(k), f"{key}.", k, params_root=True)
                continue
            if dataclasses.is_dataclass(tp):
                walk(tp, f"{key}.", kind)
                continue
            if f.name == "kind" and params_root:
                continue  # the selector row above stands for it
            default = field_default(f)
            shown = tp
            if typing.get_origin(tp) is Literal:  # the allowed column lists the values
                shown = type(typing.get_args(tp)[0])
            rows.append(ConfigRow(key, kind, _type_name(shown),
                                  "required" if default is dataclasses.MISSING
                                  else repr(default), _allowed(tp, f.metadata.get("check")),
                                  _inline(doc)))

    walk(RunConfig, "", "")
    return rows


def kind_docs() -> dict[tuple[str, str], str]:
    """(section, kind) -> the first line of the implementation's docstring."""
    from identlab.config import RunConfig
    from identlab.core.schema import field_default

    out: dict[tuple[str, str], str] = {}

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            registry = f.metadata.get("registry")
            if registry is not None:
                for k in registry.kinds():
                    out[(f"{prefix}{f.name}", k)] = _first_line(registry.get(k).__doc__)
                _ = field_default(f)
            elif dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], f"{prefix}{f.name}.")

    walk(RunConfig, "")
    return out


def _table(rows: list[ConfigRow]) -> list[str]:
    out = ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    out += [f"| {_code(r.key)} | {_cell(r.type)} | {_code(r.default)} | {_cell(r.allowed)} "
            f"| {_cell(r.doc)} |" for r in rows]
    return out + [""]


def config_page() -> str:
    rows = config_rows()
    kinds = kind_docs()
    lines = ["# Configuration reference", "",
             "Generated at build time from the frozen config dataclasses "
             "(`identlab/config.py` and the sections it nests) and from every kind "
             "registered in `identlab/core/registry.py`. A run config is YAML; every key "
             "below can also be set on the command line as a dotted `key=value` override. "
             "Unknown keys are errors, and each value is checked against the range shown.",
             ""]
    plain = [r for r in rows if not r.kind]
    sections: dict[str, list[ConfigRow]] = {}
    for r in plain:
        top = r.key.split(".")[0] if "." in r.key else ""
        sections.setdefault(top, []).append(r)
    for top, group in sections.items():
        lines += [f"## {_code(top) if top else 'Top level'}", ""] + _table(group)
    by_section: dict[str, dict[str, list[ConfigRow]]] = {}
    for (section, kind) in kinds:
        by_section.setdefault(section, {})[kind] = []
    for r in rows:
        if r.kind:
            section = next(s for s in by_section
                           if r.key.startswith(s + ".") and r.kind in by_section[s])
            by_section[section][r.kind].append(r)
    for section, per_kind in by_section.items():
        lines += [f"## Kinds of {_code(section)}", "",
                  f"Select one with `{section}.kind`; the fields of the chosen kind sit "
                  f"beside it in the same mapping.", ""]
        for kind, group in per_kind.items():
            lines += [f"### {_code(section + '.kind: ' + kind)}", ""]
            if kinds[(section, kind)]:
                lines += [kinds[(section, kind)], ""]
            lines += _table(group) if group else ["No further fields.", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ CLI
def _subcommands(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name, ""), sub


def _arguments(parser: argparse.ArgumentParser) -> list[str]:
    out = ["| argument | default | meaning |", "|---|---|---|"]
    n = 0
    for a in parser._actions:
        if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        name = ", ".join(a.option_strings) or a.dest
        if a.choices and not isinstance(a, argparse._SubParsersAction):
            name += " {" + ",".join(map(str, a.choices)) + "}"
        default = "" if a.default in (None, argparse.SUPPRESS, False) or not a.option_strings \
            else _code(a.default)
        help_text = "" if a.help in (None, argparse.SUPPRESS) else a.help
        if "%(" in help_text:
            try:
                help_text = help_text % {**vars(a), "prog": parser.prog}
            except (KeyError, TypeError, ValueError):
                pass
        out.append(f"| {_code(name)} | {default} | {_cell(help_text)} |")
        n += 1
    return out + [""] if n else []


def cli_commands() -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(command path, help, parser) for every subcommand, nested ones included."""
    from identlab.cli import build_parser

    out = []

    def walk(parser, path):
        for name, help_text, sub in _subcommands(parser):
            out.append((f"{path} {name}".strip(), help_text or "", sub))
            walk(sub, f"{path} {name}")

    walk(build_parser(), "")
    return out


def cli_page() -> str:
    from identlab.cli import build_parser

    parser = build_parser()
    lines = ["# Command-line reference", "",
             "Generated at build time from the argparse parser "
             "(`identlab.cli.build_parser()`). Every command that takes a run config also "
             "takes dotted `key=value` overrides (see the configuration reference); bad "
             "input ends with one line naming the field and exit code 2.", "",
             "```text", parser.format_usage().strip(), "```", ""]
    for path, help_text, sub in cli_commands():
        lines += [f"## `identlab {path}`", ""]
        if help_text:
            lines += [help_text[:1].upper() + help_text[1:] + ".", ""]
        if sub.description and sub.description != help_text:
            lines += [sub.description, ""]
        lines += ["```text", sub.format_usage().strip(), "```", ""] + _arguments(sub)
    return "\n".join(lines)


# ------------------------------------------------------------------ sweep spec
SPEC_KEY_DOCS = {
    "name": "letters, digits, '-' and '_'; names the sweep's folder",
    "description": "free text shown in the report",
    "base": "the run config every cell starts from: a mapping or a path to a YAML file",
    "grid": "dotted run-config key -> list of values; the cells are the product of the axes",
    "zip": "lists of grid keys that vary together instead of as a product",
    "seeds": "a count (seeds 0..n-1) or an explicit list of seeds",
    "plots": "the figures of the report (see the plot keys below)",
    "presets": "named variants: name -> {set, grid, seeds, plots}, chosen with --preset",
    "plugins": "modules that register plugin kinds, imported first and written into every "
               "cell's config (with --plugin and the identlab.plugins entry points)",
}
PRESET_KEY_DOCS = {
    "set": "dotted run-config overrides applied to the base",
    "grid": "axes that replace or extend the spec's grid",
    "seeds": "a seed count or list replacing the spec's",
    "plots": "plots replacing the spec's",
}
PLOT_FIELD_DOCS = {
    "kind": "the figure type (one of the plot kinds below)",
    "metric": "the metric key drawn (a key of the records page)",
    "x": "grid key (or, for versus, metric key) on the x axis",
    "y": "grid key (or metric key) on the y axis",
    "group": "grid key whose levels become separate lines or colours",
    "facet": "grid key whose levels become separate panels",
    "overlay": "an analytic curve drawn on top (one of the overlays below)",
    "title": "the figure's title",
    "threshold": "the level at which a cell counts as recovered (metric ≥ threshold)",
}
PLOT_KIND_DOCS = {
    "heatmap": "metric over two grid axes, x and y",
    "line": "metric against one grid axis, one line per group",
    "scatter": "h against z from the records' samples",
    "bound": "the theorem's left side against its bound",
    "frames": "rendered frames of a pixel world",
    "versus": "one metric against another across runs, coloured by group",
    "trajectory": "a traj_* metric against the logged step",
}
OVERLAY_DOCS = {
    "rho_sq": "the curve ρ² (the one-step correlation's square)",
    "theorem": "where the theorem's conditions hold",
}


def _key_table(keys, docs: dict[str, str]) -> list[str]:
    out = ["| key | meaning |", "|---|---|"]
    out += [f"| {_code(k)} | {_cell(docs.get(k, ''))} |" for k in keys]
    return out + [""]


def sweep_page() -> str:
    from identlab.sweep import spec

    order = list(SPEC_KEY_DOCS) + sorted(set(spec.SPEC_KEYS) - set(SPEC_KEY_DOCS))
    keys = [k for k in order if k in spec.SPEC_KEYS]
    fields = [f.name for f in dataclasses.fields(spec.PlotSpec)]
    lines = ["# Sweep specs", "",
             "Generated at build time from `identlab/sweep/spec.py`.", "",
             rst_to_md(spec.__doc__ or ""), "",
             "## Spec keys", ""] + _key_table(keys, SPEC_KEY_DOCS)
    lines += ["## Preset keys", ""] + _key_table(spec.PRESET_KEYS, PRESET_KEY_DOCS)
    lines += ["## Plot keys", ""] + _key_table(fields, PLOT_FIELD_DOCS)
    lines += ["## Plot kinds", ""] + _key_table(spec.PLOT_KINDS, PLOT_KIND_DOCS)
    lines += ["## Overlays", ""] + _key_table(spec.OVERLAYS, OVERLAY_DOCS)
    return "\n".join(lines)


def undocumented_spec_keys() -> list[str]:
    """Spec, preset and plot keys, plot kinds and overlays without a line here."""
    from identlab.sweep import spec

    pairs = [(spec.SPEC_KEYS, SPEC_KEY_DOCS), (spec.PRESET_KEYS, PRESET_KEY_DOCS),
             ([f.name for f in dataclasses.fields(spec.PlotSpec)], PLOT_FIELD_DOCS),
             (spec.PLOT_KINDS, PLOT_KIND_DOCS), (spec.OVERLAYS, OVERLAY_DOCS)]
    return [k for keys, docs in pairs for k in keys if k not in docs]


# ------------------------------------------------------------------ records
def records_page() -> str:
    from identlab.measure import glossary as g

    lines = ["# Records and metrics", "",
             "Generated at build time from `identlab/measure/glossary.py`. Every run "
             "writes one JSON record per (config, seed); `identlab.Record.from_json` reads "
             "it back and checks its layout.", "", "## Record keys", ""]
    lines += _key_table(g.RECORD_KEYS, g.RECORD_KEYS)
    for title, group in g.METRIC_GROUPS.items():
        lines += [f"## Metrics: {title.lower()}", ""] + _key_table(group, group)
    lines += ["## Metrics named after a target", "",
              "Mixers with extra ground truth (the pixel Reacher's joint angles) add:", ""]
    lines += _key_table(g.METRIC_PATTERNS, g.METRIC_PATTERNS)
    lines += ["## Provenance keys", ""] + _key_table(g.PROVENANCE_GLOSSARY,
                                                      g.PROVENANCE_GLOSSARY)
    return "\n".join(lines)


# ------------------------------------------------------------------ reports
def reports_page() -> str:
    lines = ["# Reports", "",
             "The committed reports live in the repository's `reports/` folder, beside "
             "(not inside) these pages. `make sweep`, `make reproduce`, `make teach` and "
             "`make bench` regenerate them. Generated at build time from the folder:", ""]
    folder = ROOT / "reports"
    pages = sorted(folder.rglob("*.md")) if folder.is_dir() else []
    if not pages:
        lines.append("No reports are committed in this checkout.")
    lines += ["| report | first line |", "|---|---|"] if pages else []
    for page in pages:
        title = next((ln.lstrip("# ").strip() for ln in page.read_text(
            encoding="utf-8", errors="replace").splitlines() if ln.strip()), "")
        lines.append(f"| {_code(page.relative_to(ROOT).as_posix())} | {_cell(title)} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the hook
def on_files(files, config):
    """Add every generated page to the build (in memory only)."""
    from mkdocs.structure.files import File

    for uri, fn in GENERATED.items():
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, uri, content=globals()[fn]()))
    return files
