"""Typed, frozen config dataclasses that validate themselves.

``build(cls, data, path)`` turns plain YAML data into a frozen dataclass instance:
unknown keys are errors, values are coerced to the annotated type, and each field's
declared check runs. Every error is a :class:`ConfigError` naming the dotted field, the
value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from typing import Any, Literal

Check = Callable[[Any], "str | None"]


class ConfigError(ValueError):
    """Bad user input. ``str(err)`` is one line: ``field = value: what is allowed``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


def param(default: Any = dataclasses.MISSING, *, check: Check | None = None, doc: str = "",
          registry: Any = None, factory: Callable[[], Any] | None = None,
          omit_default: bool = False) -> Any:
    """A dataclass field with a validation ``check`` and a one-line ``doc``.

    ``omit_default``: :func:`to_dict` leaves the field out while it equals its default, so
    adding an optional section to a config tree keeps the hashes of existing configs."""
    meta = {"check": check, "doc": doc, "registry": registry, "omit_default": omit_default}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# ---------------------------------------------------------------- checks
def interval(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
             hi_open: bool = False) -> Check:
    def check(v: Any) -> str | None:
        vals = v if isinstance(v, tuple) else (v,)
        for x in vals:
            if x is None:
                continue
            bad = (lo is not None and (x <= lo if lo_open else x < lo)) or (
                hi is not None and (x >= hi if hi_open else x > hi))
            if bad or (isinstance(x, float) and not math.isfinite(x)):
                left = "(" if lo_open or lo is None else "["
                right = ")" if hi_open or hi is None else "]"
                lo_s = "-inf" if lo is None else f"{lo:g}"
                hi_s = "inf" if hi is None else f"{hi:g}"
                return f"must be in {left}{lo_s}, {hi_s}{right}"
        return None

    return check


def odd_at_least(n: int) -> Check:
    def check(v: Any) -> str | None:
        if v < n or v % 2 == 0:
            return f"must be an odd integer >= {n}"
        return None

    return check


# ---------------------------------------------------------------- coercion
def _fmt(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        # try scalar alternatives before sequences so 0.9 stays a float
        for alt in sorted((a for a in args if a is not type(None)),
                          key=lambda a: typing.get_origin(a) is tuple):
            try:
                return _coerce(value, alt, path)
            except ConfigError as e:
                errors.append(str(e).split(": ", 1)[-1])
        raise ConfigError(path, f"= {_fmt(value)}: expected {_type_name(tp)}")
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise ConfigError(path, f"= {_fmt(value)}: must be one of {allowed}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, f"= {_fmt(value)}: expected a list")
        inner = args[0]
        return tuple(_coerce(v, inner, f"{path}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, f"= {_fmt(value)}: expected true or false")
    if tp is int or tp is float:
        return _number(value, tp, path)
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(path, f"= {_fmt(value)}: expected a string")
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path)
    raise TypeError(f"unsupported config type {tp!r} at {path}")


def _number(value: Any, tp: type, path: str) -> Any:
    """An int or float from a number or a numeric string (``"1e-3"`` is a string in YAML
    1.1); booleans and non-integral floats for ints are refused."""
    what = "an integer" if tp is int else "a number"
    if not isinstance(value, bool):
        if isinstance(value, int) or (tp is float and isinstance(value, float)):
            return tp(value)
        if tp is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return tp(value)
            except ValueError:
                pass
    raise ConfigError(path, f"= {_fmt(value)}: expected {what}")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is tuple:
        inner = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}
        return f"a list of {inner.get(args[0], _type_name(args[0]))}"
    if tp is type(None):
        return "null"
    return {int: "an integer", float: "a number", str: "a string", bool: "a boolean"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def build(cls: type, data: Any, path: str = "") -> Any:
    """Validate ``data`` (a mapping or an instance) into a frozen ``cls`` instance."""
    if isinstance(data, cls):
        data = dataclasses.asdict(data)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path or "config", f"= {_fmt(data)}: expected a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            allowed = ", ".join(fields)
            raise ConfigError(_join(path, str(key)), f"unknown key (allowed: {allowed})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        sub = _join(path, name)
        registry = f.metadata.get("registry")
        if name not in data:
            if registry is not None:  # default section: rebuild from its own default
                default = f.default_factory() if f.default_factory is not dataclasses.MISSING \
                    else f.default
                kwargs[name] = build_section(registry, default, sub)
            continue
        value = data[name]
        if registry is not None:
            if isinstance(value, dict) and "kind" not in value:  # partial section: keep
                default = f.default_factory() if f.default_factory is not dataclasses.MISSING \
                    else f.default                              # the default kind
                value = {"kind": default.kind, **value}
            kwargs[name] = build_section(registry, value, sub)
        else:
            kwargs[name] = _coerce(value, hints[name], sub)
        check = f.metadata.get("check")
        if check is not None and kwargs[name] is not None:
            msg = check(kwargs[name])
            if msg:
                raise ConfigError(sub, f"= {_fmt(value)}: {msg}")
    try:
        return cls(**kwargs)
    except ConfigError as e:
        if path and not e.field.startswith(path):
            raise ConfigError(_join(path, e.field), str(e).split(": ", 1)[-1]) from None
        raise


def build_section(registry: Any, data: Any, path: str) -> Any:
    """Build a kind-polymorphic section (``{kind: ..., ...}``) through ``registry``."""
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        data = dataclasses.asdict(data)
    if isinstance(data, str):
        data = {"kind": data}
    if not isinstance(data, dict):
        raise ConfigError(path, f"= {_fmt(data)}: expected a mapping with a 'kind'")
    kind = data.get("kind")
    if kind not in registry:
        raise ConfigError(_join(path, "kind"),
                          f"= {_fmt(kind)}: must be one of {', '.join(registry.kinds())}")
    return build(registry.params_class(kind), data, path)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def to_dict(obj: Any) -> Any:
    """A frozen config as plain JSON-able data (tuples become lists); fields declared with
    ``omit_default`` are left out while they equal their default."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not (f.metadata.get("omit_default") and _is_default(obj, f))}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def _is_default(obj: Any, f: dataclasses.Field) -> bool:
    if f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        default = f.default
    return default is not dataclasses.MISSING and getattr(obj, f.name) == default


def value_label(v: Any) -> str:
    """A short label for a grid value; sub-config mappings become ``kind(k=v, ...)``."""
    if isinstance(v, dict):
        kind = v.get("kind", "")
        rest = ", ".join(f"{k}={value_label(x)}" for k, x in v.items() if k != "kind")
        return f"{kind}({rest})" if rest else str(kind)
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "[" + ",".join(value_label(x) for x in v) + "]"
    return str(v)
