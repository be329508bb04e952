"""Rule 8 over HTTP: every decision ($decide and the CDS consult) leaves an AuditEvent, listed by
``AuditEvent?patient=``; ``Consent/$recordDisclosure`` stores a disclosure; "consent on file" is a plain search."""

from __future__ import annotations

from typing import Any

import pytest

from tests.decision_http.world import CIN, NPI, RECIPIENTS, World, cin, decide_parameters

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def flushed(world: World) -> None:
    await world.app.state.server.audit.flush()


async def search(world: World, query: str) -> list[dict[str, Any]]:
    r = await world.client.get(f"/fhir/{query}")
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


async def test_every_decision_is_audited_and_listed_by_patient(world: World) -> None:
    asks = [("CBO", "TREAT", ("MH",), "permit"), ("CBO", "social-services", ("social-services",), "deny"),
            ("PLAN", "HPAYMT", ("HIV",), "permit"), ("CLINIC", "TREAT", ("PSYTHPN",), "deny")]
    for recipient, purpose, labels, expected in asks:
        r = await world.client.post("/fhir/Consent/$decide", json=decide_parameters(
            [(CIN, cin("B"))], RECIPIENTS[recipient], purpose, labels, "2026-01-15"))
        assert r.json()["parameter"][0]["valueCode"] == expected
    await flushed(world)
    events = await search(world, f"AuditEvent?patient={world.patients['B']}&_count=100")
    assert len(events) == len(asks)
    assert sorted(e["outcome"] for e in events) == ["0", "0", "8", "8"]
    for event in events:
        consent = [e["what"]["reference"] for e in event["entity"] if e["type"]["code"] == "Consent"]
        assert consent == [world.versions["B-1"]]
        assert event["agent"][0]["requestor"] is True
    purposes = sorted(e["purposeOfEvent"][0]["coding"][0]["code"] for e in events)
    assert purposes == ["HPAYMT", "TREAT", "TREAT", "social-services"]
    plan = next(e for e in events if e["purposeOfEvent"][0]["coding"][0]["code"] == "HPAYMT")
    assert plan["agent"][0]["who"]["reference"] == world.organizations["PLAN"]
    labels = next(e for e in plan["entity"] if "securityLabel" in e)
    assert [s["code"] for s in labels["securityLabel"]] == ["HIV"]
    assert labels["detail"] == [{"type": "HIV", "valueString": "permit"}]


async def test_decisions_are_listed_by_consent_version(world: World) -> None:
    cid = world.consents["H-1"]
    for _ in range(2):
        await world.client.post("/fhir/Consent/$decide", json=decide_parameters(
            [(CIN, cin("H"))], RECIPIENTS["CBO"], "TREAT", (), "2026-01-15"))
    await flushed(world)
    assert len(await search(world, f"AuditEvent?patient={world.patients['H']}")) == 2
    assert len(await search(world, f"AuditEvent?entity=Consent/{cid}")) == 2


async def test_cds_consult_is_audited_once_per_purpose(world: World) -> None:
    body = {"hook": "patient-consent-consult", "context": {
        "patientId": [{"system": CIN, "value": cin("J")}],
        "actor": [{"system": NPI, "value": "1000000001"}], "purposeOfUse": ["TREAT", "HPAYMT"]}}
    r = await world.client.post("/cds-services/patient-consent-consult", json=body)
    assert r.status_code == 200
    await flushed(world)
    events = await search(world, f"AuditEvent?patient={world.patients['J']}")
    assert sorted(e["purposeOfEvent"][0]["coding"][0]["code"] for e in events) == ["HPAYMT", "TREAT"]


async def test_decision_about_an_unknown_patient_is_audited_by_identifier(world: World) -> None:
    before = await world.client.get("/fhir/AuditEvent?_summary=count")
    r = await world.client.post("/fhir/Consent/$decide", json=decide_parameters(
        [(CIN, cin("Y"))], RECIPIENTS["CBO"], "TREAT"))
    assert r.status_code == 200
    await flushed(world)
    after = await world.client.get("/fhir/AuditEvent?_summary=count")
    assert after.json()["total"] == before.json()["total"] + 1
    events = await search(world, "AuditEvent?_sort=-_lastUpdated&_count=1")
    patient = events[0]["entity"][0]["what"]
    assert patient == {"identifier": {"system": CIN, "value": cin("Y")}}


def disclosure(world: World) -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110106", "display": "Export"},
        "action": "R",
        "recorded": "2026-01-15T10:00:00Z",
        "outcome": "0",
        "purposeOfEvent": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                        "code": "TREAT"}]}],
        "agent": [{"who": {"reference": world.organizations["PLAN"]}, "requestor": True}],
        "source": {"observer": {"display": "Sierra Vista EHR"}},
        "entity": [{"what": {"reference": world.patients["D"]},
                    "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1"}},
                   {"what": {"reference": world.versions["D-1"]}}],
    }


async def test_record_disclosure_stores_the_audit_event(world: World) -> None:
    r = await world.client.post("/fhir/Consent/$recordDisclosure", json=disclosure(world))
    assert r.status_code == 201, r.text
    assert "/AuditEvent/" in r.headers["location"]
    stored = await world.client.get(r.headers["location"])
    assert stored.status_code == 200 and stored.json()["action"] == "R"
    events = await search(world, f"AuditEvent?patient={world.patients['D']}")
    assert [e["id"] for e in events] == [r.json()["id"]]


async def test_record_disclosure_accepts_parameters(world: World) -> None:
    body = {"resourceType": "Parameters", "parameter": [{"name": "disclosure", "resource": disclosure(world)}]}
    r = await world.client.post("/fhir/Consent/$recordDisclosure", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["resourceType"] == "AuditEvent"


@pytest.mark.parametrize("body", [
    {"resourceType": "Patient"},
    {"resourceType": "Parameters", "parameter": [{"name": "other", "resource": {"resourceType": "AuditEvent"}}]},
], ids=["not-an-audit-event", "parameters-without-disclosure"])
async def test_record_disclosure_of_something_else_is_400(world: World, body: dict[str, Any]) -> None:
    r = await world.client.post("/fhir/Consent/$recordDisclosure", json=body)
    assert r.status_code == 400
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "required"


@pytest.mark.parametrize(("person", "on_file"), [
    ("A", ["A-1"]), ("D", ["D-1"]), ("E", ["E-rev"]), ("F", ["F-2"]), ("K", ["K-1"]),
], ids=["form", "share-nothing", "revoked-then-revocation-on-file", "superseded", "expired-still-active"])
async def test_consent_on_file_is_a_plain_search(world: World, person: str, on_file: list[str]) -> None:
    found = await search(world, f"Consent?patient={world.patients[person]}&status=active")
    assert sorted(c["id"] for c in found) == sorted(world.consents[k] for k in on_file)


async def test_unknown_patient_has_no_consent_on_file(world: World) -> None:
    found = await search(world, f"Consent?patient.identifier={CIN}|{cin('Z')}&status=active")
    assert found == []
