"""Phase-diagram sweeps: spec -> grid of run configs -> batched runs -> records.

A spec (``sweeps/*.yaml``)::

    name: gaussianity                  # letters, digits, '-', '_' (names a folder)
    description: ...
    base: {...} | path/to/run.yaml     # a run config
    grid:                              # dotted run-config key -> list of values
      world.latent.alpha: [0.5, 1, 2]  # a value may be a whole sub-config mapping
    zip: [[key_a, key_b]]              # optional: these axes vary together
    seeds: 3 | [0, 1, 2]
    presets: {paper: {set: {train.steps: 20000}, grid: {...}, seeds: 5}}
    plots: [{kind: heatmap, x: ..., y: ..., metric: r2_hz, facet: ..., overlay: ...}]
    # kind versus: metric on y against another metric x across runs, coloured by group
    # kind trajectory: a traj_* metric against the logged step (eval.at_steps); facet
    # columns, y rows, one line per group

Every cell is validated as a run config when the spec loads, so a bad grid fails before
any training starts. Records are keyed by the hash of the resolved config (seed
included); a rerun skips finished records.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from identlab.config import (
    RunConfig,
    apply_overrides,
    build,
    config_hash,
    import_plugins,
    load_yaml,
    parse_overrides,
)
from identlab.core.io import NAME_RE
from identlab.core.limits import MAX_INT, MAX_RUNS
from identlab.core.plugins import check_names
from identlab.core.schema import ConfigError, short, value_label

__all__ = ["SweepSpec", "PlotSpec", "Cell", "load_spec", "expand", "plan", "value_label",
           "report_name", "grid_clashes"]

PLOT_KINDS = ("heatmap", "line", "scatter", "bound", "frames", "versus", "trajectory")
OVERLAYS = ("rho_sq", "theorem")


@dataclass(frozen=True)
class PlotSpec:
    """One figure of a sweep's report: its kind, metric and axes."""

    kind: str
    metric: str = "r2_hz"
    x: str | None = None
    y: str | None = None
    group: str | None = None
    facet: str | None = None
    overlay: str | None = None
    title: str | None = None
    threshold: float | None = None  # e.g. "recovered" when metric >= threshold


