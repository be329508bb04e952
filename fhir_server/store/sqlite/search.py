"""Compile a search AST to SQL (placeholder: only ``_id`` until the search issue lands)."""

from __future__ import annotations

import sqlite3

from fhir_server.fhir.search.ast import SearchPage, SearchQuery
from fhir_server.store.sqlite.rows import version_from_row

COLUMNS = "rtype, id, vid, last_updated, deleted, body"


def run_search(conn: sqlite3.Connection, query: SearchQuery) -> SearchPage:
    sql = f"SELECT rid, {COLUMNS} FROM resource WHERE rtype = ? AND deleted = 0"
    args: list[object] = [query.resource_type]
    if query.ids:
        sql += f" AND id IN ({','.join('?' * len(query.ids))})"
        args += list(query.ids)
    if query.cursor:
        sql += " AND rid > ?"
        args.append(int(query.cursor))
    sql += " ORDER BY rid LIMIT ?"
    args.append(query.count + 1)
    rows = conn.execute(sql, args).fetchall()
    more = len(rows) > query.count
    rows = rows[: query.count]
    return SearchPage(
        matches=[version_from_row(r[1:], "PUT") for r in rows],
        next_cursor=str(rows[-1][0]) if more else None,
    )
