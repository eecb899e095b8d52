"""identlab: where LeJEPA's linear-identifiability theorem holds, and where it breaks.

The public API is loaded lazily (module ``__getattr__``), so ``import identlab.world``
loads the world part alone::

    import identlab as il
    cfg = il.load_run("configs/spiral.yaml", ["train.steps=300"])
    fitted = il.fit(cfg)
    metrics = fitted.score()
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "load_run": "identlab.config",
    "RunConfig": "identlab.config",
    "ConfigError": "identlab.core.schema",
    "load_spec": "identlab.sweep.spec",
    "World": "identlab.world.world",
    "WorldConfig": "identlab.world.config",
    "EvalConfig": "identlab.measure.config",
    "Record": "identlab.record",
    "fit": "identlab.api",
    "Fitted": "identlab.api",
    "evaluate": "identlab.api",
    "run_sweep": "identlab.api",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'identlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API only (not the loaded submodules or module internals)."""
    return sorted(__all__)
