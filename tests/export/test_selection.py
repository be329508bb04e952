"""What an export holds: ``_since``, ``_type``, ``_typeFilter``, Patient and Group level, ``patient``."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from fhir_server.bulk import sources
from tests.export.support import ASYNC, create, exported, ids, manifest, wait


def obs(patient: str, status: str = "final", performer: str | None = None) -> dict[str, Any]:
    o: dict[str, Any] = {"resourceType": "Observation", "status": status,
                         "subject": {"reference": f"Patient/{patient}"},
                         "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}}
    if performer:
        o["performer"] = [{"reference": performer}]
    return o


async def test_since_exports_only_what_changed_after_it(client: httpx.AsyncClient) -> None:
    old = await create(client, {"resourceType": "Patient", "gender": "male"})
    first = await manifest(client)
    assert ids((await exported(client, first))["Patient"]) == {old["id"]}
    await asyncio.sleep(0.01)
    new = await create(client, {"resourceType": "Patient", "gender": "female"})
    changed = (await client.put(f"/fhir/Patient/{old['id']}", json={**old, "gender": "other"})).json()
    second = await manifest(client, params={"_since": first["transactionTime"]})
    got = (await exported(client, second))["Patient"]
    assert ids(got) == {new["id"], old["id"]}
    assert {r["id"]: r["meta"]["versionId"] for r in got}[old["id"]] == changed["meta"]["versionId"]
    third = await manifest(client, params={"_since": second["transactionTime"]})
    assert {e["type"] for e in third["output"]} == {"AuditEvent"}  # only the audit of the exports themselves


async def test_deleted_resources_are_not_exported(client: httpx.AsyncClient) -> None:
    keep = await create(client, {"resourceType": "Patient"})
    gone = await create(client, {"resourceType": "Patient"})
    assert (await client.delete(f"/fhir/Patient/{gone['id']}")).status_code == 200
    assert ids((await exported(client, await manifest(client)))["Patient"]) == {keep["id"]}


async def test_type_limits_the_export_to_those_types(client: httpx.AsyncClient) -> None:
    p = await create(client, {"resourceType": "Patient"})
    await create(client, obs(p["id"]))
    await create(client, {"resourceType": "Organization", "name": "o"})
    m = await manifest(client, params={"_type": "Observation,Organization"})
    assert sorted(e["type"] for e in m["output"]) == ["Observation", "Organization"]
    m = await manifest(client, params=[("_type", "Patient"), ("_type", "Organization")])
    assert sorted(e["type"] for e in m["output"]) == ["Organization", "Patient"]


async def test_type_filter_selects_with_the_server_search(client: httpx.AsyncClient) -> None:
    p = await create(client, {"resourceType": "Patient"})
    final = await create(client, obs(p["id"], "final"))
    prelim = await create(client, obs(p["id"], "preliminary"))
    await create(client, obs(p["id"], "amended"))
    org = await create(client, {"resourceType": "Organization", "name": "o"})
    m = await manifest(client, params={"_type": "Observation,Organization",
                                       "_typeFilter": "Observation?status=final"})
    got = await exported(client, m)
    assert ids(got["Observation"]) == {final["id"]}
    assert ids(got["Organization"]) == {org["id"]}
    # two filters on one type are ORed; a resource matching both is exported once
    m = await manifest(client, params=[("_type", "Observation"),
                                       ("_typeFilter", "Observation?status=final"),
                                       ("_typeFilter", "Observation?status=final,preliminary")])
    got = await exported(client, m)
    assert sorted(r["id"] for r in got["Observation"]) == sorted([final["id"], prelim["id"]])
    # a chain, as any search
    m = await manifest(client, params={"_type": "Observation",
                                       "_typeFilter": f"Observation?subject:Patient._id={p['id']}&status=amended"})
    assert len((await exported(client, m))["Observation"]) == 1


async def test_type_filter_without_type_keeps_every_other_type(client: httpx.AsyncClient) -> None:
    p = await create(client, {"resourceType": "Patient"})
    final = await create(client, obs(p["id"], "final"))
    await create(client, obs(p["id"], "preliminary"))
    got = await exported(client, await manifest(client, params={"_typeFilter": "Observation?status=final"}))
    assert ids(got["Observation"]) == {final["id"]} and ids(got["Patient"]) == {p["id"]}


async def test_patient_level_export_holds_patient_compartments_only(client: httpx.AsyncClient) -> None:
    a = await create(client, {"resourceType": "Patient"})
    b = await create(client, {"resourceType": "Patient"})
    doc = await create(client, {"resourceType": "Practitioner"})
    oa = await create(client, obs(a["id"]))
    # in both compartments (subject a, performer b): exported once
    ab = await create(client, obs(a["id"], performer=f"Patient/{b['id']}"))
    orphan = await create(client, {"resourceType": "Observation", "status": "final",
                                   "code": {"text": "x"}, "performer": [{"reference": f"Practitioner/{doc['id']}"}]})
    m = await manifest(client, "/fhir/Patient/$export")
    got = await exported(client, m)
    assert set(got) == {"Patient", "Observation"}  # no Practitioner: not in a Patient compartment
    assert ids(got["Patient"]) == {a["id"], b["id"]}
    assert sorted(r["id"] for r in got["Observation"]) == sorted([oa["id"], ab["id"]])
    assert orphan["id"] not in ids(got["Observation"])


async def test_patient_parameter_narrows_a_patient_export(client: httpx.AsyncClient) -> None:
    a = await create(client, {"resourceType": "Patient"})
    b = await create(client, {"resourceType": "Patient"})
    oa = await create(client, obs(a["id"]))
    await create(client, obs(b["id"]))
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": f"Patient/{a['id']}"}}]}
    r = await client.post("/fhir/Patient/$export", json=body, headers=ASYNC)
    assert r.status_code == 202, r.text
    m = (await wait(client, r.headers["content-location"])).json()
    got = await exported(client, m)
    assert ids(got["Patient"]) == {a["id"]} and ids(got["Observation"]) == {oa["id"]}


async def test_group_export_holds_the_members_compartments(client: httpx.AsyncClient) -> None:
    a = await create(client, {"resourceType": "Patient"})
    b = await create(client, {"resourceType": "Patient"})
    c = await create(client, {"resourceType": "Patient"})
    oa = await create(client, obs(a["id"]))
    await create(client, obs(b["id"]))
    oc = await create(client, obs(c["id"]))
    group = await create(client, {"resourceType": "Group", "type": "person", "actual": True, "member": [
        {"entity": {"reference": f"Patient/{a['id']}"}}, {"entity": {"reference": f"Patient/{c['id']}"}},
        {"entity": {"reference": f"Patient/{b['id']}"}, "inactive": True}]})
    m = await manifest(client, f"/fhir/Group/{group['id']}/$export", params={"_type": "Patient,Observation"})
    got = await exported(client, m)
    assert ids(got["Patient"]) == {a["id"], c["id"]}
    assert ids(got["Observation"]) == {oa["id"], oc["id"]}
    assert m["request"].endswith(f"/fhir/Group/{group['id']}/$export?_type=Patient%2CObservation") or \
        m["request"].endswith(f"/fhir/Group/{group['id']}/$export?_type=Patient,Observation")


async def test_group_export_of_an_unknown_group_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/Group/nope/$export", headers=ASYNC)
    assert r.status_code == 404 and r.json()["issue"][0]["code"] == "not-found"


async def test_patient_export_refuses_types_outside_the_compartment(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/Patient/$export", params={"_type": "Organization"}, headers=ASYNC)
    assert r.status_code == 400 and r.json()["issue"][0]["code"] == "not-supported"


async def test_many_resources_page_through_every_source(client: httpx.AsyncClient,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Several batches per source: nothing lost or repeated at page boundaries, even when a whole transaction
    bundle shares one lastUpdated. (Smaller batches than the server's 1,000 keep this quick on SecantusDB.)"""
    monkeypatch.setattr(sources, "BATCH", 100)
    monkeypatch.setattr(sources, "PATIENTS_PER_QUERY", 40)
    entries = [{"resource": {"resourceType": "Patient", "id": f"p{i}"}, "request": {"method": "PUT",
                                                                                  "url": f"Patient/p{i}"}}
               for i in range(250)]
    r = await client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert r.status_code == 200, r.text[:300]
    for params in ({}, {"_type": "Patient"}, {"_typeFilter": "Patient?_lastUpdated=gt2000-01-01"}):
        got = (await exported(client, await manifest(client, params=params)))["Patient"]
        assert len(got) == 250 and len(ids(got)) == 250, params
    got = (await exported(client, await manifest(client, "/fhir/Patient/$export")))["Patient"]
    assert len(got) == 250 and len(ids(got)) == 250
