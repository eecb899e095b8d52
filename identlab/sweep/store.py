"""Resumable record store: one JSON file per (cell, seed), written atomically.

Layout of a sweep directory::

    DIR/spec.json              the resolved sweep spec (and its hash)
    DIR/records/<hash>.json    one record per config hash (config includes the seed)

A record is written to a temp file in the same directory, fsync'ed, then renamed, so a
kill at any moment leaves either the old state or the complete new file. Files that do
not parse (e.g. from a foreign writer) are treated as missing and redone.
"""

from __future__ import annotations

from pathlib import Path

from identlab.core.io import read_json, write_json_atomic

__all__ = ["Store"]


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