@dataclass(frozen=True)
class SweepSpec:
    """A loaded, validated sweep spec (see the module docstring for its keys)."""

    name: str
    description: str
    base: dict
    grid: dict[str, list]
    zip: tuple[tuple[str, ...], ...]
    seeds: tuple[int, ...]
    plots: tuple[PlotSpec, ...]
    presets: dict = field(default_factory=dict)
    source: str | None = None
    preset: str | None = None  # the preset this spec was loaded with

    @property
    def report_name(self) -> str:
        """Folder name of its report: ``<name>`` or ``<name>-<preset>``."""
        return report_name(self.name, self.preset)

    def axes(self) -> list[str]:
        return list(self.grid)

    def digest(self) -> str:
        blob = json.dumps({"name": self.name, "base": self.base, "grid": self.grid,
                           "zip": self.zip, "seeds": self.seeds}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_json(self) -> dict:
        return {"name": self.name, "description": self.description, "base": self.base,
                "grid": self.grid, "zip": [list(z) for z in self.zip],
                "seeds": list(self.seeds), "digest": self.digest(),
                "plots": [p.__dict__ for p in self.plots], "source": self.source,
                "preset": self.preset}


@dataclass(frozen=True)
class Cell:
    """One grid point: the raw value and the short label of every axis."""

    values: dict[str, Any]  # axis -> raw value
    labels: dict[str, str]  # axis -> short label

    def overrides(self) -> list[tuple[str, Any]]:
        return list(self.values.items())


# ------------------------------------------------------------------ loading
SPEC_KEYS = {"name", "description", "base", "grid", "zip", "seeds", "plots", "presets",
             "plugins"}
PLOT_KEYS = set(PlotSpec.__dataclass_fields__)


def _pairs(overrides) -> list[tuple[str, Any]]:
    items = list(overrides or [])
    return parse_overrides(items) if items and isinstance(items[0], str) else items


def grid_clashes(spec: SweepSpec, overrides: list[str] | list[tuple[str, Any]]) -> list[str]:
    """One note per override that a grid axis (or the spec's seeds) overrules: cells set
    their axes on top of the base, so the grid's values win."""
    notes = []
    for key, value in _pairs(overrides):
        shown = f"{key}={short(value)}"
        if key == "seed":
            notes.append(f"note: {shown} is set per run by the spec's seeds "
                         f"({', '.join(map(str, spec.seeds))}); the spec's seeds win")
            continue
        for axis in spec.grid:
            g = _axis_key(axis)
            if key == g or key.startswith(g + ".") or g.startswith(key + "."):
                notes.append(f"note: {shown} is also a grid axis ({axis}); the grid's "
                             "values win")
                break
            if g.endswith(".kind") and key.startswith(g[:-len("kind")]):
                notes.append(f"note: {shown} is in a section the grid axis {axis} sets; "
                             "a cell's kind resets that section, so the grid's values win")
                break
    return notes


def load_spec(source: str | Path | dict, preset: str | None = None,
              overrides: list[str] | list[tuple[str, Any]] | None = None,
              plugins: tuple[str, ...] | list[str] = ()) -> SweepSpec:
    """Load and fully validate a sweep spec (every cell must build as a run config).

    ``overrides`` (``["train.steps=300"]`` or ``[("train.steps", 300)]``) are applied to
    the spec's base run config after the preset's ``set``; a grid axis of the same key
    still wins in its cells (:func:`grid_clashes` names each such clash). The spec's
    ``plugins``, its base config's and ``plugins`` (``--plugin``) are imported first and
    written into the base, so that every cell's config names them."""
    pairs = _pairs(overrides)
    path = None
    if isinstance(source, dict):
        data = dict(source)
    else:
        path = Path(source)
        data = load_yaml(path)
    unknown = set(data) - SPEC_KEYS
    if unknown:
        raise ConfigError(f"spec.{sorted(unknown)[0]}",
                          f"unknown key (allowed: {', '.join(sorted(SPEC_KEYS))})")
    name = data.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError("spec.name", f"= {name!r}: must be 1-64 letters, digits, '-' or '_'"
                          " (it names an output folder)")
    base = data.get("base", {})
    if isinstance(base, str):
        bpath = Path(base) if path is None else (path.parent / base)
        if not bpath.is_file() and Path(base).is_file():
            bpath = Path(base)
        base = load_yaml(bpath)
    if not isinstance(base, dict):
        raise ConfigError("spec.base", "must be a run-config mapping or a path to one")
    own = check_names(data.get("plugins"), "spec.plugins")
    names = import_plugins(base, (*own, *plugins))
    if names:
        base = {**base, "plugins": list(names)}
    grid = data.get("grid")
    seeds = data.get("seeds", [0])
    presets = _check_presets(data.get("presets"))
    if preset is not None:
        if preset not in presets:
            raise ConfigError("--preset", f"= {preset!r}: spec {name!r} has presets: "
                              f"{', '.join(presets) or 'none'}")
        p = presets[preset]
        base = apply_overrides(base, list(p.get("set", {}).items()))
        if grid is not None and not isinstance(grid, dict):
            _check_grid(grid)  # raises: the spec's own grid is not a mapping
        grid = {**(grid or {}), **p.get("grid", {})}
        seeds = p.get("seeds", seeds)
        if "plots" in p:
            data = {**data, "plots": p["plots"]}
    if pairs:
        base = apply_overrides(base, pairs, strict_kinds=True)
    grid = _check_grid(grid)
    zips = _check_zip(data.get("zip") or [], grid)
    seeds = _check_seeds(seeds)
    _check_run_count(grid, zips, seeds)
    plots = tuple(check_plot(p, i, grid) for i, p in enumerate(data.get("plots") or []))
    desc = data.get("description") or ""
    spec = SweepSpec(name, str(desc).strip(), base, grid, zips, seeds, plots,
                     presets, str(path) if path else None, preset)
    _check_cells(spec)
    return spec


PRESET_KEYS = ("set", "grid", "seeds", "plots")


def _check_presets(presets) -> dict:
    """``presets``: a mapping name -> mapping with keys among set, grid, seeds, plots
    (``set`` and ``grid`` mappings themselves). Checked whether or not one is used."""
    if presets is None:
        return {}
    if not isinstance(presets, dict):
        raise ConfigError("spec.presets", f"= {presets!r}: must be a mapping of preset name "
                          "-> {set: ..., grid: ..., seeds: ...}, e.g. {paper: {seeds: 5}}")
    out = {}
    for pname, p in presets.items():
        where = f"spec.presets.{pname}"
        p = {} if p is None else p
        if not isinstance(p, dict):
            raise ConfigError(where, f"= {p!r}: a preset must be a mapping with keys among "
                              f"{', '.join(PRESET_KEYS)}")
        bad = sorted(set(map(str, p)) - set(PRESET_KEYS))
        if bad:
            raise ConfigError(f"{where}.{bad[0]}",
                              f"unknown key (allowed: {', '.join(PRESET_KEYS)})")
        for key in ("set", "grid"):
            if p.get(key) is not None and not isinstance(p[key], dict):
                raise ConfigError(f"{where}.{key}", f"= {p[key]!r}: must be a mapping of "
                                  "dotted key -> value")
        out[str(pname)] = {k: v for k, v in p.items() if v is not None}
    return out


def run_count(grid: dict[str, list], zips, n_seeds: int) -> int:
    """Planned runs (cells x seeds), counted from the axis lengths without expanding."""
    zipped = {k for z in zips for k in z}
    count = n_seeds
    for key, vals in grid.items():
        if key not in zipped or any(z[0] == key for z in zips):
            count *= len(vals)
    return count


def _check_run_count(grid, zips, seeds) -> None:
    """Refuse a plan of more than MAX_RUNS runs before its cells are built (each one is
    validated as a run config, so a huge grid would take minutes and GiB to refuse)."""
    n = run_count(grid, zips, len(seeds))
    if n > MAX_RUNS:
        axes = " x ".join(str(len(v)) for v in grid.values())
        raise ConfigError("spec.grid", f"{n:,} runs ({axes} values per axis, {len(seeds)} "
                          f"seeds); a sweep may plan at most {MAX_RUNS:,}: split it or use "
                          "fewer values")


def _check_cells(spec: SweepSpec) -> None:
    """Build every cell's run config now, before any training, and refuse two cells that
    resolve to one config (they would train into a single record)."""
    seen: dict[str, tuple[int, Cell]] = {}
    for i, cell in enumerate(expand(spec)):
        key = config_hash(cell_config(spec, cell, spec.seeds[0]))
        if key in seen:
            j, first = seen[key]
            raise ConfigError("spec.grid", f"cells #{j + 1} {_cell_text(first)} and "
                              f"#{i + 1} {_cell_text(cell)} resolve to the same run config "
                              "(they would train into one record); list each value once")
        seen[key] = (i, cell)


def _cell_text(cell: Cell) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in cell.values.items()) + "}"


