"""Files and user errors shared by every part: atomic writes, tolerant reads, output folders.

Writes go to a temp file in the same folder, are fsync'ed, then renamed, so a kill at any
moment leaves either the old file or the whole new one.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from identlab.core.schema import short

__all__ = ["NAME_RE", "UsageError", "ensure_writable_dir", "check_writable_target",
           "refuse_empty_path", "write_bytes_atomic", "write_json_atomic", "read_json"]


# a spec or report name: it names a folder, so no separators, dots or spaces
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class UsageError(Exception):
    """A user error that is not about a config field."""



def refuse_empty_path(path: str | Path, option: str) -> None:
    """Refuse an empty path for ``option`` (``Path("")`` would silently mean the current
    folder)."""
    if str(path) == "":
        raise UsageError(f"{option} '': an empty path; name a folder")


PROBE_BYTES = 64 * 1024  # written and synced to prove a folder takes data, not only names


def ensure_writable_dir(path: str | Path, option: str = "--out") -> Path:
    """Create folder ``path`` (and its parents) and prove it takes data (a synced probe
    of PROBE_BYTES, so a full disk is found before any work, not after), or raise a
    one-line :class:`UsageError` naming ``option``. An empty path is refused."""
    refuse_empty_path(path, option)
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{option} {_quote(path)} is a file, not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p, prefix=".write-test-") as f:
            f.write(b"\0" * PROBE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise UsageError(f"{option} {_quote(path)} is not writable "
                         f"({e.strerror or e})") from None
    return p


def _quote(path) -> str:
    return short(str(path))


def check_writable_target(path: str | Path, option: str) -> None:
    """Refuse, creating nothing, a folder ``path`` that could not be made: its nearest
    existing ancestor must be a writable folder (and ``path`` itself, if it exists)."""
    refuse_empty_path(path, option)
    p = Path(path).absolute()
    probe = p
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{option} {str(path)!r} is not writable ({str(probe)!r} is not "
                         "a folder)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {str(path)!r} is not writable (no write permission on "
                         f"{str(probe)!r})")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` via a temp file in the same folder, fsync, then rename: a reader
    (or a kill at any moment) sees the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_atomic(path: Path, obj, indent: int | None = 1) -> None:
    """JSON (NaN refused) written with :func:`write_bytes_atomic`."""
    write_bytes_atomic(path, json.dumps(obj, indent=indent, allow_nan=False).encode())


def read_json(path: Path):
    """Parsed JSON, or None when missing, unreadable (a folder, say), unparsable or nested
    too deep to parse."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError):
        return None
