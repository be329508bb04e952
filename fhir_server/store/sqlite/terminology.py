"""Token ``:in`` / ``:not-in`` / ``:below`` / ``:above`` in SQL: the expansion is the pure
:mod:`fhir_server.fhir.search.terminology`; here ValueSets and CodeSystems are found by their ``url`` search
parameter (``idx_uri``) and the resulting (system, code) pairs become SQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from fhir_server.fhir import jsonio
from fhir_server.fhir.search import terminology
from fhir_server.fhir.search.ast import TokenValue
from fhir_server.fhir.search.terminology import Pair


def _by_url(conn: sqlite3.Connection, rtype: str, url: str) -> dict[str, Any] | None:
    url = url.split("|", 1)[0]
    row = conn.execute(
        "SELECT r.body FROM resource r WHERE r.rtype = ? AND r.deleted = 0 AND r.rid IN "
        "(SELECT u.rid FROM idx_uri u WHERE u.rtype = ? AND u.param = 'url' AND u.uri = ?) "
        "ORDER BY r.last_updated DESC LIMIT 1",
        (rtype, rtype, url),
    ).fetchone()
    return None if row is None or row[0] is None else jsonio.loads(row[0])  # type: ignore[no-any-return]


def _pairs_sql(pairs: set[Pair], p: str) -> tuple[str, list[object]]:
    if not pairs:
        return "0", []
    ors: list[str] = []
    args: list[object] = []
    by_system: dict[str | None, list[str]] = {}
    for system, code in pairs:
        if code is None:
            ors.append(f"{p}system = ?")
            args.append(system)
        else:
            by_system.setdefault(system, []).append(code)
    for system, codes in by_system.items():
        marks = ",".join("?" * len(codes))
        if system is None:
            ors.append(f"{p}code IN ({marks})")
            args += codes
        else:
            ors.append(f"({p}system = ? AND {p}code IN ({marks}))")
            args += [system, *codes]
    return "(" + " OR ".join(ors) + ")", args


def _fetch(conn: sqlite3.Connection) -> Callable[[str, str], dict[str, Any] | None]:
    return lambda rtype, url: _by_url(conn, rtype, url)


def in_value_set(conn: sqlite3.Connection, name: str, url: str, p: str) -> tuple[str, list[object]]:
    return _pairs_sql(terminology.value_set_pairs(_fetch(conn), name, "in", url), p)


def subsumption(conn: sqlite3.Connection, name: str, v: TokenValue, modifier: str, p: str
                ) -> tuple[str, list[object]]:
    """``:below`` (the code and its descendants) / ``:above`` (the code and its ancestors)."""
    return _pairs_sql(terminology.subsumption_pairs(_fetch(conn), name, modifier, v), p)
