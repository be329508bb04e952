"""The Bulk Data 2.0 protocol: kick-off, polling, manifest, download, cancel, expiry, errors."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.export.support import ASYNC, create, download, exported, ids, kickoff, manifest, wait


def _obs(patient: str, status: str = "final", code: str = "8867-4") -> dict[str, object]:
    return {"resourceType": "Observation", "status": status, "subject": {"reference": f"Patient/{patient}"},
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]}}


async def _assert_outcome(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == code, body


async def test_system_export_holds_the_stored_bytes_of_every_resource(client: httpx.AsyncClient) -> None:
    p = await create(client, {"resourceType": "Patient", "gender": "female"})
    o = await create(client, _obs(p["id"]))
    org = await create(client, {"resourceType": "Organization", "name": "Clinic"})
    url = await kickoff(client)
    assert url.startswith("http://test/fhir/bulk-status/")
    r = await wait(client, url)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert "expires" in r.headers
    m = r.json()
    assert m["request"] == "http://test/fhir/$export"
    assert m["requiresAccessToken"] is False  # FHIR_AUTH=off: no token to require
    assert m["transactionTime"].endswith("Z") and m["error"] == []
    assert sorted(e["type"] for e in m["output"]) == ["Observation", "Organization", "Patient"]
    for entry in m["output"]:
        lines = await download(client, entry["url"])
        assert entry["count"] == len(lines) == 1
        stored = await client.get(f"/fhir/{entry['type']}/{json.loads(lines[0])['id']}")
        assert lines[0] == stored.content  # the stored bytes, byte for byte
    assert {json.loads(line)["id"] for e in m["output"] for line in await download(client, e["url"])} == {
        p["id"], o["id"], org["id"]}


async def test_post_kickoff_with_parameters_and_type(client: httpx.AsyncClient) -> None:
    await create(client, {"resourceType": "Patient"})
    await create(client, {"resourceType": "Organization", "name": "x"})
    body = {"resourceType": "Parameters", "parameter": [{"name": "_type", "valueString": "Patient"},
                                                        {"name": "_outputFormat", "valueString": "ndjson"}]}
    r = await client.post("/fhir/$export", json=body, headers=ASYNC)
    assert r.status_code == 202, r.text
    m = (await wait(client, r.headers["content-location"])).json()
    assert m["request"] == "http://test/fhir/$export"
    assert [e["type"] for e in m["output"]] == ["Patient"]


async def test_kickoff_without_prefer_respond_async_is_refused(client: httpx.AsyncClient) -> None:
    await _assert_outcome(await client.get("/fhir/$export"), 400, "invalid")


async def test_unsupported_output_format_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/$export", params={"_outputFormat": "text/csv"}, headers=ASYNC)
    await _assert_outcome(r, 400, "not-supported")


async def test_accepted_output_formats(client: httpx.AsyncClient) -> None:
    for fmt in ("application/fhir+ndjson", "application/ndjson", "ndjson"):
        url = await kickoff(client, params={"_outputFormat": fmt, "_type": "Patient"})
        assert (await wait(client, url)).status_code == 200


async def test_unknown_type_is_refused_unless_lenient(client: httpx.AsyncClient) -> None:
    await _assert_outcome(await client.get("/fhir/$export", params={"_type": "Patient,Nonsense"}, headers=ASYNC),
                          400, "not-supported")
    await create(client, {"resourceType": "Patient"})
    m = await manifest(client, params={"_type": "Patient,Nonsense"},
                       headers={"Prefer": "respond-async, handling=lenient"})
    assert [e["type"] for e in m["output"]] == ["Patient"]
    assert [e["type"] for e in m["error"]] == ["OperationOutcome"]
    outcome = json.loads((await download(client, m["error"][0]["url"]))[0])
    assert "Nonsense" in outcome["issue"][0]["diagnostics"]


async def test_unsupported_parameter_is_refused_unless_lenient(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/$export", params={"includeAssociatedData": "LatestProvenanceResources"},
                         headers=ASYNC)
    await _assert_outcome(r, 400, "not-supported")
    url = await kickoff(client, params={"includeAssociatedData": "x"},
                        headers={"Prefer": "respond-async,handling=lenient"})
    assert (await wait(client, url)).status_code == 200


async def test_bad_since_and_type_filter_are_400(client: httpx.AsyncClient) -> None:
    for params in ({"_since": "yesterday"}, {"_typeFilter": "status=final"},
                   {"_typeFilter": "Observation?nonsense=1"}, {"_typeFilter": "Observation?_include=*"},
                   {"_type": "Patient", "_typeFilter": "Observation?status=final"}):
        r = await client.get("/fhir/$export", params=params, headers=ASYNC)
        assert r.status_code == 400, (params, r.text)


async def test_patient_parameter_only_in_post_at_patient_level(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/Patient/$export", params={"patient": "Patient/1"}, headers=ASYNC)
    await _assert_outcome(r, 400, "not-supported")
    body = {"resourceType": "Parameters", "parameter": [{"name": "patient", "valueReference": {"reference": "x"}}]}
    r = await client.post("/fhir/Patient/$export", json=body, headers=ASYNC)
    await _assert_outcome(r, 400, "invalid")


async def test_cancel_deletes_the_job_and_its_files(client: httpx.AsyncClient) -> None:
    await create(client, {"resourceType": "Patient"})
    url = await kickoff(client)
    m = (await wait(client, url)).json()
    r = await client.delete(url)
    assert r.status_code == 202
    await _assert_outcome(await client.get(url), 404, "not-found")
    await _assert_outcome(await client.get(m["output"][0]["url"]), 404, "not-found")
    await _assert_outcome(await client.delete(url), 404, "not-found")


async def test_cancel_of_a_queued_job(app_client: object) -> None:
    async with app_client(export_workers=0) as c:  # type: ignore[operator]
        url = await kickoff(c)
        r = await c.get(url)
        assert r.status_code == 202 and r.headers["x-progress"] == "queued"
        assert (await c.delete(url)).status_code == 202
        assert (await c.get(url)).status_code == 404


async def test_finished_exports_expire(app_client: object) -> None:
    async with app_client(export_retention_seconds=0.3) as c:  # type: ignore[operator]
        await create(c, {"resourceType": "Patient"})
        url = await kickoff(c)
        m = (await wait(c, url)).json()
        for _ in range(100):
            await asyncio.sleep(0.05)
            if (await c.get(url)).status_code == 404:
                break
        await _assert_outcome(await c.get(url), 404, "not-found")
        await _assert_outcome(await c.get(m["output"][0]["url"]), 404, "not-found")


async def test_unknown_job_and_file_are_404(client: httpx.AsyncClient) -> None:
    await _assert_outcome(await client.get("/fhir/bulk-status/nope"), 404, "not-found")
    await create(client, {"resourceType": "Patient"})
    m = await manifest(client)
    job = m["output"][0]["url"].split("/")[-2]
    await _assert_outcome(await client.get(f"/fhir/bulk-files/{job}/99.ndjson"), 404, "not-found")
    await _assert_outcome(await client.get(f"/fhir/bulk-files/{job}/x"), 404, "not-found")


async def test_files_split_at_the_configured_size(app_client: object) -> None:
    async with app_client(export_file_bytes=2000) as c:  # type: ignore[operator]
        made = {(await create(c, {"resourceType": "Patient", "gender": "male"}))["id"] for _ in range(40)}
        m = await manifest(c, params={"_type": "Patient"})
        assert len(m["output"]) > 1
        assert sum(e["count"] for e in m["output"]) == 40
        assert ids((await exported(c, m))["Patient"]) == made


async def test_elements_keeps_the_named_elements_and_marks_subsetted(client: httpx.AsyncClient) -> None:
    p = await create(client, {"resourceType": "Patient", "gender": "male", "birthDate": "1990-01-01"})
    m = await manifest(client, params={"_type": "Patient", "_elements": "gender"})
    (got,) = (await exported(client, m))["Patient"]
    assert got["id"] == p["id"] and got["gender"] == "male" and "birthDate" not in got
    assert any(t.get("code") == "SUBSETTED" for t in got["meta"].get("tag", []))


async def test_export_does_not_block_other_requests(client: httpx.AsyncClient) -> None:
    url = await kickoff(client)
    assert (await client.get("/fhir/metadata")).status_code == 200
    await wait(client, url)


async def test_capability_statement_declares_bulk_data(client: httpx.AsyncClient) -> None:
    cs = (await client.get("/fhir/metadata")).json()
    assert "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data" in cs["instantiates"]
    assert {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"} in \
        cs["rest"][0]["operation"]
    by_type = {r["type"]: r for r in cs["rest"][0]["resource"]}
    assert any(o["name"] == "export" for o in by_type["Group"]["operation"])
    assert any(o["name"] == "export" for o in by_type["Patient"]["operation"])
