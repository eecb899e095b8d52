"""Registries: map a config ``kind`` string to its implementation, once.

Each implementation class declares a frozen ``Params`` dataclass whose first field is
``kind``. The config loader looks the class up by ``kind`` at load time, so no string
switch ever runs inside a training loop. A plugin (:mod:`identlab.core.plugins`)
registers its own kinds the same way.

Registering the same class again (a notebook cell run twice, a module reloaded: the
same module and qualified name) replaces the entry; a *different* class under a taken
name is refused with :class:`RegistryError`, a ConfigError naming the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from identlab.core.schema import ConfigError

T = TypeVar("T")

__all__ = ["Registry", "FunctionRegistry", "RegistryError", "LATENTS", "DYNAMICS", "MIXERS",
           "ENCODERS", "OBJECTIVES", "PREDICTORS", "GAUSSIANITY", "SIGREG_IMPLS",
           "REGISTRIES"]


class RegistryError(ConfigError):
    """A kind registered twice by different implementations."""


def _origin(obj: object) -> tuple[str, str]:
    return getattr(obj, "__module__", ""), getattr(obj, "__qualname__", repr(obj))


class _Base:
    """Shared lookup; ``_entries`` maps kind -> implementation."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._entries: dict[str, Any] = {}

    def _add(self, kind: str, obj: Any) -> None:
        old = self._entries.get(kind)
        if old is not None and old is not obj and _origin(old) != _origin(obj):
            mod, qual = _origin(old)
            new_mod, new_qual = _origin(obj)
            raise RegistryError(f"{self.name}.kind", f"{kind!r} is taken by {mod}.{qual}; "
                                f"{new_mod}.{new_qual} cannot register under it (choose "
                                "another name)")
        self._entries[kind] = obj

    def get(self, kind: str) -> Any:
        return self._entries[kind]

    def __contains__(self, kind: object) -> bool:
        return kind in self._entries

    def kinds(self) -> list[str]:
        return sorted(self._entries)

    def items(self) -> list[tuple[str, Any]]:
        return sorted(self._entries.items())


class Registry(_Base):
    """A named mapping ``kind -> implementation class`` (each with a ``Params``)."""

    def register(self, kind: str) -> Callable[[type[T]], type[T]]:
        def deco(cls: type[T]) -> type[T]:
            params = getattr(cls, "Params", None)
            if params is None:
                raise RuntimeError(f"{cls.__name__} must define a Params dataclass")
            self._add(kind, cls)
            cls.kind = kind  # type: ignore[attr-defined]
            return cls

        return deco

    def params_class(self, kind: str) -> Any:
        return self._entries[kind].Params


class FunctionRegistry(_Base):
    """A named mapping ``name -> function`` (e.g. the implementations of one statistic)."""

    def register(self, name: str) -> Callable[[T], T]:
        def deco(fn: T) -> T:
            self._add(name, fn)
            return fn

        return deco


LATENTS = Registry("latent")
DYNAMICS = Registry("dynamics")
MIXERS = Registry("mixer")
ENCODERS = Registry("encoder")
OBJECTIVES = Registry("objective")
PREDICTORS = Registry("predictor")
GAUSSIANITY = Registry("gaussianity")  # Gaussianity terms (identlab.sigreg.terms)
SIGREG_IMPLS = FunctionRegistry("sigreg")  # implementations of the Epps–Pulley statistic

# every class registry, by the config section that names its kinds
REGISTRIES = {"world.latent": LATENTS, "world.dynamics": DYNAMICS, "world.mixer": MIXERS,
              "learner.encoder": ENCODERS, "learner.objective": OBJECTIVES,
              "learner.predictor": PREDICTORS}
