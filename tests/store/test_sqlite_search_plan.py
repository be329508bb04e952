"""Every supported parameter type is served by an index: EXPLAIN QUERY PLAN never shows ``SCAN resource``."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator

import pytest

from fhir_server.fhir.search.parse import parse_search
from fhir_server.store.sqlite import SQLiteStore, includes
from fhir_server.store.sqlite.search import explain, where_clause
from tests.fhir.search.resources import RESOURCES
from tests.store.support import put_all


async def _load(path: str) -> SQLiteStore:
    store = SQLiteStore(path)
    await store.open()
    await put_all(store, RESOURCES.values())
    return store


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    store = asyncio.run(_load(str(tmp_path_factory.mktemp("plan") / "plan.db")))
    yield store.reader
    asyncio.run(store.close())


PLANS = [
    ("Patient", [("name", "mul")]),  # string
    ("Patient", [("name:exact", "Müller")]),
    ("Patient", [("name:contains", "ll")]),
    ("Consent", [("status", "active")]),  # token
    ("Consent", [("category:text", "privacy")]),
    ("Consent", [("patient", "Patient/p1")]),  # reference
    ("Consent", [("patient:identifier", "urn:mrn|1")]),
    ("Consent", [("date", "ge2025")]),  # date
    ("RiskAssessment", [("probability", "gt0.5")]),  # number
    ("Observation", [("value-quantity", "72||/min")]),  # quantity
    ("Consent", [("_profile", "http://example.org/p")]),  # uri
    ("Observation", [("code-value-quantity", "8867-4$gt60")]),  # composite
    ("Consent", [("_id", "c1")]),
    ("Consent", [("_lastUpdated", "ge2025")]),
    ("Consent", []),
    ("Consent", [("patient", "Patient/p1"), ("status", "active")]),  # two-parameter AND
    ("Consent", [("status", "active"), ("date", "ge2025"), ("_sort", "-date")]),
    ("Consent", [("patient.identifier", "urn:mrn|123")]),  # chain
    ("Patient", [("_has:Consent:patient:status", "active")]),
    ("Consent", [("status:not", "active")]),
    ("Consent", [("date:missing", "true")]),
]


@pytest.mark.parametrize(("rtype", "pairs"), PLANS, ids=[str(p[1]) for p in PLANS])
def test_search_plan_never_scans_the_resource_table(db: sqlite3.Connection, rtype: str,
                                                    pairs: list[tuple[str, str]]) -> None:
    plan = explain(db, parse_search(rtype, pairs))
    assert not [step for step in plan if step.startswith("SCAN") and ("resource" in step or step == "SCAN r")], plan


def test_a_selective_reference_drives_the_plan_through_the_primary_key(db: sqlite3.Connection) -> None:
    plan = explain(db, parse_search("Consent", [("status", "active"), ("patient", "Patient/p1")]))
    assert plan[0] == "SEARCH r USING INTEGER PRIMARY KEY (rowid=?)"
    assert any("idx_reference" in step for step in plan)


def test_count_uses_the_same_conditions(db: sqlite3.Connection) -> None:
    where, args = where_clause(db, parse_search("Consent", [("status", "active")]))
    plan = [r[3] for r in db.execute(f"EXPLAIN QUERY PLAN SELECT count(*) FROM resource r WHERE {where}", args)]
    assert not [s for s in plan if s.startswith("SCAN r")], plan


@pytest.mark.parametrize("value", ["*", "Consent:*", "Provenance:target"])
def test_revinclude_is_served_by_the_search_index(db: sqlite3.Connection, value: str) -> None:
    """No index is led by the reference target (issue #16): every reverse look-up names source and params."""
    source, codes = includes.reverse_sources(parse_search("Patient", [("_revinclude", value)]).revincludes[0])[0]
    sql = includes.reverse_sql(len(codes), 2)
    plan = [r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {sql}", [source, *codes, "p1", "p2", "Patient"])]
    assert any("idx_reference_search" in step for step in plan), plan
    assert not [step for step in plan if step.startswith("SCAN")], plan
