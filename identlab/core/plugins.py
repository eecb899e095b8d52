"""Plugins: user modules that register their own kinds (objectives, encoders, mixers,
latent laws, dynamics, predictors, Gaussianity terms, SIGReg implementations).

A plugin is a Python module importable by name; importing it runs its
``@OBJECTIVES.register(...)``-style decorators. identlab imports plugins from three
places, in every entry point and every executor (a worker process or a SLURM job
rebuilds its configs with :func:`identlab.config.from_dict`, which imports them first):

* ``plugins: [my_pkg.objectives]`` in a run config or a sweep spec (the list travels
  with every config built from it);
* ``--plugin MODULE`` on any command (added to the configs it builds);
* the ``identlab.plugins`` entry-point group of installed packages, loaded once per
  process before the first config is built (an entry point names a module, or a
  callable that is called with no arguments).

:func:`loaded` lists what was imported, with versions; records keep it in their
provenance.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import re
import sys

from identlab.core.schema import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "load", "load_entry_points", "loaded", "check_names"]

ENTRY_POINT_GROUP = "identlab.plugins"

_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_LOADED: dict[str, dict] = {}
_ENTRY_POINTS_DONE = False


def check_names(names, field: str = "plugins") -> tuple[str, ...]:
    """``names`` as a tuple of dotted module names, or a ConfigError naming ``field``."""
    if names is None:
        return ()
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)):
        raise ConfigError(field, f"= {names!r}: expected a list of module names")
    for n in names:
        if not isinstance(n, str) or not _MODULE_RE.match(n):
            raise ConfigError(field, f"= {n!r}: not a Python module name (e.g. "
                              "my_pkg.objectives)")
    return tuple(names)


def _version(module) -> str | None:
    """The installed distribution's version of a module's top-level package, else its
    ``__version__``, else None (a module beside the working directory)."""
    top = module.__name__.split(".")[0]
    try:
        dists = md.packages_distributions().get(top) or []
        if dists:
            return md.version(dists[0])
    except Exception:  # noqa: BLE001 — broken metadata must not stop a run
        pass
    v = getattr(module, "__version__", None) or getattr(sys.modules.get(top), "__version__",
                                                       None)
    return None if v is None else str(v)


def load(names, field: str = "plugins", source: str = "config") -> list[dict]:
    """Import each plugin module (once per process); a module that cannot be imported,
    or whose import fails, is a ConfigError naming ``field``. Returns their entries."""
    out = []
    for name in check_names(names, field):
        if name not in _LOADED:
            try:
                module = importlib.import_module(name)
            except ConfigError as e:  # e.g. a kind registered twice by different classes
                raise ConfigError(field, f"= {name!r}: {e.field}: {str(e).split(': ', 1)[-1]}"
                                  ) from None
            except ModuleNotFoundError as e:
                where = "" if e.name == name else f" (it needs {e.name!r})"
                raise ConfigError(field, f"= {name!r}: no such module{where}; is it on "
                                  "PYTHONPATH or installed?") from None
            except Exception as e:  # noqa: BLE001 — the plugin's own error, in one line
                raise ConfigError(field, f"= {name!r}: importing it failed: "
                                  f"{type(e).__name__}: {e}") from None
            _LOADED[name] = {"module": name, "version": _version(module), "source": source}
        out.append(_LOADED[name])
    return out


def load_entry_points() -> list[dict]:
    """Load the ``identlab.plugins`` entry points of installed packages (once)."""
    global _ENTRY_POINTS_DONE
    if _ENTRY_POINTS_DONE:
        return [v for v in _LOADED.values() if v["source"] == "entry point"]
    _ENTRY_POINTS_DONE = True
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        key = ep.value.split(":")[0].strip()
        if key in _LOADED:
            continue
        try:
            obj = ep.load()
            if callable(obj):  # a module is not: importing it registered its kinds
                obj()
        except ConfigError as e:
            raise ConfigError(f"entry point {ep.name!r}", str(e)) from None
        except Exception as e:  # noqa: BLE001
            raise ConfigError(f"entry point {ep.name!r}", f"= {ep.value!r}: loading it "
                              f"failed: {type(e).__name__}: {e}") from None
        dist = getattr(ep, "dist", None)
        version = dist.version if dist is not None else _version(sys.modules[key])
        _LOADED[key] = {"module": key, "version": version, "source": "entry point"}
    return [v for v in _LOADED.values() if v["source"] == "entry point"]


def loaded() -> list[dict]:
    """Every plugin imported in this process: module, version, source (sorted)."""
    return [dict(_LOADED[k]) for k in sorted(_LOADED)]
