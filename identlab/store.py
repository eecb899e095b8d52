"""Resumable record store: one JSON file per (cell, seed), written atomically.

Layout of a sweep directory::

    DIR/spec.json              the resolved sweep spec (and its hash)
    DIR/records/<hash>.json    one record per config hash (config includes the seed)

A record is written to a temp file in the same directory, fsync'ed, then renamed, so a
kill at any moment leaves either the old state or the complete new file. Files that do
not parse (e.g. from a foreign writer) are treated as missing and redone.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

__all__ = ["Store", "write_bytes_atomic", "write_json_atomic", "read_json"]


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
    """Parsed JSON, or None when missing or unparsable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


class Store:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.dir = self.root / "records"

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def has(self, key: str) -> bool:
        rec = read_json(self.path(key))
        return isinstance(rec, dict) and rec.get("hash") == key

    def put(self, record: dict) -> None:
        write_json_atomic(self.path(record["hash"]), record)

    def keys(self) -> set[str]:
        if not self.dir.is_dir():
            return set()
        return {p.stem for p in self.dir.glob("*.json")}

    def records(self) -> list[dict]:
        out = []
        for p in sorted(self.dir.glob("*.json")) if self.dir.is_dir() else []:
            rec = read_json(p)
            if isinstance(rec, dict) and rec.get("hash") == p.stem:
                out.append(rec)
        return out
