"""Run a :class:`SearchQuery` on SQLite: filters → WHERE, sort + keyset paging, total, includes.

The statement for ``Consent?patient=Patient/1&status=active`` is::

    SELECT r.rid, … FROM resource r
    WHERE +r.rtype = ? AND r.deleted = 0
      AND r.rid IN (SELECT i1.rid FROM idx_reference i1 WHERE i1.rtype = ? AND i1.param = ? AND (…))
      AND EXISTS (SELECT 1 FROM idx_token i2 WHERE i2.rid = r.rid AND i2.param = ? AND (i2.code = ?))
      AND r.id > ?                       -- keyset: after the previous page's last row
    ORDER BY r.id LIMIT 21

Two plans for a type search without ``_sort``:

- *drive*: the most selective filter's index range yields candidates (above); every match is collected and
  sorted by id, so its cost grows with the number of matches — right for a selective filter.
- *walk*: the type's id order (index ``resource_type_live``) is walked from the cursor and every filter is an
  ``EXISTS`` probe per row, ``LIMIT 21`` — cost grows with rows-read-per-match, the same on page 1 and 500;
  right for a broad filter (``Consent?status=active``).

The choice is made per query by ``LIMIT``-bounded counts of the drivable filters' index ranges (at most
:data:`PROBE` index entries each): the smallest under :data:`PROBE` drives. When every one is broad the walk
is tried on a bounded window of the id order (:data:`WALK_ROWS` rows per row of the page); if the window does
not fill the page (the filters together are selective after all) the drive plan answers.

Totals: ``_total=accurate|estimate`` (or ``_summary=count``) always count; ``_total=none`` never does. When
``_total`` is absent the spec lets the server choose: we give the accurate total when it is cheap — at most
:data:`PROBE` matches (a bounded count), or the whole result fits on the first page — and omit
``Bundle.total`` for broad searches, whose count is O(matches).

Per-parameter conditions are built in :mod:`.search_params`; paging and sort keys in :mod:`.paging`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from fhir_server.fhir.search.ast import (
    CHEAP_TOTAL,
    Filter,
    Has,
    SearchPage,
    SearchQuery,
    TokenValue,
    includes_truncated,
)
from fhir_server.store.sqlite.includes import MAX_INCLUDES, find_includes
from fhir_server.store.sqlite.paging import decode_cursor, encode_cursor, keyset_condition, sort_expression
from fhir_server.store.sqlite.rows import version_from_row
from fhir_server.store.sqlite.search_params import Context, candidates, condition, driver_rank

COLUMNS = "r.rid, r.rtype, r.id, r.vid, r.last_updated, r.deleted, r.body"
PROBE = CHEAP_TOTAL  # 1000: a driving filter with at least this many matches is broad: walk the id order instead
WALK_ROWS = 50  # rows of the id order a walk may read per row of the page before falling back to driving


def _filters(query: SearchQuery) -> list[Filter | Has]:
    filters = list(query.filters)
    if query.ids:
        filters.append(Filter("_id", "special", tuple(TokenValue(None, i) for i in query.ids)))
    return filters


def _ranked(filters: list[Filter | Has]) -> list[int]:
    """Indexes of the filters that can drive, likely most selective first (by parameter type)."""
    return [i for _, i in sorted((r, i) for i, r in enumerate(driver_rank(f) for f in filters) if r is not None)]


@dataclass(frozen=True, slots=True)
class Plan:
    driver: int  # index in _filters(query) of the filter whose index range yields candidates; -1: none
    walk: bool = False  # try a bounded walk of the type's id order first (every driver candidate is broad)


def choose_plan(conn: sqlite3.Connection, query: SearchQuery) -> Plan:
    """The plan of a page of ``query`` (see the module doc).

    Drivable filters that are one index range are probed in rank order, each counting at most the smallest
    count so far (so a selective first filter makes the rest free); the smallest drives when it is under
    :data:`PROBE`. A first-ranked chain or composite drives as before, unprobed.
    """
    filters = _filters(query)
    ranked = _ranked(filters)
    if not ranked:
        return Plan(-1)
    rtype = query.resource_type
    if rtype is None:
        return Plan(ranked[0])
    ctx = Context(conn)
    best, limit = -1, PROBE
    for i in ranked:
        sub = candidates(ctx, filters[i], rtype)
        if sub is None:
            if i == ranked[0]:
                return Plan(i)
            continue
        n = _probe(conn, sub, limit)
        if n < limit:
            best, limit = i, n
            if n == 0:
                break
    if best >= 0:
        return Plan(best)
    return Plan(ranked[0], walk=not query.sort)


def where_clause(conn: sqlite3.Connection, query: SearchQuery, driver: int | None = None
                 ) -> tuple[str, list[object]]:
    """The WHERE of a query over ``resource r`` (no paging): type, not deleted, every filter.

    When a filter drives the plan (``driver``: its index in the filters; None: the first-ranked one), the
    type test is written ``+r.rtype`` so that SQLite starts from the (selective) index subquery and reaches
    resources by primary key instead of walking every resource of the type; with no driver (-1: the walk)
    the type's indexes lead and every filter is a per-row probe.
    """
    ctx = Context(conn)
    filters = _filters(query)
    if driver is None:
        ranked = _ranked(filters)
        driver = ranked[0] if ranked else -1
    plus = "+" if driver >= 0 else ""
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


def _probe(conn: sqlite3.Connection, sub: tuple[str, list[object]], limit: int) -> int:
    """How many rows the index range yields, counting at most ``limit``."""
    sql, args = sub
    return int(conn.execute(f"SELECT count(*) FROM ({sql} LIMIT ?)", [*args, limit]).fetchone()[0])


def explain(conn: sqlite3.Connection, query: SearchQuery, walk: bool | None = None) -> list[str]:
    """EXPLAIN QUERY PLAN details of the page statement (tests assert no ``SCAN resource``).

    ``walk``: the walk plan (True), the drive plan (False) or the plan the query would choose (None).
    """
    plan = choose_plan(conn, query)
    if walk is None:
        walk = plan.walk
    sql, args = _walk_sql(conn, query, None) if walk else _page_sql(conn, query, plan.driver)
    return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()]


def _page_sql(conn: sqlite3.Connection, query: SearchQuery, driver: int | None = None
              ) -> tuple[str, list[object]]:
    where, args = where_clause(conn, query, driver)
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


def _walk_sql(conn: sqlite3.Connection, query: SearchQuery, bound: str | None) -> tuple[str, list[object]]:
    """A page by walking the type's id order from the cursor, up to the id ``bound`` (inclusive) if given."""
    where, args = where_clause(conn, query, driver=-1)
    after, after_args = "1", list[object]()
    if query.cursor:
        after, after_args = keyset_condition([("r.id", False)], decode_cursor(query.cursor, 1))
    upto, upto_args = ("r.id <= ?", [bound]) if bound is not None else ("1", [])
    sql = f"SELECT {COLUMNS} FROM resource r WHERE {where} AND {after} AND {upto} ORDER BY r.id LIMIT ?"
    return sql, [*args, *after_args, *upto_args, query.count + 1]


