"""Run a :class:`SearchQuery` on SQLite: filters → WHERE, sort + keyset paging, total, includes.

The statement for ``Consent?patient=Patient/1&status=active`` is::

    SELECT r.rid, … FROM resource r
    WHERE r.rtype = ? AND r.deleted = 0
      AND r.rid IN (SELECT i1.rid FROM idx_reference i1 WHERE i1.rtype = ? AND i1.param = ? AND (…))
      AND r.rid IN (SELECT i2.rid FROM idx_token i2 WHERE i2.rtype = ? AND i2.param = ? AND (i2.code = ?))
      AND r.rid > ?                      -- keyset: after the previous page's last row
    ORDER BY r.rid LIMIT 21

Per-parameter conditions are built in :mod:`.search_params`; paging and sort keys in :mod:`.paging`.
"""

from __future__ import annotations

import sqlite3

from fhir_server.fhir.search.ast import Filter, SearchPage, SearchQuery, TokenValue
from fhir_server.store.sqlite.includes import find_includes
from fhir_server.store.sqlite.paging import decode_cursor, encode_cursor, keyset_condition, sort_expression
from fhir_server.store.sqlite.rows import version_from_row
from fhir_server.store.sqlite.search_params import Context, condition, driver_rank

COLUMNS = "r.rid, r.rtype, r.id, r.vid, r.last_updated, r.deleted, r.body"


def where_clause(conn: sqlite3.Connection, query: SearchQuery) -> tuple[str, list[object]]:
    """The WHERE of a query over ``resource r`` (no paging): type, not deleted, every filter.

    When a filter can drive the plan, the type test is written ``+r.rtype`` so that SQLite starts from the
    (selective) index subquery and reaches resources by primary key instead of walking every resource of
    the type; otherwise the type's indexes lead.
    """
    ctx = Context(conn)
    filters = list(query.filters)
    if query.ids:
        filters.append(Filter("_id", "special", tuple(TokenValue(None, i) for i in query.ids)))
    ranks = [driver_rank(f) for f in filters]
    usable = [(r, i) for i, r in enumerate(ranks) if r is not None]
    driver = min(usable)[1] if usable else -1
    plus = "+" if usable else ""
    parts: list[str] = ["r.deleted = 0"]
    args: list[object] = []
    if query.resource_type is not None:
        parts.insert(0, f"{plus}r.rtype = ?")
        args.append(query.resource_type)
    elif query.types:
        parts.insert(0, f"{plus}r.rtype IN ({','.join('?' * len(query.types))})")
        args += list(query.types)
    for i, f in enumerate(filters):
        sql, fargs = condition(ctx, f, query.resource_type, "r", drive=i == driver)
        parts.append(sql)
        args += fargs
    return " AND ".join(parts), args


def explain(conn: sqlite3.Connection, query: SearchQuery) -> list[str]:
    """EXPLAIN QUERY PLAN details of the page statement (tests assert no ``SCAN resource``)."""
    sql, args = _page_sql(conn, query)
    return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()]


def _page_sql(conn: sqlite3.Connection, query: SearchQuery) -> tuple[str, list[object]]:
    where, args = where_clause(conn, query)
    keys = [sort_expression(k, "r") for k in query.sort]
    # Default order: by id within the type (the (rtype, id) unique index walks it; ids are unique per type).
    tail = ["id"] if query.resource_type is not None else ["rtype", "id"]
    order: list[tuple[str, bool]] = [(f"k{i}", k.descending) for i, k in enumerate(query.sort)]
    order += [(c if keys else f"r.{c}", False) for c in tail]
    key_sql = "".join(f", {sql} AS k{i}" for i, (sql, _) in enumerate(keys))
    key_args = [a for _, kargs in keys for a in kargs]
    after, after_args = "1", list[object]()
    if query.cursor:
        after, after_args = keyset_condition(order, decode_cursor(query.cursor, len(order)))
    order_sql = ", ".join(f"{col}{' DESC' if desc else ''}" for col, desc in order)
    if not keys:
        sql = f"SELECT {COLUMNS} FROM resource r WHERE {where} AND {after} ORDER BY {order_sql} LIMIT ?"
        return sql, [*args, *after_args, query.count + 1]
    sql = (f"SELECT * FROM (SELECT {COLUMNS}{key_sql} FROM resource r WHERE {where}) "
           f"WHERE {after} ORDER BY {order_sql} LIMIT ?")
    return sql, [*key_args, *args, *after_args, query.count + 1]


def count(conn: sqlite3.Connection, query: SearchQuery) -> int:
    where, args = where_clause(conn, query)
    return int(conn.execute(f"SELECT count(*) FROM resource r WHERE {where}", args).fetchone()[0])


def run_search(conn: sqlite3.Connection, query: SearchQuery) -> SearchPage:
    """One page of matches (+ includes), the cursor of the next page and the total if asked for."""
    total = None if query.total == "none" else count(conn, query)
    if query.summary == "count" or query.count == 0:
        return SearchPage(matches=[], total=total)
    sql, args = _page_sql(conn, query)
    rows = conn.execute(sql, args).fetchall()
    more = len(rows) > query.count
    rows = rows[: query.count]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        tail = [last[2]] if query.resource_type is not None else [last[1], last[2]]
        next_cursor = encode_cursor([*last[7:], *tail])
    page = [tuple(r[:7]) for r in rows]
    return SearchPage(
        matches=[version_from_row(r[1:7], "PUT") for r in rows],
        includes=find_includes(conn, query, page),
        next_cursor=next_cursor,
        total=total,
    )
