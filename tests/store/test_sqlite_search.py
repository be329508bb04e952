"""Search behaviour on the SQLite store: modifiers, prefixes, chains, _has, includes, sort, paging, terminology."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from fhir_server.fhir import jsonio
from fhir_server.fhir.outcome import InvalidSearchParameter
from fhir_server.fhir.search.index import extract
from fhir_server.fhir.search.parse import parse_search
from fhir_server.store.base import ResourceVersion
from fhir_server.store.sqlite import SQLiteStore
from fhir_server.store.sqlite.search import run_search
from tests.fhir.search.resources import RESOURCES

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


def consent(i: int, **extra: Any) -> dict[str, Any]:
    body = {"resourceType": "Consent", "id": f"k{i:02d}", "status": ["active", "draft", "inactive"][i % 3],
            "patient": {"reference": f"Patient/q{i % 4}"}, "dateTime": f"2024-01-{i + 1:02d}",
            "provision": {"purpose": [{"system": ACT, "code": ["TREAT", "ETREAT", "HPAYMT"][i % 3]}]}}
    return body | extra


EXTRA: list[dict[str, Any]] = [
    *[consent(i) for i in range(30)],
    *[{"resourceType": "Patient", "id": f"q{i}", "name": [{"family": f"Fam{i}", "given": ["Zoë" if i else "Al_%"]}],
       "birthDate": f"19{70 + i}", "managingOrganization": {"reference": "Organization/o1"}} for i in range(4)],
    {"resourceType": "List", "id": "list1", "status": "current", "mode": "working",
     "entry": [{"item": {"reference": "Consent/k01"}}, {"item": {"reference": "Consent/k02"}}]},
    {"resourceType": "CodeSystem", "id": "cs", "url": ACT, "status": "active", "content": "fragment",
     "concept": [{"code": "TREAT", "concept": [{"code": "ETREAT"}]}, {"code": "HPAYMT"}]},
    {"resourceType": "ValueSet", "id": "vs", "url": "http://example.org/vs/treat", "status": "active",
     "compose": {"include": [{"system": ACT, "concept": [{"code": "TREAT"}]}]}},
    {"resourceType": "ValueSet", "id": "vs2", "url": "http://example.org/vs/treat-isa", "status": "active",
     "compose": {"include": [{"system": ACT, "filter": [{"property": "concept", "op": "is-a", "value": "TREAT"}]}]}},
    {"resourceType": "Consent", "id": "gone", "status": "active", "patient": {"reference": "Patient/q0"}},
]


async def _load(path: str) -> SQLiteStore:
    store = SQLiteStore(path)
    await store.open()
    async with store.transaction() as tx:
        for r in [*RESOURCES.values(), *EXTRA]:
            await tx.put(ResourceVersion(r["resourceType"], r["id"], 1, "2025-01-01T00:00:00.000Z", False,
                                         jsonio.dumps(r)), extract(r))
        await tx.put(ResourceVersion("Consent", "gone", 2, "2025-01-02T00:00:00.000Z", True, None), None)
    return store


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    store = asyncio.run(_load(str(tmp_path_factory.mktemp("search") / "search.db")))
    yield store.reader
    asyncio.run(store.close())


def ids(db: sqlite3.Connection, rtype: str | None, *pairs: tuple[str, str]) -> list[str]:
    return sorted(m.id for m in run_search(db, parse_search(rtype, list(pairs))).matches)


K = [f"k{i:02d}" for i in range(30)]

QUERIES = [
    ("Patient", [("name", "zoe")], ["q1", "q2", "q3"]),
    ("Patient", [("name:exact", "Zoë")], ["q1", "q2", "q3"]),
    ("Patient", [("name:exact", "zoe")], []),
    ("Patient", [("given:contains", "l_%")], ["q0"]),
    ("Patient", [("given:contains", "_")], ["q0"]),
    ("Patient", [("given:contains", "%")], ["q0"]),
    ("Patient", [("family", "fam1,fam2")], ["q1", "q2"]),
    ("Patient", [("birthdate", "ge1972")], ["q2", "q3"]),
    ("Patient", [("birthdate", "gt1972")], ["q3"]),
    ("Patient", [("birthdate", "lt1971")], ["p1", "q0"]),
    ("Patient", [("birthdate", "le1971")], ["p1", "q0", "q1"]),
    ("Patient", [("birthdate", "ne1971")], ["p1", "q0", "q2", "q3"]),
    ("Patient", [("birthdate", "sa1971-06")], ["q2", "q3"]),
    ("Patient", [("birthdate", "eb1971-06")], ["p1", "q0"]),
    ("Patient", [("birthdate", "ge1971"), ("birthdate", "lt1973")], ["q1", "q2"]),
    ("Patient", [("birthdate:missing", "true")], []),
    ("Consent", [("status", "draft"), ("patient", "Patient/q1")], ["k01", "k13", "k25"]),
    ("Consent", [("status:not", "active"), ("patient", "q0")], ["k04", "k08", "k16", "k20", "k28"]),
    ("Consent", [("date", "2024-01"), ("_count", "100"), ("patient", "q0")], ["k00", "k04", "k08", "k12",
                                                                              "k16", "k20", "k24", "k28"]),
    ("Consent", [("date", "ap2024-01-10"), ("patient", "q1")], ["k01", "k05", "k09", "k13", "k17", "k21", "k25",
                                                                 "k29"]),
    ("Consent", [("purpose:in", "http://example.org/vs/treat"), ("patient", "q0")], ["k00", "k12", "k24"]),
    ("Consent", [("purpose:not-in", "http://example.org/vs/treat"), ("patient", "q0")],
     ["k04", "k08", "k16", "k20", "k28"]),
    ("Consent", [("purpose:below", f"{ACT}|TREAT"), ("patient", "q0")],
     ["k00", "k04", "k12", "k16", "k24", "k28"]),
    ("Consent", [("purpose:in", "http://example.org/vs/treat-isa"), ("patient", "q0")],
     ["k00", "k04", "k12", "k16", "k24", "k28"]),
    ("Consent", [("purpose:above", f"{ACT}|ETREAT"), ("patient", "q1")],
     ["k01", "k09", "k13", "k21", "k25"]),
    ("Consent", [("patient.name", "fam3")], ["k03", "k07", "k11", "k15", "k19", "k23", "k27"]),
    ("Consent", [("patient.organization.name", "acme"), ("status", "inactive"), ("_count", "100")],
     ["k02", "k05", "k08", "k11", "k14", "k17", "k20", "k23", "k26", "k29"]),
    ("Consent", [("patient:Patient.birthdate", "1973")], ["k03", "k07", "k11", "k15", "k19", "k23", "k27"]),
    ("Patient", [("_has:Consent:patient:status", "draft")], ["q0", "q1", "q2", "q3"]),
    ("Patient", [("_has:Consent:patient:date", "2024-01-02")], ["q1"]),
    ("Patient", [("_has:Observation:patient:_has:Condition:evidence-detail:code", "35489007")], ["p1"]),
    ("Consent", [("_list", "list1")], ["k01", "k02"]),
    ("Consent", [("_id", "k01,k02,gone")], ["k01", "k02"]),
    ("Consent", [("_lastUpdated", "lt2025")], []),
    ("Consent", [("patient", "q0"), ("status", "active")], ["k00", "k12", "k24"]),
    (None, [("_type", "Consent,Patient"), ("_id", "q1,k01,c1")], ["c1", "k01", "q1"]),
    ("Consent", [("status", "active"), ("_id", "gone")], []),
    ("Patient", [("name", "'; DROP TABLE resource; --")], []),
    ("Patient", [("name", ".*")], []),
]


@pytest.mark.parametrize(("rtype", "pairs", "expected"), QUERIES, ids=[str(q[1]) for q in QUERIES])
def test_searches_match_exactly_the_expected_resources(db: sqlite3.Connection, rtype: str | None,
                                                      pairs: list[tuple[str, str]], expected: list[str]) -> None:
    assert ids(db, rtype, *pairs) == expected


def test_deleted_resources_never_match(db: sqlite3.Connection) -> None:
    assert "gone" not in ids(db, "Consent", ("patient", "q0"), ("_count", "100"))


def test_unknown_value_set_is_a_not_found_error(db: sqlite3.Connection) -> None:
    with pytest.raises(InvalidSearchParameter) as err:
        ids(db, "Consent", ("purpose:in", "http://example.org/nope"))
    assert err.value.code == "not-found"


def test_includes_add_referenced_and_referring_resources_once(db: sqlite3.Connection) -> None:
    q = parse_search("Consent", [("_id", "c1"), ("_include", "Consent:patient"),
                                 ("_include:iterate", "Patient:organization"), ("_revinclude", "Provenance:target")])
    page = run_search(db, q)
    assert [m.id for m in page.matches] == ["c1"]
    assert sorted(i.reference for i in page.includes) == ["Organization/o1", "Patient/p1", "Provenance/pv1"]


def test_include_wildcard_follows_every_reference(db: sqlite3.Connection) -> None:
    page = run_search(db, parse_search("Consent", [("_id", "c1"), ("_include", "Consent:*")]))
    assert {i.reference for i in page.includes} >= {"Patient/p1", "Organization/o1", "Observation/ob1",
                                                    "DocumentReference/d1"}


def test_include_without_iterate_does_not_recurse(db: sqlite3.Connection) -> None:
    page = run_search(db, parse_search("Consent", [("_id", "c1"), ("_include", "Consent:patient"),
                                                   ("_include", "Patient:organization")]))
    assert [i.reference for i in page.includes] == ["Patient/p1"]


def test_sort_by_several_keys_then_id(db: sqlite3.Connection) -> None:
    q = parse_search("Consent", [("patient", "q0,q1"), ("_sort", "status,-date"), ("_count", "100")])
    got = [(m.id) for m in run_search(db, q).matches]
    bodies = {m: c for m, c in ((c["id"], c) for c in EXTRA if c.get("resourceType") == "Consent")}
    expected = sorted(got, key=lambda i: (bodies[i]["status"], [-ord(ch) for ch in bodies[i]["dateTime"]]))
    assert got == expected and len(got) == 16


def test_sort_puts_resources_without_a_value_last(db: sqlite3.Connection) -> None:
    q = parse_search("Patient", [("_sort", "-birthdate")])
    assert [m.id for m in run_search(db, q).matches] == ["q3", "q2", "q1", "q0", "p1"]


@pytest.mark.parametrize("sort", [None, "-date", "status,date", "_lastUpdated", "-_id"])
def test_keyset_pages_visit_every_match_once(db: sqlite3.Connection, sort: str | None) -> None:
    pairs = [("status", "active,draft,inactive"), ("_count", "7")] + ([("_sort", sort)] if sort else [])
    query = parse_search("Consent", pairs)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = run_search(db, query.with_cursor(cursor))
        assert page.total == 31
        seen += [m.id for m in page.matches]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted([*K, "c1"]) and len(seen) == 31


def test_pages_are_stable_when_resources_are_added_between_pages(tmp_path: Any) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        store = SQLiteStore(tmp_path / "s.db")
        await store.open()

        async def add(i: int) -> None:
            async with store.transaction() as tx:
                r = consent(i)
                await tx.put(ResourceVersion("Consent", r["id"], 1, "2025-01-01T00:00:00.000Z", False,
                                             jsonio.dumps(r)), extract(r))

        for i in range(0, 20, 2):
            await add(i)
        q = parse_search("Consent", [("_count", "4"), ("_sort", "date")])
        first = await store.search(q)
        await add(1)  # sorts before the cursor: must not shift later pages
        seen = [m.id for m in first.matches]
        cursor = first.next_cursor
        while cursor:
            page = await store.search(q.with_cursor(cursor))
            seen += [m.id for m in page.matches]
            cursor = page.next_cursor
        await store.close()
        return seen, [f"k{i:02d}" for i in range(0, 20, 2)]

    seen, originals = asyncio.run(scenario())
    assert seen == originals


def test_total_modes_and_summary_count(db: sqlite3.Connection) -> None:
    assert run_search(db, parse_search("Consent", [("status", "active"), ("_total", "none")])).total is None
    page = run_search(db, parse_search("Consent", [("status", "active"), ("_summary", "count")]))
    assert page.total == 11 and page.matches == []


@pytest.mark.parametrize("cursor", ["garbage", "W10", "WyJhIiwiYiIsImMiXQ", "!!!"])
def test_a_foreign_or_broken_cursor_is_a_400(db: sqlite3.Connection, cursor: str) -> None:
    with pytest.raises(InvalidSearchParameter):
        run_search(db, parse_search("Consent", [("_sort", "date"), ("_cursor", cursor)]))


@pytest.mark.parametrize("value", ["*", "Consent:*", "Consent:patient"])
def test_revinclude_finds_every_referring_resource_with_or_without_wildcards(db: sqlite3.Connection,
                                                                             value: str) -> None:
    page = run_search(db, parse_search("Patient", [("_id", "q1"), ("_revinclude", value)]))
    assert [m.id for m in page.matches] == ["q1"]
    consents = {i.reference for i in page.includes if i.resource_type == "Consent"}
    assert consents == {f"Consent/k{i:02d}" for i in range(1, 30, 4)}
