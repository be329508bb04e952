"""Parameter by parameter, for the covered resource types: a search by each parameter finds the fixture and a
non-matching value does not (SQLite store, real file, values extracted at write time)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhir_server.fhir import jsonio
from fhir_server.fhir.search.index import extract
from fhir_server.fhir.search.parse import parse_search
from fhir_server.store.base import ResourceVersion
from fhir_server.store.sqlite import SQLiteStore
from fhir_server.store.sqlite.search import run_search
from tests.fhir.search.resources import CASES, RESOURCES

UPDATED = "2025-01-01T00:00:00.000Z"


async def _load(path: Path, resources: list[dict[str, object]]) -> SQLiteStore:
    store = SQLiteStore(path)
    await store.open()
    async with store.transaction() as tx:
        for r in resources:
            version = ResourceVersion(str(r["resourceType"]), str(r["id"]), 1, UPDATED, False, jsonio.dumps(r))
            await tx.put(version, extract(r))
    return store


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    store = asyncio.run(_load(tmp_path_factory.mktemp("types") / "search.db", list(RESOURCES.values())))
    yield store.reader
    asyncio.run(store.close())


def _ids(conn: sqlite3.Connection, rtype: str, name: str, value: str) -> list[str]:
    page = run_search(conn, parse_search(rtype, [(name, value)]))
    return [m.id for m in page.matches]


@pytest.mark.parametrize(("rtype", "name", "hit", "miss"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_search_by_each_parameter_finds_the_fixture_and_not_a_different_value(
    db: sqlite3.Connection, rtype: str, name: str, hit: str, miss: str
) -> None:
    expected = [RESOURCES[rtype]["id"]]
    assert _ids(db, rtype, name, hit) == expected
    assert _ids(db, rtype, name, miss) == []


def test_every_covered_type_has_cases() -> None:
    assert {c[0] for c in CASES} == set(RESOURCES)
