"""Typed, frozen config dataclasses that validate themselves.

``build(cls, data, path)`` turns plain YAML data into a frozen dataclass instance:
unknown keys are errors, values are coerced to the annotated type, and each field's
declared check runs. Every error is a :class:`ConfigError` naming the dotted field, the
value and what is allowed.

The checks also run whenever a config is constructed directly in Python
(``TrainConfig(steps=-5)``, ``dataclasses.replace(cfg, seed=-3)``): every ``param`` field
with a plain default is a :class:`Checked` data descriptor, so the dataclass ``__init__``
assigns through it, and it coerces the value to the annotated type and runs the field's
check (dataclasses support descriptor-typed fields; the class attribute still reads as
the default). Non-finite floats are refused everywhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import types
import typing
from collections.abc import Callable
from typing import Any, Literal

from identlab.core.limits import MAX_ECHO, MAX_INT

Check = Callable[[Any], "str | None"]


class ConfigError(ValueError):
    """Bad user input. ``str(err)`` is one line: ``field = value: what is allowed``."""

    def __init__(self, field: str, message: str) -> None:
        field = one_line(field, 2 * MAX_ECHO)  # a field can be user text (an unknown key)
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message

    def __reduce__(self):  # survives pickling (errors raised in worker processes)
        return type(self), (self.field, self.message)


def param(default: Any = dataclasses.MISSING, *, check: Check | None = None, doc: str = "",
          registry: Any = None, factory: Callable[[], Any] | None = None,
          omit_default: bool = False) -> Any:
    """A dataclass field with a validation ``check`` and a one-line ``doc``. A field with a
    plain default is validated at every construction (see :class:`Checked`).

    ``omit_default``: :func:`to_dict` leaves the field out while it equals its default,
    so adding an option (default = the behaviour so far) keeps every existing config's
    dict, and hence its hash, unchanged.
    """
    meta = {"check": check, "doc": doc, "registry": registry, "omit_default": omit_default}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    if default is dataclasses.MISSING or registry is not None:
        return dataclasses.field(default=default, metadata=meta)
    return dataclasses.field(default=Checked(default, check), metadata=meta)


class Checked:
    """Data descriptor of one config field: ``__set__`` (run by the dataclass ``__init__``)
    coerces the value to the field's annotation and runs its check, raising a
    :class:`ConfigError` that names the field. Values live in the instance ``__dict__``."""

    def __init__(self, default: Any, check: Check | None) -> None:
        self.default = default
        self.check = check
        self.name = ""
        self.owner: type | None = None
        self._hint: Any = dataclasses.MISSING

    def __set_name__(self, owner: type, name: str) -> None:
        self.owner, self.name = owner, name

    def __repr__(self) -> str:
        return repr(self.default)

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self.default
        try:
            return obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    def __set__(self, obj: Any, value: Any) -> None:
        if value is self:  # the dataclass passes its default (this descriptor) through
            value = self.default
        if self._hint is dataclasses.MISSING:
            self._hint = typing.get_type_hints(self.owner)[self.name]
        obj.__dict__[self.name] = check_value(self.name, value, self._hint, self.check)


def check_value(path: str, value: Any, tp: Any, check: Check | None) -> Any:
    """``value`` coerced to ``tp`` and passed through ``check``, or a ConfigError."""
    out = _coerce(value, tp, path)
    msg = check(out) if check is not None and out is not None else None
    if msg is None and not _finite(out):
        msg = "must be a finite number"
    if msg:
        raise ConfigError(path, f"= {_fmt(value)}: {msg}")
    return out


def _finite(v: Any) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    return all(_finite(x) for x in v) if isinstance(v, tuple) else True


def field_default(f: dataclasses.Field) -> Any:
    """The default value of a dataclass field (unwrapping a :class:`Checked`)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default.default if isinstance(f.default, Checked) else f.default


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


def check_in(options: Callable[[], list] | list) -> Check:
    """A check that a value is one of ``options`` (a list, or a callable giving it at
    check time, e.g. a registry's current kinds)."""

    def check(v: Any) -> str | None:
        allowed = options() if callable(options) else options
        return None if v in allowed else f"must be one of {', '.join(map(str, allowed))}"

    return check


