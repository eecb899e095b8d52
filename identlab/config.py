"""The run configuration: one frozen dataclass tree, the single home of every default.

Load with :func:`load_run` (a YAML path or mapping plus ``key=value`` overrides). The
kind-polymorphic sections (latent, dynamics, mixer, encoder, objective, predictor) are
resolved through the registries once, here.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
import typing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from identlab.core import plugins
from identlab.core.limits import MAX_CONFIG_BYTES, MAX_CONFIG_NODES, MAX_YAML_DEPTH
from identlab.core.registry import ENCODERS, MIXERS, REGISTRIES
from identlab.core.schema import (
    ConfigError,
    build,
    config_digest,
    field_default,
    interval,
    param,
    short,
    to_dict,
)
from identlab.learn.config import LearnerConfig, TrainConfig
from identlab.measure.config import EvalConfig
from identlab.sizes import check_sizes
from identlab.world.config import WorldConfig
from identlab.world.control import control_problem

__all__ = ["WorldConfig", "LearnerConfig", "TrainConfig", "EvalConfig", "RunConfig",
           "load_run", "load_yaml", "apply_overrides", "parse_overrides", "config_hash",
           "config_digest", "from_dict", "import_plugins", "ConfigError"]


@dataclass(frozen=True)
class RunConfig:
    """One training run: a world, a learner, a training budget, an eval set, a seed."""

    seed: int = param(0, check=interval(0), doc="root of every random stream")
    world: WorldConfig = param(factory=WorldConfig, doc="the data-generating world")
    learner: LearnerConfig = param(factory=LearnerConfig, doc="encoder, predictor, loss")
    train: TrainConfig = param(factory=TrainConfig, doc="optimisation")
    eval: EvalConfig = param(factory=EvalConfig, doc="evaluation")
    plugins: tuple[str, ...] = param((), check=lambda v: _plugin_names(v), omit_default=True,
                                     doc="modules that register plugin kinds, imported "
                                         "before the config is built")

    def __post_init__(self) -> None:
        if self.eval.grid and self.world.dim != 2:
            raise ConfigError("eval.grid", f"= {self.eval.grid}: grid scoring needs a "
                              f"2-D world (world.dim = {self.world.dim})")
        _check_observations(self)
        _check_planning(self)
        _check_start_and_trajectory(self)
        check_sizes(self)

    def with_seed(self, seed: int) -> "RunConfig":
        return replace(self, seed=seed)


def _plugin_names(v) -> str | None:
    try:
        plugins.check_names(v)
    except ConfigError as e:
        return str(e).split(": ", 1)[-1]
    return None


def import_plugins(data: Any, extra: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
    """Import the installed entry-point plugins, the ``plugins`` a config mapping names
    and ``extra`` (e.g. ``--plugin``), before any section is resolved; returns the
    config's plugin list (its own, then ``extra``, without repeats)."""
    plugins.load_entry_points()
    own = plugins.check_names(data.get("plugins") if isinstance(data, dict) else None)
    names = tuple(dict.fromkeys((*own, *plugins.check_names(list(extra), "--plugin"))))
    plugins.load(names)
    return names


def from_dict(data: dict) -> RunConfig:
    """A RunConfig from plain data (a record's ``config``, a worker's item): its plugins
    imported first, so a fresh interpreter resolves their kinds too."""
    import_plugins(data)
    return build(RunConfig, data)


def _check_observations(cfg: RunConfig) -> None:
    """Image worlds (rendered mixers) need an image encoder, and the other way round."""
    mixer = MIXERS.get(cfg.world.mixer.kind)
    enc = cfg.learner.encoder.kind
    if ENCODERS.get(enc).images and not mixer.rendered:
        raise ConfigError("learner.encoder.kind", f"= {enc!r}: an image encoder needs a pixel "
                          f"world (world.mixer.kind: reacher), got {mixer.kind!r}")
    if mixer.rendered and not ENCODERS.get(enc).images:
        raise ConfigError("learner.encoder.kind", f"= {enc!r}: world.mixer {mixer.kind!r} "
                          "gives images; use an image encoder (kind: cnn)")
    if mixer.rendered and cfg.eval.grid:
        raise ConfigError("eval.grid", f"= {cfg.eval.grid}: grid scoring is not available "
                          f"for the rendered world {mixer.kind!r}; use 0")


def _check_start_and_trajectory(cfg: RunConfig) -> None:
    """Warm starts and trajectory metrics observe fresh latents through the mixer: vector
    worlds only; trajectory steps lie within the run."""
    rendered = MIXERS.get(cfg.world.mixer.kind).rendered
    if cfg.learner.init.supervised and rendered:
        raise ConfigError("learner.init.kind", "= 'supervised': warm starts need a vector "
                          f"world, not the rendered {cfg.world.mixer.kind!r}")
    steps = cfg.eval.at_steps
    if steps and rendered:
        raise ConfigError("eval.at_steps", "trajectory metrics need a vector world, not the "
                          f"rendered {cfg.world.mixer.kind!r}")
    if steps and max(steps) > cfg.train.steps:
        raise ConfigError("eval.at_steps", f"= {list(steps)}: every step must be at most "
                          f"train.steps = {cfg.train.steps}")
    if len(set(steps)) != len(steps) or list(steps) != sorted(steps):
        raise ConfigError("eval.at_steps", f"= {list(steps)}: list distinct steps in "
                          "increasing order")


