"""Experiment tracking: loss curves and metrics of a sweep, streamed to a tracker.

A tracker receives, for every batched chunk a sweep trains:

* ``on_start(member, name, config, meta)`` once per member before training: the
  member's index in the chunk, its record hash (the run's name), its config as plain
  data (what the record's ``config`` holds) and its sweep metadata (cell labels, seed);
* ``on_step(member, step, loss)`` every logged step (every ``log_every`` updates and
  after the last one: exactly the points of the record's ``train.history``), ``step``
  the number of updates done, ``loss`` the member's mean loss over the window (None
  once it diverged);
* ``on_record(record)`` once per record written to the store (the full record, its
  ``sweep`` metadata included);
* ``close()`` once at the end of the chunk, also after an error or an interrupt.

A sweep is given trackers as plain-data specs, ``{"kind": "tensorboard", "dir":
"runs/tb"}`` (``run_sweep(..., trackers=[spec])``, ``identlab sweep --track DIR``). The
spec, not the tracker, travels with each chunk: the tracker is built in the process that
trains the chunk and writes its records (the sweep process itself, a forked worker of
``--executor process`` or a SLURM job), so a spec must pickle and a tracker never has
to. Specs are checked (:func:`check_specs`) before anything is written.

Built in: ``tensorboard`` (:mod:`identlab.track.tensorboard`, the ``track`` extra:
``pip install 'identlab[track]'``), TensorBoard event files, one run folder per record
hash. Importing identlab never imports tensorboard; only using the tracker does.

Adding a tracker: subclass :class:`Tracker`, override the hooks it needs (each does
nothing by default) and register it under a kind; its spec's other keys are the
constructor's keyword arguments::

    from identlab.track import Tracker, register

    @register("print")
    class PrintTracker(Tracker):
        def __init__(self, every: int = 1) -> None:
            self.every = every

        def on_step(self, member, step, loss):
            if step % self.every == 0:
                print(member, step, loss)

        def on_record(self, record):
            print(record["hash"], record["metrics"].get("r2_hz"))

    run_sweep(spec, "runs/x", trackers=[{"kind": "print", "every": 100}])

Override the class method :meth:`Tracker.check` to refuse a bad spec early (a missing
package, a missing option) with a :class:`~identlab.core.schema.ConfigError`, or to
normalise it (the TensorBoard tracker makes its ``dir`` absolute). With ``--executor
process`` a tracker must be registered before the sweep starts (workers are forked and
inherit the registry); a SLURM job imports the tracker's module itself, so register it
in an importable module there.

This module imports neither torch nor tensorboard.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from identlab.core.schema import ConfigError

__all__ = ["Tracker", "TRACKERS", "register", "check_specs", "build", "Fanout"]


class Tracker:
    """The callback interface; every hook does nothing unless overridden."""

    kind: str = ""

    @classmethod
    def check(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Validate (and normalise) a spec's parameters before the sweep writes anything;
        raise ConfigError to refuse them. Returns the parameters to build with."""
        return params

    def on_start(self, member: int, name: str, config: dict, meta: dict) -> None:
        """Member ``member`` of the chunk is the run ``name`` (its record hash)."""

    def on_step(self, member: int, step: int, loss: float | None) -> None:
        """A logged step: ``loss`` is the member's mean over the last window."""

    def on_record(self, record: dict) -> None:
        """A finished record, as written to the store."""

    def close(self) -> None:
        """The chunk is over (finished, failed or interrupted)."""


TRACKERS: dict[str, type[Tracker]] = {}


def register(kind: str):
    """Class decorator: make a :class:`Tracker` subclass available as ``kind``."""
    def deco(cls: type[Tracker]) -> type[Tracker]:
        if not (isinstance(cls, type) and issubclass(cls, Tracker)):
            raise TypeError(f"tracker {kind!r}: {cls!r} is not a Tracker subclass")
        if TRACKERS.get(kind, cls) is not cls:
            raise RuntimeError(f"tracker kind {kind!r} registered twice")
        TRACKERS[kind] = cls
        cls.kind = kind
        return cls

    return deco


def _split(spec: Any) -> tuple[type[Tracker], dict[str, Any]]:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("kind"), str):
        raise ConfigError("trackers", f"= {spec!r}: each tracker is a mapping with a "
                          "'kind' (e.g. {'kind': 'tensorboard', 'dir': 'runs/tb'})")
    kind = spec["kind"]
    if kind not in TRACKERS:
        raise ConfigError("trackers", f"kind = {kind!r}: one of {', '.join(sorted(TRACKERS))}")
    return TRACKERS[kind], {k: v for k, v in spec.items() if k != "kind"}


def check_specs(specs: Iterable[Mapping] | Mapping | None) -> list[dict]:
    """The tracker specs, checked and normalised, as plain dicts (a single spec may be
    given without a list; None: no tracker)."""
    if specs is None:
        return []
    if isinstance(specs, Mapping):
        specs = [specs]
    if isinstance(specs, (str, bytes)) or not isinstance(specs, Iterable):
        raise ConfigError("trackers", f"= {specs!r}: a list of tracker specs")
    out = []
    for spec in specs:
        cls, params = _split(spec)
        out.append({"kind": cls.kind, **cls.check(dict(params))})
    return out


class Fanout(Tracker):
    """Several trackers as one; ``on_log(step, losses)`` is the trainer's hook (one loss
    per member) and calls every tracker's ``on_step`` for every member. Every tracker
    is closed even when one fails to."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = trackers

    def on_start(self, member, name, config, meta):
        for t in self.trackers:
            t.on_start(member, name, config, meta)

    def on_step(self, member, step, loss):
        for t in self.trackers:
            t.on_step(member, step, loss)

    def on_log(self, step: int, losses: list[float | None]) -> None:
        for k, loss in enumerate(losses):
            self.on_step(k, step, loss)

    def on_record(self, record):
        for t in self.trackers:
            t.on_record(record)

    def close(self):
        errors = []
        for t in self.trackers:
            try:
                t.close()
            except Exception as e:  # close the others, then report the first failure
                errors.append(e)
        if errors:
            raise errors[0]


def build(specs: Iterable[Mapping] | None) -> Fanout | None:
    """The trackers of checked specs (see :func:`check_specs`) as one; None for none."""
    if not specs:
        return None
    fan = Fanout([])
    try:
        for spec in specs:
            cls, params = _split(spec)
            fan.trackers.append(cls(**params))
    except BaseException:
        with contextlib.suppress(Exception):  # the first error is the one to see
            fan.close()
        raise
    return fan


from identlab.track import tensorboard as _tensorboard  # noqa: E402,F401  (registers it)
