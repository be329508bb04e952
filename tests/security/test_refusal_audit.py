"""Every refused request (401/403) leaves an IHE BALP AuditEvent with outcome 4 (ACCESS.md §B "Audit")."""

from __future__ import annotations

import base64
from typing import Any

from fhir_server.security.audit import CLIENT_ID_SYSTEM
from tests.security.conftest import Secure, bearer


async def _events(secure: Secure, query: str) -> list[dict[str, Any]]:
    await secure.app.state.server.audit.flush()
    admin = await secure.admin_token()
    r = await secure.client.get(f"/fhir/AuditEvent?{query}", headers=bearer(admin))
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


async def test_a_403_is_audited_with_client_organization_purpose_patient_and_query(secure: Secure) -> None:
    client, token = await secure.partner(("system/Patient.rs",), ("COC",), "Organization/cp7")
    r = await secure.client.get("/fhir/Observation?patient=Patient/p1&code=x", headers=bearer(token))
    assert r.status_code == 403
    [event] = await _events(secure, "patient=Patient/p1")
    assert event["outcome"] == "4"
    assert event["type"]["code"] == "rest" and event["subtype"][0]["code"] == "search-type"
    assert event["meta"]["profile"][0].endswith("IHE.BasicAudit.PatientQuery")
    client_agent = event["agent"][0]
    assert client_agent["who"]["identifier"] == {"system": CLIENT_ID_SYSTEM, "value": client.client_id}
    assert client_agent["requestor"] is True
    assert client_agent["purposeOfUse"][0]["coding"][0]["code"] == "COC"
    assert event["agent"][1]["who"]["reference"] == "Organization/cp7"
    query = next(e for e in event["entity"] if e["role"]["code"] == "24")
    assert base64.b64decode(query["query"]).decode() == "GET /fhir/Observation?patient=Patient/p1&code=x"
    assert any(e.get("what", {}).get("reference") == "Patient/p1" for e in event["entity"])


async def test_a_401_is_audited_without_a_client(secure: Secure) -> None:
    r = await secure.client.get("/fhir/Patient/p2")
    assert r.status_code == 401
    [event] = await _events(secure, "patient=Patient/p2")
    assert event["outcome"] == "4" and event["subtype"][0]["code"] == "read"
    assert event["agent"][0]["who"] == {"display": "unauthenticated caller"}


async def test_a_refused_transaction_entry_is_audited(secure: Secure) -> None:
    _, token = await secure.partner(("system/Patient.rs",))
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}]}
    assert (await secure.client.post("/fhir", headers=bearer(token), json=bundle)).status_code == 403
    events = await _events(secure, "outcome=4")
    assert any(e["subtype"][0]["code"] == "transaction" for e in events)


async def test_allowed_requests_leave_no_refusal(secure: Secure) -> None:
    _, token = await secure.partner(("system/Patient.rs",))
    assert (await secure.client.get("/fhir/Patient?_id=p3", headers=bearer(token))).status_code == 200
    assert await _events(secure, "outcome=4") == []


async def test_a_refused_token_request_is_audited(secure: Secure) -> None:
    from tests.security.conftest import claims, form

    client, key = await secure.register()
    r = await secure.client.post("/fhir/auth/token", data=form(key.sign(claims(client.client_id, aud="x"))))
    assert r.status_code == 401
    events = await _events(secure, "outcome=4")
    [event] = [e for e in events if e["entity"][0]["description"] == "POST /fhir/auth/token"]
    assert client.client_id in event["outcomeDesc"] and "invalid_client" in event["outcomeDesc"]
