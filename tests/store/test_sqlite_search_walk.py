"""The SQLite planner's choice between driving by a filter's index range and walking the type's id order.

Thresholds are lowered (``PROBE``, ``WALK_ROWS``) so that a small data set exercises every branch: walk, walk
that falls back to driving, driving by the smallest probed filter, and the default total of broad searches.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from fhir_server.fhir import jsonio
from fhir_server.fhir.search.index import extract
from fhir_server.fhir.search.parse import parse_search
from fhir_server.store.base import ResourceVersion
from fhir_server.store.sqlite import SQLiteStore
from fhir_server.store.sqlite import search as sqlite_search
from fhir_server.store.sqlite.search import choose_plan, explain, run_search

STATUSES = ["active", "active", "active", "inactive", "draft"]


def consent(i: int) -> dict[str, Any]:
    return {"resourceType": "Consent", "id": f"c{i:03d}", "status": STATUSES[i % 5],
            "patient": {"reference": f"Patient/p{i % 7}"},
            "provision": {"period": {"start": f"20{10 + i % 15}-01-01", "end": f"20{12 + i % 15}-01-01"}}}


async def _load(path: str) -> SQLiteStore:
    store = SQLiteStore(path)
    await store.open()
    async with store.transaction() as tx:
        for i in range(120):
            r = consent(i)
            await tx.put(ResourceVersion("Consent", r["id"], 1, "2025-01-01T00:00:00.000Z", False,
                                         jsonio.dumps(r)), extract(r))
        await tx.put(ResourceVersion("Consent", "c005", 2, "2025-01-02T00:00:00.000Z", True, None), None)
    return store


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    store = asyncio.run(_load(str(tmp_path_factory.mktemp("walk") / "walk.db")))
    yield store.reader
    asyncio.run(store.close())


def expected(pred: Any) -> list[str]:
    return sorted(c["id"] for c in map(consent, range(120)) if c["id"] != "c005" and pred(c))


def all_pages(db: sqlite3.Connection, pairs: list[tuple[str, str]]) -> list[str]:
    query = parse_search("Consent", [*pairs, ("_count", "7")])
    ids: list[str] = []
    while True:
        page = run_search(db, query)
        ids += [m.id for m in page.matches]
        if page.next_cursor is None:
            return ids
        query = query.with_cursor(page.next_cursor)


QUERIES: list[tuple[list[tuple[str, str]], Any]] = [
    ([("status", "active")], lambda c: c["status"] == "active"),
    ([("status", "draft")], lambda c: c["status"] == "draft"),
    ([("period", "ge2020-01-01")], lambda c: c["provision"]["period"]["end"] >= "2020"),
    ([("status", "active"), ("period", "ge2020-01-01")],
     lambda c: c["status"] == "active" and c["provision"]["period"]["end"] >= "2020"),
    ([("status", "draft"), ("patient", "Patient/p3")],
     lambda c: c["status"] == "draft" and c["patient"]["reference"] == "Patient/p3"),
]


@pytest.mark.parametrize(("probe", "walk_rows"), [(10**9, 50), (3, 50), (3, 1)],
                         ids=["drive", "walk", "walk-falls-back"])
@pytest.mark.parametrize(("pairs", "pred"), QUERIES, ids=[str(q[0]) for q in QUERIES])
def test_every_plan_pages_through_the_same_matches(db: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch,
                                                   probe: int, walk_rows: int, pairs: list[tuple[str, str]],
                                                   pred: Any) -> None:
    monkeypatch.setattr(sqlite_search, "PROBE", probe)
    monkeypatch.setattr(sqlite_search, "WALK_ROWS", walk_rows)
    assert all_pages(db, pairs) == expected(pred)


def test_a_broad_filter_walks_the_id_order_without_sorting(db: sqlite3.Connection,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_search, "PROBE", 3)
    query = parse_search("Consent", [("status", "active")])
    assert choose_plan(db, query).walk
    plan = explain(db, query)
    assert plan[0].startswith("SEARCH r USING INDEX resource_type_live (rtype=? AND deleted=?"), plan
    assert not [s for s in plan if s.startswith("SCAN") or "TEMP B-TREE" in s], plan


def test_a_selective_filter_still_drives(db: sqlite3.Connection) -> None:
    assert not choose_plan(db, parse_search("Consent", [("status", "active")])).walk  # 72 < PROBE
    plan = explain(db, parse_search("Consent", [("patient", "Patient/p1")]))
    assert plan[0] == "SEARCH r USING INTEGER PRIMARY KEY (rowid=?)"


def test_the_smallest_probed_filter_drives(db: sqlite3.Connection) -> None:
    # status (token) ranks before period (date), but period=ge2026 has fewer index rows
    query = parse_search("Consent", [("status", "active"), ("period", "ge2026-06-01")])
    assert choose_plan(db, query).driver == 1
    plan = explain(db, query)
    assert any("idx_date_high" in s for s in plan), plan


def test_date_ge_is_an_index_range_on_the_high_end(db: sqlite3.Connection) -> None:
    plan = explain(db, parse_search("Consent", [("period", "ge2026-06-01")]))
    assert any("idx_date_high (rtype=? AND param=? AND high>?)" in s for s in plan), plan


def test_default_total_is_omitted_only_for_broad_searches(db: sqlite3.Connection,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    actives = len(expected(lambda c: c["status"] == "active"))
    assert run_search(db, parse_search("Consent", [("status", "active")])).total == actives
    monkeypatch.setattr(sqlite_search, "PROBE", 3)
    assert run_search(db, parse_search("Consent", [("status", "active")])).total is None
    assert run_search(db, parse_search("Consent", [])).total is None
    for pairs in ([("_total", "accurate")], [("_total", "estimate")], [("_summary", "count")]):
        assert run_search(db, parse_search("Consent", [("status", "active"), *pairs])).total == actives
    assert run_search(db, parse_search("Consent", [("_total", "accurate")])).total == 119
    assert run_search(db, parse_search("Consent", [("status", "active"), ("_total", "none")])).total is None
    # a broad filter whose matches all fit on the first page still says how many
    assert run_search(db, parse_search("Consent", [("status", "draft"), ("_count", "100")])).total == 24
    # a selective one (under PROBE matches) is counted even when they span pages
    monkeypatch.setattr(sqlite_search, "PROBE", 20)
    assert run_search(db, parse_search("Consent", [("patient", "Patient/p1"), ("_count", "2")])).total == 17
