"""The TensorBoard tracker: event files under ``dir``, one run folder per record hash.

Each run (``<dir>/<record hash>/``) holds the member's config and sweep metadata (text
``config`` and ``sweep``, JSON), its loss curve (scalar ``train/loss`` at every logged
step, the points of the record's ``train.history``; none after it diverged), every
numeric metric of its record (scalar ``metrics/<key>`` at the last step; a boolean as
0/1) and its status (text ``status``). Works offline: ``tensorboard --logdir <dir>``.

A run retrained after an interrupted attempt gets a second event file in its folder.
Needs the ``track`` extra (``pip install 'identlab[track]'``); tensorboard is imported
only when a tracker is built or checked.
"""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path
from typing import Any

from identlab.core.schema import ConfigError
from identlab.track import Tracker, register

__all__ = ["TensorBoardTracker", "summary_writer"]

OPTION = "--track"


def summary_writer():
    """``torch.utils.tensorboard.SummaryWriter``, or a one-line ConfigError naming the
    option and the extra when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(OPTION, "the TensorBoard tracker needs tensorboard; install the "
                          "extra: pip install 'identlab[track]'") from None
    return SummaryWriter


def _json_block(obj: Any) -> str:
    # four-space indented: TensorBoard renders text summaries as markdown
    return "\n".join("    " + line for line in json.dumps(obj, indent=2, sort_keys=True,
                                                          default=str).splitlines())


@register("tensorboard")
class TensorBoardTracker(Tracker):
    """``{"kind": "tensorboard", "dir": DIR}``: see the module docstring."""

    @classmethod
    def check(cls, params: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(params) - {"dir"})
        if unknown:
            raise ConfigError(OPTION, f"tensorboard tracker: unknown option {unknown[0]!r} "
                              "(it takes 'dir')")
        d = params.get("dir")
        if not isinstance(d, (str, Path)) or not str(d):
            raise ConfigError(OPTION, f"= {d!r}: the tensorboard tracker needs a folder "
                              "('dir')")
        summary_writer()
        # absolute: a worker or a SLURM job may run elsewhere
        return {"dir": str(Path(d).expanduser().resolve())}

    def __init__(self, dir: str) -> None:
        self.dir = Path(dir)
        self._writer_cls = summary_writer()
        self._writers: dict[str, Any] = {}   # record hash -> its SummaryWriter
        self._names: dict[int, str] = {}     # member index -> record hash

    def _writer(self, name: str):
        w = self._writers.get(name)
        if w is None:
            w = self._writers[name] = self._writer_cls(log_dir=str(self.dir / name))
        return w

    def on_start(self, member: int, name: str, config: dict, meta: dict) -> None:
        self._names[member] = name
        w = self._writer(name)
        w.add_text("config", _json_block(config), 0)
        w.add_text("sweep", _json_block(meta), 0)

    def on_step(self, member: int, step: int, loss: float | None) -> None:
        name = self._names.get(member)
        if name is None or loss is None or not math.isfinite(loss):
            return
        self._writer(name).add_scalar("train/loss", loss, step)

    def on_record(self, record: dict) -> None:
        name = record["hash"]
        w = self._writer(name)
        step = int(record.get("config", {}).get("train", {}).get("steps", 0))
        for key, value in (record.get("metrics") or {}).items():
            if isinstance(value, numbers.Real) and math.isfinite(value):
                w.add_scalar(f"metrics/{key}", float(value), step)
        status = record.get("status")
        if record.get("diverged_at") is not None:
            status = f"{status} at step {record['diverged_at']}"
        w.add_text("status", str(status), step)
        w.close()
        del self._writers[name]

    def close(self) -> None:
        writers, self._writers = self._writers, {}
        for w in writers.values():
            w.close()
