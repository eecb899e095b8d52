"""Resumable record store: one JSON file per (cell, seed), written atomically.

Layout of a sweep directory::

    DIR/spec.json              the resolved sweep spec (and its hash)
    DIR/records/<hash>.json    one record per config hash (config includes the seed)

A record is written to a temp file in the same directory, fsync'ed, then renamed, so a
kill at any moment leaves either the old state or the complete new file.

A record counts as done only if it parses, its ``hash`` field equals its file name, its
``config`` hashes to that name and every section of its body has the record layout
(:func:`record_problem`, :func:`identlab.record.record_body_problem`). Anything else in
``records/`` (truncated, garbage, a foreign writer's file) is moved to
``records/quarantine/`` (kept for inspection, never read again), reported by
:meth:`Store.quarantine`, and its run is redone.

One writer at a time: :meth:`Store.lock` takes an advisory lock on ``DIR/.lock`` (held
by the sweep from before it writes ``spec.json`` until its last record); a second sweep
into the same directory is refused at once with a message naming the holder's pid (it
does not wait, so two terminals never silently share an output directory). The lock is
reentrant within one :class:`Store`, so an executor called under it does not drop it.
A disk that fills up stops the writer with a :class:`StoreError` (one line); every
record already written stays whole, so the rerun resumes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from identlab.core.io import read_json, write_bytes_atomic, write_json_atomic
from identlab.core.schema import ConfigError, config_digest, short
from identlab.record import record_body_problem

__all__ = ["Store", "StoreError", "config_digest", "record_problem"]

QUARANTINE = "quarantine"


class StoreError(ConfigError):
    """The output directory cannot take a record (full disk, taken by another writer)."""


def record_problem(rec, key: str) -> str | None:
    """Why ``rec`` (parsed from ``records/<key>.json``, None when unparsable) cannot be
    trusted as the record of ``key``, or None when it can: it must be a JSON object whose
    ``hash`` is its file name and whose ``config`` (a mapping) hashes to it."""
    if rec is None:
        return "does not parse as JSON (truncated or corrupt)"
    if not isinstance(rec, dict):
        return "is not a JSON object"
    if rec.get("hash") != key:
        return f"its hash {rec.get('hash')!r} is not its file name"
    config = rec.get("config")
    if not isinstance(config, dict):
        return "it has no config mapping"
    if config_digest(config) != key:
        return "its config does not hash to its file name"
    return record_body_problem(rec)


class Store:
    """The records of one output directory, each trusted only after it is checked."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.dir = self.root / "records"
        self._spec: bytes | None = None
        self.recreated = 0  # times the directory vanished and was recreated
        self._held = 0  # depth of :meth:`lock` calls holding the lock

    def check_layout(self) -> None:
        """Refuse, with one line naming the path, a directory whose parts are not what the
        store writes: ``spec.json``, ``summary.json`` and ``.lock`` must be files,
        ``records/`` and ``records/quarantine/`` folders; ``records/`` must not hold
        another sweep (a ``spec.json``), and the directory must not lie inside another
        sweep's ``records/`` (the outer sweep would set its files aside)."""
        def refuse(path: Path, what: str) -> None:
            raise StoreError("--out", f"{short(str(path), 120)} {what}; move it away or "
                             "choose another --out")

        if self.root.exists() and not self.root.is_dir():
            refuse(self.root, "is not a folder")
        for name in ("spec.json", "summary.json", ".lock"):
            p = self.root / name
            if p.is_symlink() or (p.exists() and not p.is_file()):
                refuse(p, "is not a plain file")
        for d in (self.dir, self.dir / QUARANTINE):
            if d.exists() and not d.is_dir():
                refuse(d, "is not a folder")
        if (self.dir / "spec.json").exists():
            refuse(self.dir, "holds another sweep (its spec.json)")
        for parent in self.root.absolute().parents:
            if parent.name == "records" and (parent.parent / "spec.json").is_file():
                refuse(self.root, f"lies inside the records of the sweep in {parent.parent}")

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def problem(self, key: str) -> str | None:
        """Why the record of ``key`` is not trusted (None: it is). Missing counts too."""
        p = self.path(key)
        if not p.exists():
            return "missing"
        return record_problem(read_json(p), key)

    def has(self, key: str) -> bool:
        return self.problem(key) is None

    def _files(self) -> list[Path]:
        return sorted(self.dir.glob("*.json")) if self.dir.is_dir() else []

    def keys(self) -> set[str]:
        """Keys of the trusted records (a bad file is not done)."""
        return {p.stem for p in self._files() if record_problem(read_json(p), p.stem) is None}

    def records(self) -> list[dict]:
        out = []
        for p in self._files():
            rec = read_json(p)
            if record_problem(rec, p.stem) is None:
                out.append(rec)
        return out

    def quarantine(self) -> list[tuple[Path, str]]:
        """Move every untrusted record file to ``records/quarantine/``; return each moved
        file's new path and the reason."""
        moved = []
        for p in self._files():
            why = record_problem(read_json(p), p.stem)
            if why is not None:
                moved.append((self._move_aside(p), why))
        return moved

    def _move_aside(self, p: Path) -> Path:
        qdir = self.dir / QUARANTINE
        qdir.mkdir(parents=True, exist_ok=True)
        dest, i = qdir / p.name, 1
        while dest.exists():
            dest, i = qdir / f"{p.stem}.{i}.json", i + 1
        os.replace(p, dest)
        return dest

    def put(self, record: dict) -> None:
        """Write one record atomically. An untrusted file in its place is moved aside
        first; a vanished directory is recreated with its spec (see :meth:`keep_spec`).
        A failed write raises :class:`StoreError`, leaving every other record intact."""
        p = self.path(record["hash"])
        try:
            self.ensure_dir()
            if p.exists() and record_problem(read_json(p), p.stem) is not None:
                self._move_aside(p)
            write_json_atomic(p, record)
        except OSError as e:
            raise StoreError("--out", f"{str(self.root)!r}: cannot write a record "
                             f"({e.strerror or e}); the {len(self.keys())} records written "
                             "are whole — free space and rerun to resume") from None

    def clean_temp(self) -> int:
        """Remove temp files left by writers killed mid-write (call under :meth:`lock`,
        when no other writer can be between its write and its rename). Returns how many."""
        n = 0
        for d in (self.root, self.dir):
            for p in d.glob(".*.tmp") if d.is_dir() else []:
                p.unlink(missing_ok=True)
                n += 1
        return n

    def keep_spec(self) -> None:
        """Remember ``spec.json`` as it is now, so :meth:`ensure_dir` can restore it."""
        try:
            self._spec = (self.root / "spec.json").read_bytes()
        except OSError:
            self._spec = None

    def ensure_dir(self) -> bool:
        """Recreate the directory (and the remembered spec.json) if it vanished; True
        when something had to be recreated."""
        spec = self.root / "spec.json"
        if self.dir.is_dir() and (self._spec is None or spec.exists()):
            return False
        self.dir.mkdir(parents=True, exist_ok=True)
        if self._spec is not None and not spec.exists():
            write_bytes_atomic(spec, self._spec)
            self.recreated += 1
            return True
        return False

    @contextlib.contextmanager
    def lock(self):
        """Hold the advisory write lock of this directory, or raise :class:`StoreError`
        naming the process that holds it. Reentrant: a nested call on the same Store holds
        nothing more (a POSIX lock is per process, and closing a second descriptor of the
        lock file would release it)."""
        if self._held:
            self._held += 1
            try:
                yield self
            finally:
                self._held -= 1
            return
        path = self.root / ".lock"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreError("--out", f"{short(str(path), 120)}: cannot take the write lock "
                             f"({e.strerror or e})") from None
        try:
            try:  # a POSIX record lock: not inherited by forked workers, freed on exit
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise StoreError("--out", f"{str(self.root)!r} is being written by another "
                                 f"sweep (pid {holder}); wait for it to finish or choose "
                                 "another --out") from None
            try:  # the holder's pid, for the message above (the lock itself needs no space)
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
            except OSError as e:
                raise StoreError("--out", f"{short(str(self.root), 120)}: cannot write "
                                 f"({e.strerror or e}); free space and rerun") from None
            self._held = 1
            try:
                yield self
            finally:
                self._held = 0
        finally:
            os.close(fd)  # closing releases the lock
