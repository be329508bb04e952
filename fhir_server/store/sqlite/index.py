"""SQLite index tables (placeholder: the search issue fills in the typed tables)."""

from __future__ import annotations

import sqlite3

from fhir_server.fhir.search.index import IndexRows

INDEX_DDL = ""


def insert_index(conn: sqlite3.Connection, rid: int, rtype: str, rows: IndexRows) -> int:
    """Write the index rows of resource ``rid``; returns how many rows were written."""
    return 0


def delete_index(conn: sqlite3.Connection, rid: int) -> None:
    """Remove every index row of resource ``rid`` (before re-indexing, or on delete)."""
