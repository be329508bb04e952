"""Jobs: restart, per-client limit, ownership, scopes, audit."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from fhir_server.bulk import sources
from fhir_server.store.base import Store
from tests.export.conftest import AppFactory, as_caller
from tests.export.support import ASYNC, create, download, exported, ids, kickoff, manifest, wait


async def test_a_job_whose_worker_died_mid_way_is_started_over(app_client: AppFactory,
                                                              store_factory: Callable[[], Store]) -> None:
    async with app_client(export_workers=0) as c:  # a server that only serves the API
        made = {(await create(c, {"resourceType": "Patient"}))["id"] for _ in range(5)}
        url = await kickoff(c, params={"_type": "Patient"})
        assert (await c.get(url)).headers["x-progress"] == "queued"
    # A worker claimed the job, wrote part of a file, and died (no release: its lease just stops being renewed).
    store = store_factory()
    await store.open()
    jobs = store.export_jobs()
    job = await jobs.claim("dead-worker", time.time(), 1.0)
    assert job is not None and url.endswith(job.id)
    await jobs.add_chunk(job.id, 0, 0, b'{"resourceType":"Patient","id":"half-written"}\n')
    await store.close()
    async with app_client(export_lease_seconds=1.0) as c:  # the restarted server
        r = await c.get(url)
        assert r.status_code == 202  # running elsewhere (as far as anyone knows): never a partial manifest
        r = await wait(c, url)
        assert r.status_code == 200, r.text
        got = (await exported(c, r.json()))["Patient"]
        assert ids(got) == made and len(got) == 5


async def test_a_queued_job_survives_a_restart(app_client: AppFactory) -> None:
    async with app_client(export_workers=0) as c:
        p = await create(c, {"resourceType": "Patient"})
        url = await kickoff(c)
    async with app_client() as c:
        m = (await wait(c, url)).json()
        assert ids((await exported(c, m))["Patient"]) == {p["id"]}


async def test_per_client_limit_answers_429(app_client: AppFactory) -> None:
    async with app_client(export_workers=0, export_max_jobs_per_client=2) as c:
        a = as_caller("client-a")
        first = await kickoff(c, headers=a)
        await kickoff(c, headers=a)
        r = await c.get("/fhir/$export", headers={**ASYNC, **a})
        assert r.status_code == 429 and r.json()["issue"][0]["code"] == "throttled"
        assert r.headers["retry-after"]
        await kickoff(c, headers=as_caller("client-b"))  # other clients are not affected
        assert (await c.delete(first, headers=a)).status_code == 202
        await kickoff(c, headers=a)  # a slot is free again


async def test_status_cancel_and_files_belong_to_the_client_that_started(client: httpx.AsyncClient) -> None:
    a, b = as_caller("client-a"), as_caller("client-b")
    await create(client, {"resourceType": "Patient"})
    url = await kickoff(client, headers=a)
    m = (await wait(client, url, a)).json()
    for r in (await client.get(url, headers=b), await client.get(m["output"][0]["url"], headers=b),
              await client.delete(url, headers=b)):
        assert r.status_code == 404 and r.json()["issue"][0]["code"] == "not-found"
    assert (await client.get(url)).status_code == 404  # the local administrator is another client too
    assert len(await download(client, m["output"][0]["url"], a)) == 1
    assert (await client.get(url, headers=a)).status_code == 200


async def test_types_outside_the_scopes_are_refused_or_left_out(client: httpx.AsyncClient) -> None:
    await create(client, {"resourceType": "Patient"})
    await create(client, {"resourceType": "Organization", "name": "o"})
    narrow = as_caller("narrow", scopes={"Patient": "rs"})
    r = await client.get("/fhir/$export", params={"_type": "Organization"}, headers={**ASYNC, **narrow})
    assert r.status_code == 403 and r.json()["issue"][0]["code"] == "forbidden"
    m = await manifest(client, headers=narrow)
    assert [e["type"] for e in m["output"]] == ["Patient"]
    lenient = {**narrow, "Prefer": "respond-async, handling=lenient"}
    m = await manifest(client, params={"_type": "Patient,Organization"}, headers=lenient)
    assert [e["type"] for e in m["output"]] == ["Patient"] and len(m["error"]) == 1
    read_only = as_caller("read-only", scopes={"Patient": "r"})
    r = await client.get("/fhir/$export", params={"_typeFilter": "Patient?gender=male"},
                         headers={**ASYNC, **read_only})
    assert r.status_code == 403


async def _audit_events(client: httpx.AsyncClient, text: str) -> list[dict[str, Any]]:
    for _ in range(100):
        bundle = (await client.get("/fhir/AuditEvent", params={"_count": "100"})).json()
        found = [e["resource"] for e in bundle.get("entry", []) if text in e["resource"].get("outcomeDesc", "")]
        if found:
            return found
        await asyncio.sleep(0.05)
    return []


async def test_one_audit_event_per_job_and_per_download(client: httpx.AsyncClient) -> None:
    await create(client, {"resourceType": "Patient"})
    a = as_caller("auditor-client", organization=None)
    url = await kickoff(client, params={"_type": "Patient"}, headers=a)
    m = (await wait(client, url, a)).json()
    (job_event,) = await _audit_events(client, "bulk export of 1 resources")
    agent = job_event["agent"][0]["who"]["identifier"]
    assert agent == {"system": "urn:ietf:params:oauth:client-id", "value": "auditor-client"}
    assert job_event["outcome"] == "0" and job_event["subtype"][0]["code"] == "operation"
    query = next(e for e in job_event["entity"] if e.get("role", {}).get("code") == "24")
    assert base64.b64decode(query["query"]).decode() == m["request"]
    await download(client, m["output"][0]["url"], a)
    await download(client, m["output"][0]["url"], a)
    downloads = await _audit_events(client, "bulk export file 0.ndjson")
    for _ in range(50):
        if len(downloads) == 2:
            break
        await asyncio.sleep(0.05)
        downloads = await _audit_events(client, "bulk export file 0.ndjson")
    assert len(downloads) == 2
    assert json.dumps(downloads[0]).count(m["output"][0]["url"]) == 1


async def test_a_stopped_server_gives_its_running_job_back(app_client: AppFactory,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "BATCH", 1)  # many small batches: the job is surely running when we stop
    async with app_client(export_workers=0) as c:
        entries = [{"resource": {"resourceType": "Patient", "id": f"p{i}"},
                    "request": {"method": "PUT", "url": f"Patient/p{i}"}} for i in range(400)]
        r = await c.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries})
        assert r.status_code == 200
        url = await kickoff(c, params={"_type": "Patient"})
    async with app_client() as c:
        while (r := await c.get(url)).headers.get("x-progress") == "queued":
            await asyncio.sleep(0)
        assert r.status_code == 202  # running
    async with app_client(export_workers=0) as c:  # nobody runs it now: it waits, whole, for a worker
        r = await c.get(url)
        assert r.status_code == 202 and r.headers["x-progress"] == "queued"
    monkeypatch.setattr(sources, "BATCH", 1000)  # the rerun at normal speed
    async with app_client() as c:
        got = (await exported(c, (await wait(c, url)).json()))["Patient"]
        assert len(got) == 400 and len(ids(got)) == 400
