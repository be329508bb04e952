"""The export job store (``Store.export_jobs()``), the same behaviour on SQLite and MongoDB."""

from __future__ import annotations

import time

import pytest

from fhir_server.fhir.search.index import IndexRows
from fhir_server.security.caller import Caller
from fhir_server.store.base import ResourceVersion, Store
from fhir_server.store.export_jobs import ExportJob

CALLER = Caller("client-a", "Organization/o", {"*": "rs"}, "TREAT")


def _job(job_id: str, client: str = "client-a") -> ExportJob:
    return ExportJob(job_id, Caller(client, CALLER.organization, dict(CALLER.scopes), CALLER.purpose),
                     "http://x/fhir/$export", {"level": "system", "types": ["Patient"]}, "2026-01-01T00:00:00.000Z")


async def test_create_counts_active_jobs_per_client(store: Store) -> None:
    jobs = store.export_jobs()
    assert await jobs.create(_job("j1"), 2)
    assert await jobs.create(_job("j2"), 2)
    assert not await jobs.create(_job("j3"), 2)
    assert await jobs.create(_job("k1", "client-b"), 2)
    got = await jobs.get("j1")
    assert got is not None and got.caller == _job("j1").caller and got.status == "accepted"
    assert await jobs.delete("j1")
    assert await jobs.get("j1") is None and not await jobs.delete("j1")
    assert await jobs.create(_job("j3"), 2)


async def test_claim_lease_heartbeat_release_finish(store: Store) -> None:
    jobs = store.export_jobs()
    await jobs.create(_job("j1"), 5)
    await jobs.create(_job("j2"), 5)
    now = time.time()
    first = await jobs.claim("w1", now, 30)
    second = await jobs.claim("w2", now, 30)
    assert first is not None and second is not None and {first.id, second.id} == {"j1", "j2"}
    assert first.id == "j1"  # oldest first
    assert await jobs.claim("w3", now, 30) is None  # both leased
    await jobs.add_chunk("j1", 0, 0, b"a\n")
    await jobs.add_chunk("j1", 0, 1, b"b\n")
    assert [c async for c in jobs.chunks("j1", 0)] == [b"a\n", b"b\n"]
    assert await jobs.heartbeat("j1", "w1", now + 60, "2 resources")
    assert not await jobs.heartbeat("j1", "w2", now + 60, "not mine")
    # w2 dies: after its lease, another worker takes j2 over
    taken = await jobs.claim("w3", now + 31, 30)
    assert taken is not None and taken.id == "j2" and taken.owner == "w3"
    assert not await jobs.heartbeat("j2", "w2", now + 90, "")
    # w1 shuts down cleanly: j1 is queued again, its chunks gone
    await jobs.release("j1", "w1")
    again = await jobs.get("j1")
    assert again is not None and again.status == "accepted" and again.owner is None
    assert [c async for c in jobs.chunks("j1", 0)] == []
    done = await jobs.claim("w4", now + 32, 30)
    assert done is not None and done.id == "j1"
    done.status, done.output, done.expires = "completed", [{"type": "Patient", "file": 0, "count": 1}], now + 5
    assert not await jobs.finish(done, "w1")  # not the owner any more
    assert await jobs.finish(done, "w4")
    stored = await jobs.get("j1")
    assert stored is not None and stored.status == "completed" and stored.output == done.output
    assert await jobs.expired(now) == [] and await jobs.expired(now + 6) == ["j1"]


async def test_a_crashed_workers_chunks_are_wiped_on_takeover(store: Store) -> None:
    jobs = store.export_jobs()
    await jobs.create(_job("j1"), 5)
    now = time.time()
    assert await jobs.claim("dead", now, 1) is not None
    await jobs.add_chunk("j1", 0, 0, b"half\n")
    assert await jobs.claim("alive", now + 0.5, 1) is None
    assert (await jobs.claim("alive", now + 2, 1)) is not None
    assert [c async for c in jobs.chunks("j1", 0)] == []


async def test_cancel_makes_the_running_worker_stop(store: Store) -> None:
    jobs = store.export_jobs()
    await jobs.create(_job("j1"), 5)
    job = await jobs.claim("w", time.time(), 30)
    assert job is not None
    await jobs.add_chunk("j1", 0, 0, b"x\n")
    assert await jobs.delete("j1")
    assert not await jobs.heartbeat("j1", "w", time.time() + 30, "")
    job.status = "completed"
    assert not await jobs.finish(job, "w")
    assert await jobs.get("j1") is None


async def _put(store: Store, rtype: str, id_: str, when: str, deleted: bool = False) -> None:
    async with store.transaction() as tx:
        current = await tx.current(rtype, id_)
        vid = current.version_id + 1 if current else 1
        body = None if deleted else f'{{"resourceType":"{rtype}","id":"{id_}"}}'.encode()
        await tx.put(ResourceVersion(rtype, id_, vid, when, deleted, body), None if deleted else IndexRows())


@pytest.mark.parametrize("batch", [1, 2, 100])
async def test_scan_pages_by_last_updated_within_the_window(store: Store, batch: int) -> None:
    same = "2026-01-02T00:00:00.000Z"
    for i in range(5):
        await _put(store, "Patient", f"p{i}", same)  # one instant for five resources
    await _put(store, "Patient", "early", "2026-01-01T00:00:00.000Z")
    await _put(store, "Patient", "late", "2026-01-05T00:00:00.000Z")
    await _put(store, "Observation", "o1", "2026-01-03T00:00:00.000Z")
    await _put(store, "Patient", "gone", "2026-01-02T12:00:00.000Z")
    await _put(store, "Patient", "gone", "2026-01-02T13:00:00.000Z", deleted=True)
    jobs = store.export_jobs()

    async def ids(rtype: str | None, since: str | None, until: str) -> list[str]:
        return [v.id async for b in jobs.scan(rtype, since, until, batch) for v in b]

    assert await ids("Patient", None, "2026-01-04T00:00:00.000Z") == ["early", "p0", "p1", "p2", "p3", "p4"]
    assert await ids("Patient", "2026-01-01T00:00:00.000Z", "2026-01-09T00:00:00.000Z") == [
        "p0", "p1", "p2", "p3", "p4", "late"]
    assert await ids(None, "2026-01-02T00:00:00.000Z", "2026-01-04T00:00:00.000Z") == ["o1"]
    assert sorted(await ids(None, None, "2026-01-09T00:00:00.000Z")) == sorted(
        ["early", "p0", "p1", "p2", "p3", "p4", "late", "o1"])


def test_sqlite_scan_queries_are_index_range_scans() -> None:
    import sqlite3

    from fhir_server.store.sqlite.export_jobs import SCAN_NEXT, SCAN_TIE
    from fhir_server.store.sqlite.schema import RESOURCE_DDL

    conn = sqlite3.connect(":memory:")
    conn.executescript(RESOURCE_DDL)
    for typed in ("rtype = ? AND ", ""):
        for template in (SCAN_TIE, SCAN_NEXT):
            sql = template.format(typed=typed)
            plan = " ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, [1] * sql.count("?")))
            assert "SEARCH resource USING INDEX" in plan and "TEMP B-TREE" not in plan, plan