def odd_at_least(n: int) -> Check:
    def check(v: Any) -> str | None:
        if v < n or v % 2 == 0:
            return f"must be an odd integer >= {n}"
        return None

    return check


# ---------------------------------------------------------------- coercion
def one_line(text: str, limit: int) -> str:
    """``text`` with control characters escaped (so it stays one line and cannot drive a
    terminal) and its middle elided beyond ``limit`` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    if len(text) <= limit:
        return text
    half = (limit - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


def short(v: Any, limit: int = MAX_ECHO) -> str:
    """``repr(v)`` cut to ``limit`` characters: user input quoted back in one error line
    (the repr escapes control characters)."""
    s = repr(v)
    return s if len(s) <= limit else s[:limit - 3] + "..."


_fmt = short


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
        if isinstance(value, bool) and {"on", "off"} <= set(args):
            value = "on" if value else "off"  # YAML 1.1 reads a bare on/off as a bool
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
    1.1); booleans and non-integral floats for ints are refused. An
    integral float written as a string for an int (``1e2``) is refused with the integer
    to write instead."""
    what = "an integer" if tp is int else "a number"
    if isinstance(value, str):
        value = _parse_number(value, tp, path)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(path, f"= {_fmt(value)}: expected {what}")
    if isinstance(value, numbers.Integral):
        if abs(int(value)) > MAX_INT:
            raise ConfigError(path, f"= {_fmt(value)}: integers are limited to "
                              f"|n| <= 2**53 = {MAX_INT:,}")
        return tp(value)
    value = float(value)
    if tp is float:
        return value
    if value.is_integer():
        return int(value)
    raise ConfigError(path, f"= {_fmt(value)}: expected an integer")


def _parse_number(text: str, tp: type, path: str) -> Any:
    what = "an integer" if tp is int else "a number"
    try:
        return int(text) if tp is int else float(text)
    except ValueError:
        pass
    try:
        x = float(text)
    except ValueError:
        raise ConfigError(path, f"= {_fmt(text)}: expected {what}") from None
    if tp is int and math.isfinite(x) and x.is_integer():
        if abs(x) > MAX_INT:
            raise ConfigError(path, f"= {_fmt(text)}: integers are limited to "
                              f"|n| <= 2**53 = {MAX_INT:,}")
        raise ConfigError(path, f"= {_fmt(text)}: {one_line(text, 20)} is a float; "
                          f"write {int(x)}")
    raise ConfigError(path, f"= {_fmt(text)}: expected {what}")


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
                kwargs[name] = build_section(registry, field_default(f), sub)
            continue
        value = data[name]
        if registry is not None:
            if isinstance(value, dict) and "kind" not in value:  # partial section: keep
                value = {"kind": field_default(f).kind, **value}  # the default kind
            kwargs[name] = build_section(registry, value, sub)
        else:
            kwargs[name] = check_value(sub, value, hints[name], f.metadata.get("check"))
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
    if not isinstance(kind, str) or kind not in registry:
        raise ConfigError(_join(path, "kind"),
                          f"= {_fmt(kind)}: must be one of {', '.join(registry.kinds())}")
    return build(registry.params_class(kind), data, path)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _omitted(obj: Any, f: dataclasses.Field) -> bool:
    """An ``omit_default`` field currently at its default."""
    return bool(f.metadata.get("omit_default")) and getattr(obj, f.name) == field_default(f)


def to_dict(obj: Any) -> Any:
    """A frozen config as plain JSON-able data (tuples become lists); ``omit_default``
    fields at their default are left out (building the dict back restores them)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not _omitted(obj, f)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def config_digest(data: Any) -> str:
    """The record key of a config's plain data (:func:`to_dict`, or a record's ``config``
    mapping): sha256 of its canonical JSON (sorted keys, no spaces), first 16 hex
    digits. Key order is irrelevant, so a config read back from a record has its key.
    It lives with the plain data rather than with the config classes so that the sweep
    store checks records without loading the worlds and learners."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


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