def _walk(conn: sqlite3.Connection, query: SearchQuery) -> list[tuple[object, ...]] | None:
    """The page's rows by a bounded walk, or None when the window of the id order held too few matches."""
    after = decode_cursor(query.cursor, 1)[0] if query.cursor else ""
    window = WALK_ROWS * (query.count + 1)
    found = conn.execute(
        "SELECT id FROM resource WHERE rtype = ? AND deleted = 0 AND id > ? ORDER BY id LIMIT 1 OFFSET ?",
        (query.resource_type, after, window - 1)).fetchone()
    bound = None if found is None else str(found[0])  # None: fewer rows than the window remain — walk them all
    sql, args = _walk_sql(conn, query, bound)
    rows = conn.execute(sql, args).fetchall()
    if len(rows) > query.count or bound is None:
        return rows
    return None


def count(conn: sqlite3.Connection, query: SearchQuery, limit: int | None = None, driver: int | None = None
          ) -> int:
    """How many resources match; with ``limit``, counting stops there (a bounded count)."""
    filters = _filters(query)
    if len(filters) == 1 and limit is None and query.resource_type is not None:
        sub = candidates(Context(conn), filters[0], query.resource_type)
        if sub is not None:
            # One filter: its index rows alone answer (they exist for live resources only); never the bodies.
            sql, args = sub
            return int(conn.execute(f"SELECT count(DISTINCT rid) FROM ({sql})", args).fetchone()[0])
    where, args = where_clause(conn, query, driver)
    if limit is not None:
        sql = f"SELECT count(*) FROM (SELECT 1 FROM resource r WHERE {where} LIMIT ?)"
        return int(conn.execute(sql, [*args, limit]).fetchone()[0])
    return int(conn.execute(f"SELECT count(*) FROM resource r WHERE {where}", args).fetchone()[0])


def _cheap_total(conn: sqlite3.Connection, query: SearchQuery, plan: Plan,
                 page: list[tuple[object, ...]], more: bool) -> int | None:
    """The accurate total when it costs at most a bounded count; None for a broad search."""
    if not more and query.cursor is None:
        return len(page)  # everything is on this page
    if plan.walk:
        return None  # every driving filter has ≥ PROBE matches
    n = count(conn, query, limit=PROBE + 1, driver=plan.driver)
    return n if n <= PROBE else None


def run_search(conn: sqlite3.Connection, query: SearchQuery) -> SearchPage:
    """One page of matches (+ includes), the cursor of the next page and the total if asked for."""
    wanted = query.total_wanted()
    plan = choose_plan(conn, query)
    total = count(conn, query, driver=plan.driver) if wanted else None
    if query.summary == "count" or query.count == 0:
        if wanted is None:
            total = _cheap_total(conn, query, plan, [], True)
        return SearchPage(matches=[], total=total)
    rows = _walk(conn, query) if plan.walk else None
    if rows is None:
        sql, args = _page_sql(conn, query, plan.driver)
        rows = conn.execute(sql, args).fetchall()
    more = len(rows) > query.count
    rows = rows[: query.count]
    if wanted is None:
        total = _cheap_total(conn, query, plan, rows, more)
    next_cursor = None
    if more and rows:
        last = rows[-1]
        tail = [last[2]] if query.resource_type is not None else [last[1], last[2]]
        next_cursor = encode_cursor([*last[7:], *tail])
    page = [tuple(r[:7]) for r in rows]
    included, truncated = find_includes(conn, query, page)
    return SearchPage(
        matches=[version_from_row(r[1:7], "PUT") for r in rows],
        includes=included,
        next_cursor=next_cursor,
        total=total,
        warnings=[includes_truncated(MAX_INCLUDES)] if truncated else [],
    )
