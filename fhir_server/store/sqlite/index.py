"""SQLite index tables: one per search-parameter type, every one keyed by ``resource.rid``.

Each table has two indexes: a *search* index led by ``(rtype, param, <value columns>)`` so a parameter's
subquery is an index range, and an *rid* index led by ``(rid, param, …)`` for correlated lookups (sorting,
composite joins, includes) and for ``delete_index``. Reverse look-ups (``_revinclude``, ``_has``, ``_list``)
name the source type and parameter, so the search index serves them too; an index led by the target would
cost three random inserts per Consent at ingest (issue #16).

Composite components reuse the typed tables with ``param = '<composite>:<position>'`` and ``grp`` = the
context element's number, so a code and a value only match together when they come from one element.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from fhir_server.fhir.search.index import IndexRows

# table name and value columns per parameter type (the first columns are always rid, rtype, param, grp)
TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "string": ("idx_string", ("value", "exact")),
    "token": ("idx_token", ("system", "code", "text")),
    "reference": ("idx_reference", ("ref_type", "ref_id", "url")),
    "date": ("idx_date", ("low", "high")),
    "number": ("idx_number", ("low", "high")),
    "quantity": ("idx_quantity", ("system", "code", "unit", "low", "high")),
    "uri": ("idx_uri", ("uri",)),
}

INDEX_DDL = """
-- Live resources of a type in id order: the default search order, and count(*) without reading bodies.
CREATE INDEX IF NOT EXISTS resource_type_live ON resource (rtype, deleted, id);
CREATE TABLE IF NOT EXISTS idx_string (
    rid INTEGER NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER NOT NULL DEFAULT 0,
    value TEXT NOT NULL, exact TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_string_search ON idx_string (rtype, param, value, rid);
CREATE INDEX IF NOT EXISTS idx_string_rid ON idx_string (rid, param, value);

CREATE TABLE IF NOT EXISTS idx_token (
    rid INTEGER NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER NOT NULL DEFAULT 0,
    system TEXT, code TEXT, text TEXT);
CREATE INDEX IF NOT EXISTS idx_token_search ON idx_token (rtype, param, code, system, rid);
CREATE INDEX IF NOT EXISTS idx_token_rid ON idx_token (rid, param, code);

CREATE TABLE IF NOT EXISTS idx_reference (
    rid INTEGER NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER NOT NULL DEFAULT 0,
    ref_type TEXT, ref_id TEXT, url TEXT);
CREATE INDEX IF NOT EXISTS idx_reference_search ON idx_reference (rtype, param, ref_id, ref_type, rid);
-- No index led by the target (ref_type, ref_id): _revinclude names source types and parameters (includes.py).
DROP INDEX IF EXISTS idx_reference_target;
CREATE INDEX IF NOT EXISTS idx_reference_rid ON idx_reference (rid, param, ref_type, ref_id);

CREATE TABLE IF NOT EXISTS idx_date (
    rid INTEGER NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER NOT NULL DEFAULT 0,
    low TEXT NOT NULL, high TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_date_search ON idx_date (rtype, param, low, high, rid);
-- ge/gt/eb compare the high end: without this a selective `period=ge2031` reads every row of the parameter.
CREATE INDEX IF NOT EXISTS idx_date_high ON idx_date (rtype, param, high, rid);
CREATE INDEX IF NOT EXISTS idx_date_rid ON idx_date (rid, param, low, high);

CREATE TABLE IF NOT EXISTS idx_number (
    rid INTEGER NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER NOT NULL DEFAULT 0,
    low REAL NOT NULL, high REAL NOT NULL);
CREATE INDEX IF NOT EXISTS idx_number_search ON idx_number (rtype, param, low, high, rid);
CREATE INDEX IF NOT EXISTS idx_number_rid ON idx_number (rid, param, low, high);

CREATE TABLE IF NOT EXISTS idx_quantity (
    rid INTEGER NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER NOT NULL DEFAULT 0,
    system TEXT, code TEXT, unit TEXT, low REAL NOT NULL, high REAL NOT NULL);
CREATE INDEX IF NOT EXISTS idx_quantity_search ON idx_quantity (rtype, param, low, high, code, system, unit, rid);
CREATE INDEX IF NOT EXISTS idx_quantity_rid ON idx_quantity (rid, param, low, high);

CREATE TABLE IF NOT EXISTS idx_uri (
    rid INTEGER NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER NOT NULL DEFAULT 0,
    uri TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_uri_search ON idx_uri (rtype, param, uri, rid);
CREATE INDEX IF NOT EXISTS idx_uri_rid ON idx_uri (rid, param, uri);
"""


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(("rid", "rtype", "param", "grp", *columns))
    marks = ", ".join("?" * (4 + len(columns)))
    return f"INSERT INTO {table} ({names}) VALUES ({marks})"


_INSERT = {ptype: _insert_sql(table, cols) for ptype, (table, cols) in TABLES.items()}


def insert_index(conn: sqlite3.Connection, rid: int, rtype: str, rows: IndexRows) -> int:
    """Write the index rows of resource ``rid``; returns how many rows were written."""
    written = 0
    for ptype in TABLES:
        typed: list[tuple[Any, ...]] = getattr(rows, ptype)
        batch = [(rid, rtype, row[0], 0, *row[1:]) for row in typed]
        batch += [(rid, rtype, f"{code}:{pos}", grp, *tail)
                  for code, grp, pos, ctype, tail in rows.composite if ctype == ptype]
        if batch:
            conn.executemany(_INSERT[ptype], batch)
            written += len(batch)
    return written


def delete_index(conn: sqlite3.Connection, rid: int) -> None:
    """Remove every index row of resource ``rid`` (before re-indexing, or on delete)."""
    for table, _ in TABLES.values():
        conn.execute(f"DELETE FROM {table} WHERE rid = ?", (rid,))
