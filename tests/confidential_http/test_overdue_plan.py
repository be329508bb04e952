"""The overdue list and the lookups the intake makes are index-served on SQLite: EXPLAIN QUERY PLAN never
shows ``SCAN resource``."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator

import pytest

from fhir_server.ascmi.confidential.overdue import query
from fhir_server.fhir.search.parse import parse_search
from fhir_server.store.sqlite import SQLiteStore
from fhir_server.store.sqlite.search import explain
from tests.store.support import put_all

FORM = "https://ascmi.example.org/fhir/CodeSystem/ascmi-form"


def _task(i: int, due: str) -> dict:
    return {"resourceType": "Task", "id": f"t{i}", "status": "requested" if i % 3 else "completed",
            "intent": "order", "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code",
                                                    "code": "fulfill"}]},
            "focus": {"reference": f"Consent/c{i}"}, "owner": {"reference": f"Organization/o{i % 4}"},
            "restriction": {"period": {"start": "2026-12-01", "end": due}}}


async def _load(path: str) -> SQLiteStore:
    store = SQLiteStore(path)
    await store.open()
    await put_all(store, [_task(i, f"2026-12-{10 + i % 15:02d}") for i in range(60)])
    return store


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    store = asyncio.run(_load(str(tmp_path_factory.mktemp("plan") / "plan.db")))
    yield store.reader
    asyncio.run(store.close())


@pytest.mark.parametrize(("rtype", "pairs"), [
    ("Task", [("code", "http://hl7.org/fhir/CodeSystem/task-code|fulfill"), ("status", "requested"),
              ("period", "lt2026-12-19")]),
    ("Task", [("focus", "Consent/c1")]),
    ("Consent", [("patient", "Patient/p1"), ("category", f"{FORM}|CONFIDENTIAL-COMMUNICATIONS")]),
    ("Consent", [("identifier", "https://ascmi.example.org/fhir/sid/ascmi-confidential-communication-id/1|R-1"),
                 ("category", f"{FORM}|CONFIDENTIAL-COMMUNICATIONS")]),
], ids=["overdue", "tasks-of-a-request", "requests-of-a-person", "request-by-id"])
def test_the_searches_confidential_communications_make_use_an_index(db: sqlite3.Connection, rtype: str,
                                                                    pairs: list[tuple[str, str]]) -> None:
    plan = explain(db, parse_search(rtype, pairs))
    assert not [step for step in plan if step.startswith("SCAN") and ("resource" in step or step == "SCAN r")], plan


def test_the_overdue_report_asks_exactly_that_search() -> None:
    from datetime import date

    assert query(date(2026, 12, 19)) == \
        "code=http://hl7.org/fhir/CodeSystem/task-code|fulfill&status=requested&period=lt2026-12-19"
