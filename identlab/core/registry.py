"""Registries: map a config ``kind`` string to its implementation class, once.

Each implementation class declares a frozen ``Params`` dataclass whose first field is
``kind``. The config loader looks the class up by ``kind`` at load time, so no string
switch ever runs inside a training loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Registry:
    """A named mapping ``kind -> implementation class``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._classes: dict[str, type] = {}

    def register(self, kind: str) -> Callable[[type[T]], type[T]]:
        def deco(cls: type[T]) -> type[T]:
            if kind in self._classes:
                raise RuntimeError(f"{self.name} kind {kind!r} registered twice")
            params = getattr(cls, "Params", None)
            if params is None:
                raise RuntimeError(f"{cls.__name__} must define a Params dataclass")
            self._classes[kind] = cls
            cls.kind = kind  # type: ignore[attr-defined]
            return cls

        return deco

    def get(self, kind: str) -> type:
        return self._classes[kind]

    def __contains__(self, kind: object) -> bool:
        return kind in self._classes

    def kinds(self) -> list[str]:
        return sorted(self._classes)

    def params_class(self, kind: str) -> Any:
        return self._classes[kind].Params


LATENTS = Registry("latent")
DYNAMICS = Registry("dynamics")
MIXERS = Registry("mixer")
ENCODERS = Registry("encoder")
OBJECTIVES = Registry("objective")
PREDICTORS = Registry("predictor")
