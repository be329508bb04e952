"""``_include`` and ``_revinclude`` (with ``:iterate``) for a page of matches.

Includes follow ``idx_reference`` rows from the page (by ``rid``); revincludes find the resources whose
``idx_reference`` rows point at the page through the search index ``(rtype, param, ref_id, …)``: every
reverse look-up names its source type and parameters — ``Source:*`` enumerates the reference parameters of
Source, ``*`` those of every type, one query per source type. (There is no index led by the target: it cost
three random B-tree inserts per Consent at ingest, issue #16, for these two rare wildcard forms.)
``:iterate`` repeats on what the previous round added, up to :data:`MAX_ROUNDS` rounds and
:data:`MAX_INCLUDES` resources.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from fhir_server.fhir.search import definitions
from fhir_server.fhir.search.ast import Include, SearchQuery
from fhir_server.store.base import ResourceVersion
from fhir_server.store.sqlite.rows import version_from_row

MAX_ROUNDS = 4
MAX_INCLUDES = 1000
CHUNK = 400
COLUMNS = "r.rid, r.rtype, r.id, r.vid, r.last_updated, r.deleted, r.body"

Row = tuple[object, ...]  # (rid, rtype, id, vid, last_updated, deleted, body)


def _chunks(items: list[object]) -> Iterable[list[object]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _forward(conn: sqlite3.Connection, inc: Include, frontier: list[Row]) -> list[Row]:
    rids: list[object] = [r[0] for r in frontier if inc.source_type in (None, r[1])]
    found: list[Row] = []
    for chunk in _chunks(rids):
        where, args = [f"x.rid IN ({','.join('?' * len(chunk))})", "x.ref_type IS NOT NULL"], list(chunk)
        if inc.param is not None:
            where.append("x.param = ?")
            args.append(inc.param)
        else:
            where.append("instr(x.param, ':') = 0")
        if inc.target_type is not None:
            where.append("x.ref_type = ?")
            args.append(inc.target_type)
        targets = f"SELECT x.ref_type, x.ref_id FROM idx_reference x WHERE {' AND '.join(where)}"
        found += conn.execute(
            f"SELECT {COLUMNS} FROM resource r WHERE r.deleted = 0 AND (r.rtype, r.id) IN ({targets})", args
        ).fetchall()
    return found


def reverse_sql(params: int, ids: int) -> str:
    """Resources of one source type whose ``params`` reference parameters point at ``ids`` targets of one type;
    arguments: source type, the parameter codes, target type, the target ids."""
    sources = (f"SELECT x.rid FROM idx_reference x WHERE x.rtype = ? AND x.param IN ({','.join('?' * params)})"
               f" AND x.ref_id IN ({','.join('?' * ids)}) AND x.ref_type = ?")
    return f"SELECT {COLUMNS} FROM resource r WHERE r.deleted = 0 AND r.rid IN ({sources})"


def reverse_sources(inc: Include) -> list[tuple[str, tuple[str, ...]]]:
    """(source type, its reference parameter codes) a ``_revinclude`` looks through."""
    types = [inc.source_type] if inc.source_type is not None else sorted(definitions.resource_types())
    out = []
    for source in types:
        codes = (inc.param,) if inc.param is not None else tuple(p.code for p in definitions.reference_params(source))
        if codes:
            out.append((source, codes))
    return out


def _reverse(conn: sqlite3.Connection, inc: Include, frontier: list[Row]) -> list[Row]:
    by_type: dict[object, list[object]] = {}
    for r in frontier:
        if inc.target_type in (None, r[1]):
            by_type.setdefault(r[1], []).append(r[2])
    found: list[Row] = []
    sources = reverse_sources(inc) if by_type else []
    for rtype, ids in by_type.items():
        for chunk in _chunks(ids):
            for source, codes in sources:
                found += conn.execute(reverse_sql(len(codes), len(chunk)), [source, *codes, *chunk, rtype]).fetchall()
    return found


def find_includes(conn: sqlite3.Connection, query: SearchQuery, page: list[Row]
                  ) -> tuple[list[ResourceVersion], bool]:
    """Resources to add with ``search.mode = include`` (never one of the matches, never twice), and whether the
    limits cut them short."""
    if not query.includes and not query.revincludes:
        return [], False
    seen = {r[0] for r in page}
    out: list[Row] = []
    frontier = page
    truncated = False
    for round_ in range(MAX_ROUNDS + 1):
        if round_ == MAX_ROUNDS:  # one more round only to learn whether anything was left out
            truncated = any(inc.iterate for inc in (*query.includes, *query.revincludes)) and bool(
                [r for inc in query.includes if inc.iterate for r in _forward(conn, inc, frontier)
                 if r[0] not in seen]
                + [r for inc in query.revincludes if inc.iterate for r in _reverse(conn, inc, frontier)
                   if r[0] not in seen])
            break
        fresh: list[Row] = []
        for inc in query.includes:
            if round_ == 0 or inc.iterate:
                fresh += _forward(conn, inc, frontier)
        for inc in query.revincludes:
            if round_ == 0 or inc.iterate:
                fresh += _reverse(conn, inc, frontier)
        new: list[Row] = []
        for row in fresh:
            if row[0] not in seen:
                if len(out) + len(new) >= MAX_INCLUDES:
                    truncated = True
                    break
                seen.add(row[0])
                new.append(row)
        out += new
        if not new or truncated:
            break
        frontier = new
    return [version_from_row(r[1:], "PUT") for r in out], truncated