def report_name(name: str, preset: str | None) -> str:
    """A sweep's report folder: its name, suffixed by the preset it ran with (so a
    ``--preset paper`` run never overwrites the default-size report)."""
    return name if not preset else f"{name}-{preset}"


def _check_grid(grid) -> dict[str, list]:
    if not isinstance(grid, dict) or not grid:
        raise ConfigError("spec.grid", "must be a non-empty mapping of dotted key -> list")
    out = {}
    for key, vals in grid.items():
        if not isinstance(vals, list) or not vals:
            raise ConfigError(f"spec.grid.{key}", f"= {vals!r}: must be a non-empty list")
        out[str(key)] = vals
    return out


def _check_zip(zips, grid) -> tuple[tuple[str, ...], ...]:
    """``zip``: a list of groups, each a list of >= 2 grid keys of equal-length axes."""
    if not isinstance(zips, list):
        raise ConfigError("spec.zip", f"= {zips!r}: must be a list of lists of grid keys, "
                          "e.g. [[world.dim, world.dynamics.rho]]")
    out = []
    seen: set[str] = set()
    for i, group in enumerate(zips):
        if not isinstance(group, list) or len(group) < 2:
            raise ConfigError(f"spec.zip[{i}]", "must list at least two grid keys")
        for k in group:
            if not isinstance(k, str) or k not in grid:
                raise ConfigError(f"spec.zip[{i}]", f"{k!r} is not a grid key")
            if k in seen:
                raise ConfigError(f"spec.zip[{i}]", f"{k!r} appears in two zip groups")
            seen.add(k)
        lengths = {len(grid[k]) for k in group}
        if len(lengths) != 1:
            raise ConfigError(f"spec.zip[{i}]", "zipped axes need lists of equal length")
        out.append(tuple(group))
    return tuple(out)


