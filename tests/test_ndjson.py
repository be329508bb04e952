"""NDJSON export/import moves resources between stores byte-for-byte (ids and decimals kept)."""

from __future__ import annotations

from pathlib import Path

from fhir_server.fhir import jsonio
from fhir_server.repository import ndjson
from fhir_server.repository import resources as repo
from fhir_server.store.sqlite import SQLiteStore

OBSERVATION = b'{"resourceType":"Observation","status":"final","code":{"text":"t"},"valueQuantity":{"value":1.50}}'


async def test_export_then_import_into_another_store_keeps_ids_and_decimals(tmp_path: Path) -> None:
    source, target = SQLiteStore(tmp_path / "a.sqlite3"), SQLiteStore(tmp_path / "b.sqlite3")
    await source.open()
    await target.open()
    try:
        async with source.transaction() as tx:
            written = await repo.create(tx, jsonio.loads(OBSERVATION))
        lines = [line async for line in ndjson.export(source)]
        report = await ndjson.import_lines(target, lines)
        copied = await target.read("Observation", written.version.id)
        assert report.imported == 1 and report.failed == 0
        assert copied is not None and copied.body is not None
        assert b'"value":1.50' in copied.body
    finally:
        await source.close()
        await target.close()


async def test_import_reports_bad_lines_and_keeps_the_good_ones(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    await store.open()
    try:
        lines = [b'{"resourceType":"Patient","id":"p1"}', b"not json", b'{"resourceType":"Patient","id":"p2","x":1}']
        report = await ndjson.import_lines(store, lines)
        assert (report.imported, report.failed) == (1, 2)
        assert report.errors and report.errors[0].startswith("line 2")
        assert await store.read("Patient", "p1") is not None
    finally:
        await store.close()