def _check_planning(cfg: RunConfig) -> None:
    """``eval.plan.enabled`` needs a world an action can drive (design §8)."""
    plan = cfg.eval.plan
    if not plan.enabled:
        return
    w = cfg.world
    problem = control_problem(MIXERS.get(w.mixer.kind), w.dynamics.kind,
                              getattr(w.dynamics, "strength", 0.0), plan.noise)
    if problem:
        field, msg = problem
        raise ConfigError("eval.plan.enabled" if field == "world.mixer.kind"
                          else "eval.plan.noise", f"= true: {field} {msg}")


# ---------------------------------------------------------------- loading
class YamlInputError(Exception):
    """A YAML text the loader refuses (a duplicate key, too deep); ``line`` is 1-based."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message, self.line = message, line


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key written twice in one mapping (PyYAML keeps
    the last silently) and nesting deeper than MAX_YAML_DEPTH (its composer recurses, so
    ``[[[[...`` would otherwise end in a RecursionError)."""

    _depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlInputError(f"nested more than {MAX_YAML_DEPTH} levels deep",
                                     mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` merges are meant to be overridden
            key = self.construct_object(key_node, deep=True)
            try:
                dup = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base loader explains
                break
            if dup:
                raise YamlInputError(f"the key {short(key)} appears twice in one mapping",
                                     key_node.start_mark.line + 1)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, where: str, source: str) -> Any:
    """``text`` parsed with the strict loader; a refusal is a ConfigError naming
    ``where`` (the field), ``source`` (a file or an override) and the line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except YamlInputError as e:
        line = f" (line {e.line})" if e.line is not None and "\n" in text.strip() else ""
        raise ConfigError(where, f"{source}: {e.message}{line}") from None
    except ValueError:  # Python refuses to read an integer of more than 4300 digits
        raise ConfigError(where, f"{source}: a number too long to read (more than "
                          f"{sys.get_int_max_str_digits()} digits)") from None


def load_yaml(path: str | Path) -> dict:
    """The top-level mapping of a YAML file, bounded in size, nesting and alias
    expansion, with no key written twice."""
    p = Path(path)
    name = repr(str(path))  # whole: the one-line cap of the CLI bounds a huge one
    try:
        if p.is_dir():
            raise ConfigError("config", f"{name} is a directory, not a config file")
        if not p.is_file():
            raise ConfigError("config", f"{name}: no such file")
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError("config", f"{name}: cannot read ({e.strerror})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError("config", f"{name}: {len(raw):,} bytes; a config may have "
                          f"at most {MAX_CONFIG_BYTES:,}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("config", f"{name}: not a text file (expected UTF-8 "
                          "YAML)") from None
    try:
        data = parse_yaml(text, "config", name)
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise ConfigError("config", f"{name}: not valid YAML{where}") from None
    check_expansion(data, "config")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("config", f"{name}: top level must be a mapping")
    return data


def check_expansion(data: Any, where: str, limit: int = MAX_CONFIG_NODES) -> None:
    """Refuse data with more than ``limit`` values once YAML aliases are expanded (an
    alias bomb loads as a small shared graph but explodes when copied or hashed; a
    self-referencing alias never ends), or nested deeper than MAX_YAML_DEPTH (aliases can
    nest what the text does not). Walks with an explicit stack and stops early."""
    stack, count = [(data, 0)], 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > limit:
            raise ConfigError(where, f"more than {limit:,} values after expanding YAML "
                              "aliases (&/*); write the config out plainly")
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(where, f"nested more than {MAX_YAML_DEPTH} levels deep")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def parse_overrides(items: list[str]) -> list[tuple[str, Any]]:
    """``["a.b=1", "c=[1, 2]"]`` -> ``[("a.b", 1), ("c", [1, 2])]`` (values as YAML)."""
    out = []
    for item in items:
        if "=" not in item:
            raise ConfigError("override", f"{short(item)}: must look like key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise ConfigError("override", f"{short(item)}: no field name before '=' (write "
                              "key=value, e.g. train.steps=100)")
        try:
            value = parse_yaml(raw, key, "override") if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        check_expansion(value, key)
        out.append((key, value))
    return out


def apply_overrides(data: dict, overrides: list[tuple[str, Any]], *,
                    strict_kinds: bool = False) -> dict:
    """Set dotted keys in a nested dict (copied). Changing a section's ``kind`` resets
    that section to ``{kind: new}`` first, so parameters of the old kind do not leak (a
    grid axis over kinds). With ``strict_kinds`` (a user's overrides of a file) a field
    at the old kind's default is dropped, a field set to another value carries over when
    the new kind has it and is refused by name when it does not, since the setting would
    be lost (write the section whole, ``learner.objective={kind: new, ...}``, to replace
    it). A key that goes through a plain value (``world.dim.x``,
    ``world.latent.kind.x``) is refused."""
    check_expansion(data, "config")
    data = json.loads(json.dumps(data))  # deep copy of plain data
    ordered = sorted(overrides, key=lambda kv: not kv[0].endswith(".kind"))
    for key, value in ordered:
        parts = key.split(".")
        node = data
        for i in range(len(parts) - 1):
            node = _section(node, parts, i, key)
        last = parts[-1]
        if last == "kind" and node.get("kind") not in (None, value):
            if strict_kinds:  # the fields both kinds have carry over; others are refused
                _check_kind_change(node, ".".join(parts[:-1]), value, key)
            else:
                node.clear()
        node[last] = copy.deepcopy(value)  # later overrides must not edit the caller's value
    return data


def _check_kind_change(node: dict, section: str, kind: Any, key: str) -> None:
    """Refuse ``section.kind=kind`` when the section sets fields ``kind`` lacks."""
    registry = REGISTRIES.get(section)
    if registry is None or not isinstance(kind, str) or kind not in registry:
        return  # the build names an unknown kind
    fields = {f.name for f in dataclasses.fields(registry.params_class(kind))}
    old = node.get("kind")
    defaults = {}
    if isinstance(old, str) and old in registry:
        defaults = to_dict(registry.params_class(old)())
    # a field left at the old kind's default carries no setting: it is dropped (so the
    # new kind's own default applies, e.g. whiten's λ); a set field carries over when the
    # new kind has it and is refused by name when it does not
    for k in [k for k in node if k != "kind" and k in defaults and node[k] == defaults[k]]:
        del node[k]
    stale = sorted(k for k in node if k != "kind" and k not in fields)
    if stale:
        raise ConfigError(key, f"= {kind!r}: the config still sets {', '.join(stale)} of "
                          f"{section} kind {old!r}, which {kind!r} does not "
                          f"have; remove them, or replace the whole section "
                          f"({section}={{kind: {kind}, ...}})")


def _section(node: dict, parts: list[str], i: int, key: str) -> dict:
    """The mapping at ``parts[i]`` under ``node`` (created when missing)."""
    part = parts[i]
    nxt = node.get(part)
    where = ".".join(parts[:i + 1])
    if part == "kind":
        raise ConfigError(key, f"{where} names a kind; it has no fields to set")
    if isinstance(nxt, str) and i == len(parts) - 2:  # "latent: gaussian" shorthand
        nxt = {"kind": nxt}
    elif nxt is None:
        nxt = {}
    elif not isinstance(nxt, dict):
        raise ConfigError(key, f"{where} = {nxt!r} is a value, not a section")
    node[part] = nxt
    return nxt


def load_run(source: str | Path | dict | None = None,
             overrides: list[str] | list[tuple[str, Any]] | None = None,
             plugins: tuple[str, ...] | list[str] = ()) -> RunConfig:
    """Validate a run config from a YAML path or mapping plus overrides; ``plugins``
    (module names, e.g. from ``--plugin``) are imported and added to the config's own."""
    data = {} if source is None else (dict(source) if isinstance(source, dict)
                                      else load_yaml(source))
    check_expansion(data, "config")
    pairs = (parse_overrides(overrides) if overrides and isinstance(overrides[0], str)
             else list(overrides or []))
    named = [v for k, v in pairs if k == "plugins"]
    names = import_plugins({"plugins": named[-1]} if named else data, plugins)
    if names:
        data = {**data, "plugins": list(names)}
        pairs = [(k, v) for k, v in pairs if k != "plugins"]
    data = fill_kinds(RunConfig, data)
    if pairs:
        data = apply_overrides(data, pairs, strict_kinds=True)  # type: ignore[arg-type]
    return build(RunConfig, data)


def fill_kinds(cls: type, data: Any) -> Any:
    """Name the default ``kind`` of every polymorphic section given without one, so a
    later override of ``kind`` knows the section changes kind and resets it."""
    if not isinstance(data, dict) or not dataclasses.is_dataclass(cls):
        return data
    hints = typing.get_type_hints(cls)
    out = dict(data)
    for f in dataclasses.fields(cls):
        if f.name not in out:
            continue
        value = out[f.name]
        if f.metadata.get("registry") is not None:
            if isinstance(value, dict) and "kind" not in value:
                out[f.name] = {"kind": field_default(f).kind, **value}
        elif dataclasses.is_dataclass(hints.get(f.name)):
            out[f.name] = fill_kinds(hints[f.name], value)
    return out


def config_hash(cfg: RunConfig) -> str:
    """Stable hash of the fully resolved config (seed included), key order irrelevant:
    the record key, :func:`~identlab.core.schema.config_digest` of ``to_dict(cfg)`` (the
    digest the sweep store checks a record's ``config`` with)."""
    return config_digest(to_dict(cfg))
