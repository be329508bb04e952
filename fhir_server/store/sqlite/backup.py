"""Online backup and restore of the embedded store, through SQLite's backup API.

``backup`` copies the database in one step inside one read transaction: in WAL mode a reader sees the last
commit before it began and never blocks writers, so the copy is a consistent snapshot — whole transactions,
history and index rows together — taken while the server keeps serving. It is written next to the destination
and renamed into place only after ``PRAGMA integrity_check`` passes, so a half-written backup never carries the
destination's name.

``restore`` checks the source the same way, then copies it into the data directory with the same API (which
writes the destination's own WAL correctly; a plain file copy beside a stale ``-wal`` file would not). Stop the
server first: a running worker would keep serving what it has cached of the old data.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


class BackupError(Exception):
    """The source or the copy is not a usable store file; nothing was replaced."""


def _check(conn: sqlite3.Connection, what: str) -> None:
    result = conn.execute("PRAGMA integrity_check").fetchall()
    if result != [("ok",)]:
        raise BackupError(f"{what} fails SQLite's integrity check: {result[:3]}")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"resource", "history"} <= tables:
        raise BackupError(f"{what} is an SQLite file but not a FHIR store (no resource/history tables)")


def backup(source: Path, dest: Path) -> int:
    """Copy the store file ``source`` to ``dest`` (a file path); returns the size in bytes."""
    try:
        return _backup(source, dest)
    except sqlite3.Error as e:
        raise BackupError(f"SQLite: {e}") from e


def restore(source: Path, dest: Path) -> None:
    """Replace the store file ``dest`` with the backup ``source`` (checked first)."""
    try:
        _restore(source, dest)
    except sqlite3.Error as e:
        raise BackupError(f"SQLite: {e}") from e


def _backup(source: Path, dest: Path) -> int:
    if not source.exists():
        raise BackupError(f"no store at {source}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=30)
    try:
        out = sqlite3.connect(partial)
        try:
            src.backup(out)  # pages=-1: the whole file in one step, one snapshot
            out.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
            _check(out, f"the copy {partial}")
        finally:
            out.close()
    finally:
        src.close()
    os.replace(partial, dest)
    return dest.stat().st_size


def _restore(source: Path, dest: Path) -> None:
    if not source.exists():
        raise BackupError(f"no backup at {source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        _check(src, f"the backup {source}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        out = sqlite3.connect(dest, timeout=30)
        try:
            src.backup(out)
            out.execute("PRAGMA journal_mode=WAL")
        finally:
            out.close()
    finally:
        src.close()
