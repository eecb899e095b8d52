"""Progress bars that suit where they are written.

On a terminal (or in a notebook), :func:`tqdm` is the ordinary ``tqdm.auto`` bar. When
the stream is not a terminal (a SLURM log file, a pipe, a CI log) a bar writes one plain
line every ``IDENTLAB_PROGRESS_SECONDS`` seconds (default 30) instead of carriage-return
redraws, so a log file stays readable; a bar that closes sooner than that and is not
kept (``leave=False``) writes nothing.

Use it exactly like tqdm::

    from identlab.core.progress import tqdm
    for step in tqdm(range(n), desc="train", disable=not progress):
        ...
"""

from __future__ import annotations

import math
import os
import re
import sys

from tqdm.std import tqdm as _std_tqdm

__all__ = ["tqdm", "LineProgress", "progress_seconds", "is_terminal"]

ENV = "IDENTLAB_PROGRESS_SECONDS"
DEFAULT_SECONDS = 30.0
_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def progress_seconds() -> float:
    """Seconds between two plain progress lines: ``$IDENTLAB_PROGRESS_SECONDS`` when it
    is a positive number, else 30."""
    raw = os.environ.get(ENV, "")
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_SECONDS
    return value if math.isfinite(value) and value > 0 else DEFAULT_SECONDS


def is_terminal(stream) -> bool:
    """Whether ``stream`` is an interactive terminal (False for anything without a working
    ``isatty``)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class _Lines:
    """A text stream wrapper that turns in-place redraws into whole lines: carriage
    returns and cursor movements are dropped, blank writes skipped, and every written
    status ends with a newline."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, s) -> int:
        text = _ESCAPES.sub("", str(s)).replace("\r", "")
        for line in text.split("\n"):
            line = line.rstrip()
            if line:
                self._stream.write(line + "\n")
        return len(s)

    def flush(self) -> None:
        flush = getattr(self._stream, "flush", None)
        if flush is not None:
            flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name):
        return getattr(self._stream, name)


class LineProgress(_std_tqdm):
    """A tqdm bar that prints a plain line at most every ``interval`` seconds (default
    :func:`progress_seconds`), never a carriage return."""

    def __init__(self, *args, interval: float | None = None, **kwargs):
        every = progress_seconds() if interval is None else float(interval)
        stream = kwargs.get("file")
        kwargs["file"] = _Lines(sys.stderr if stream is None else stream)
        kwargs["mininterval"] = every
        kwargs["maxinterval"] = every
        kwargs["dynamic_ncols"] = False
        kwargs.setdefault("ncols", 100)
        kwargs.setdefault("ascii", True)
        kwargs.pop("position", None)
        if kwargs.get("leave") is False:
            kwargs.setdefault("delay", every)  # a short-lived inner bar stays silent
        self._every = every
        self._last_line = -math.inf
        super().__init__(*args, **kwargs)

    def display(self, msg=None, pos=None):
        """At most one line per interval (``set_postfix`` and ``refresh`` included), and
        the final state when a kept bar closes."""
        closing = self.disable  # close() disables the bar before its last display
        now = self._time()
        if not closing and (now - self._last_line < self._every
                            or now < getattr(self, "start_t", now) + self.delay):
            return True
        self._last_line = now
        return super().display(msg, pos)

    def moveto(self, n):  # nested bars: no cursor movement in a log file
        return None


def _in_notebook() -> bool:
    """A Jupyter kernel (its streams are no terminal, but it draws widget bars)."""
    shell = sys.modules.get("IPython")
    try:
        ip = shell.get_ipython() if shell is not None else None
    except Exception:  # noqa: BLE001 - any IPython oddity means "not a notebook"
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def tqdm(*args, **kwargs):
    """A progress bar for ``file`` (default stderr): tqdm's own on a terminal, else a
    :class:`LineProgress` writing one plain line every few seconds."""
    stream = kwargs.get("file")
    if is_terminal(sys.stderr if stream is None else stream) or (
            stream in (None, sys.stderr, sys.stdout) and _in_notebook()):
        from tqdm.auto import tqdm as auto_tqdm

        return auto_tqdm(*args, **kwargs)
    return LineProgress(*args, **kwargs)