def _check_seeds(seeds) -> tuple[int, ...]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError("spec.seeds", f"= {seeds}: need at least 1 seed")
        if seeds > MAX_RUNS:
            raise ConfigError("spec.seeds", f"= {short(seeds)}: at most {MAX_RUNS:,} seeds "
                              "(runs) per sweep")
        return tuple(range(seeds))
    if (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool)
                                                  and 0 <= s <= MAX_INT for s in seeds)
            and len(set(seeds)) == len(seeds)):
        return tuple(seeds)
    raise ConfigError("spec.seeds", f"= {short(seeds)}: a count or a list of distinct "
                      "integers in [0, 2**53]")


def check_plot(p, i, grid) -> PlotSpec:
    where = f"spec.plots[{i}]"
    if not isinstance(p, dict):
        raise ConfigError(where, "must be a mapping")
    bad = set(p) - PLOT_KEYS
    if bad:
        raise ConfigError(f"{where}.{sorted(bad)[0]}",
                          f"unknown key (allowed: {', '.join(sorted(PLOT_KEYS))})")
    if p.get("kind") not in PLOT_KINDS:
        raise ConfigError(f"{where}.kind", f"= {p.get('kind')!r}: one of {', '.join(PLOT_KINDS)}")
    if p["kind"] == "versus" and not (isinstance(p.get("x"), str) and p.get("y") is None):
        raise ConfigError(where, "a versus plot needs x (a metric, e.g. r2_hz) and no y "
                          "(the metric is on y)")
    for ax in ("x", "y", "group", "facet"):
        if p["kind"] == "versus" and ax == "x":
            continue  # a metric, not a grid key
        if p.get(ax) is not None and _axis_key(p[ax]) not in grid:
            raise ConfigError(f"{where}.{ax}", f"= {p[ax]!r}: not a grid key "
                              f"({', '.join(grid)})")
    if p["kind"] == "heatmap" and not (p.get("x") and p.get("y")):
        raise ConfigError(where, "a heatmap needs x and y")
    if p["kind"] == "trajectory" and (p.get("x") or not str(p.get("metric", "")).startswith(
            "traj_")):
        raise ConfigError(where, "a trajectory plot needs a traj_* metric and no x (its x "
                          "is the logged step)")
    if p["kind"] == "line" and not p.get("x"):
        raise ConfigError(where, "a line plot needs x")
    if p.get("overlay") is not None and p["overlay"] not in OVERLAYS:
        raise ConfigError(f"{where}.overlay", f"= {p['overlay']!r}: one of {', '.join(OVERLAYS)}")
    return PlotSpec(**p)


def _axis_key(name: str) -> str:
    """``world.dynamics.rho[0]`` (an entry of a list-valued axis) -> its grid key."""
    m = re.match(r"^(.*)\[\d+\]$", str(name))
    return m.group(1) if m else str(name)


# ------------------------------------------------------------------ expansion
def expand(spec: SweepSpec) -> list[Cell]:
    """All grid cells, in a stable order (zipped axes move together)."""
    zipped = {k for z in spec.zip for k in z}
    axes: list[list[tuple[str, Any]]] = []
    for key in spec.grid:
        if key in zipped:
            group = next(z for z in spec.zip if z[0] == key) if any(
                z[0] == key for z in spec.zip) else None
            if group is None:
                continue
            axes.append([tuple((k, spec.grid[k][i]) for k in group)
                         for i in range(len(spec.grid[key]))])
        else:
            axes.append([((key, v),) for v in spec.grid[key]])
    cells = []
    for combo in itertools.product(*axes):
        values = {k: v for part in combo for k, v in part}
        cells.append(Cell(values, {k: value_label(v) for k, v in values.items()}))
    return cells


def cell_config(spec: SweepSpec, cell: Cell, seed: int) -> RunConfig:
    data = apply_overrides(spec.base, cell.overrides() + [("seed", seed)])
    try:
        return build(RunConfig, data)
    except ConfigError as e:
        where = ", ".join(f"{k}={v}" for k, v in cell.labels.items())
        raise ConfigError(e.field, f"{str(e).split(': ', 1)[-1]} (grid cell {where})") from None


def plan(spec: SweepSpec) -> list[tuple[RunConfig, dict]]:
    """(config, sweep metadata) for every (cell, seed)."""
    out = []
    for idx, cell in enumerate(expand(spec)):
        for seed in spec.seeds:
            meta = {"name": spec.name, "cell_index": idx, "cell": cell.labels,
                    "values": cell.values}
            out.append((cell_config(spec, cell, seed), meta))
    return out


