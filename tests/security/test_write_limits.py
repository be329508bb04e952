"""Care Partner write limits (ACCESS.md §B, writes), with real tokens: no plain-FHIR writes of Consent,
Organization or OrganizationAffiliation; intake, revocations, expiration events and FAST operations only for the
caller's own Organization (by reference or any identifier); labels on a resource stay when a Care Partner
updates it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.settings import Settings
from tests.security.conftest import Secure, bearer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "forms"
NPI = "http://hl7.org/fhir/sid/us-npi"
CLINIC_NPI = "1456781230"  # the collector of examples/forms/ab133-all-share.json


@pytest.fixture
def secure_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, load_conformance=True, auth="smart")


def _403(r: httpx.Response) -> None:
    assert r.status_code == 403, r.text
    assert r.json()["issue"][0]["code"] == "forbidden"


def _form() -> dict[str, Any]:
    form: dict[str, Any] = json.loads((EXAMPLES / "ab133-all-share.json").read_text())
    form["signedDate"] = form["signature"]["date"] = "2026-06-01"
    form["expiration"] = {"date": "2031-01-01"}
    form.pop("minorSignature", None)
    form["individual"]["birthDate"] = "1980-02-14"
    form["signature"] = {"signer": "individual", "method": "wet", "date": "2026-06-01"}
    return form


async def _organizations(secure: Secure) -> str:
    admin = await secure.admin_token()
    for oid, npi in (("clinic", CLINIC_NPI), ("other", "1999999991")):
        r = await secure.client.put(f"/fhir/Organization/{oid}", headers=bearer(admin), json={
            "resourceType": "Organization", "id": oid, "name": oid, "identifier": [{"system": NPI, "value": npi}]})
        assert r.status_code in (200, 201), r.text
    return admin


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/fhir/Consent", {"resourceType": "Consent"}),
    ("PUT", "/fhir/Organization/clinic", {"resourceType": "Organization", "id": "clinic", "name": "x"}),
    ("PATCH", "/fhir/Consent/c1", [{"op": "replace", "path": "/status", "value": "inactive"}]),
    ("DELETE", "/fhir/OrganizationAffiliation/a1", None),
    ("PUT", "/fhir/Organization?identifier=x", {"resourceType": "Organization", "name": "x"}),
    ("POST", "/fhir/OrganizationAffiliation", {"resourceType": "OrganizationAffiliation"}),
])
async def test_care_partners_may_not_write_consents_or_organizations(secure: Secure, method: str, path: str,
                                                                     body: Any) -> None:
    _, token = await secure.partner(("system/*.cruds",))
    headers = {**bearer(token), "Content-Type": "application/json-patch+json" if method == "PATCH"
               else "application/fhir+json"}
    _403(await secure.client.request(method, path, headers=headers, content=json.dumps(body) if body else None))


async def test_nor_inside_a_transaction_while_an_administrator_may(secure: Secure) -> None:
    _, token = await secure.partner(("system/*.cruds",))
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Organization", "name": "x"}, "request": {"method": "POST",
                                                                               "url": "Organization"}}]}
    _403(await secure.client.post("/fhir", headers=bearer(token), json=bundle))
    admin = await secure.admin_token()
    assert (await secure.client.post("/fhir", headers=bearer(admin), json=bundle)).status_code == 200


async def test_a_form_is_filed_only_by_its_collector(secure: Secure) -> None:
    await _organizations(secure)
    _, other = await secure.partner(("system/Consent.cr",), organization="Organization/other")
    _403(await secure.client.post("/ascmi/forms", headers=bearer(other), json=_form()))
    _, clinic = await secure.partner(("system/Consent.cr",), organization="Organization/clinic")
    r = await secure.client.post("/ascmi/forms", headers=bearer(clinic), json=_form())
    assert r.status_code == 201, r.text
    consent = r.headers["location"].split("/fhir/")[1].split("/_history")[0]

    event = {"consent": consent, "event": "death", "date": "2026-07-01"}
    _403(await secure.client.post("/ascmi/expiration-events", headers=bearer(other), json=event))
    revocation = {"revokes": {"consent": consent}, "signedDate": "2026-07-02",
                  "individual": _form()["individual"],
                  "signature": {"signer": "individual", "method": "wet", "date": "2026-07-02"},
                  "receivedBy": {"name": "other", "identifiers": [{"system": NPI, "value": "1999999991"}],
                                 "type": "provider", "coveredEntity": True}}
    _403(await secure.client.post("/ascmi/revocations", headers=bearer(clinic), json=revocation))
    no_receiver = {k: v for k, v in revocation.items() if k != "receivedBy"}
    _403(await secure.client.post("/ascmi/revocations", headers=bearer(clinic), json=no_receiver))
    revoke = {"resourceType": "Parameters", "parameter": [
        {"name": "consent", "valueReference": {"reference": consent}},
        {"name": "patient", "valueReference": {"reference": "Patient/x"}}]}
    _403(await secure.client.post("/fhir/Consent/$revokeConsent", headers=bearer(other), json=revoke))
    mine = {**revocation, "receivedBy": {**revocation["receivedBy"], "name": "clinic",
                                         "identifiers": [{"system": NPI, "value": CLINIC_NPI}]}}
    r = await secure.client.post("/ascmi/revocations", headers=bearer(clinic), json=mine)
    assert r.status_code != 403, r.text


async def test_fast_file_consent_only_for_the_callers_organization(secure: Secure) -> None:
    await _organizations(secure)
    _, other = await secure.partner(("system/Consent.cr",), organization="Organization/other")
    consent = {"resourceType": "Consent", "status": "active", "scope": {"text": "x"}, "category": [{"text": "x"}],
               "patient": {"reference": "Patient/p"}, "organization": [{"reference": "Organization/clinic"}]}
    body = {"resourceType": "Parameters", "parameter": [{"name": "consent", "resource": consent}]}
    _403(await secure.client.post("/fhir/Consent/$fileConsent", headers=bearer(other), json=body))
    by_identifier = {**consent, "organization": [{"identifier": {"system": NPI, "value": "1999999991"}}]}
    body = {"resourceType": "Parameters", "parameter": [{"name": "consent", "resource": by_identifier}]}
    r = await secure.client.post("/fhir/Consent/$fileConsent", headers=bearer(other), json=body)
    assert r.status_code != 403, r.text


async def test_a_care_partner_update_keeps_existing_labels(secure: Secure) -> None:
    admin = await secure.admin_token()
    label = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
    r = await secure.client.put("/fhir/Location/l1", headers=bearer(admin), json={
        "resourceType": "Location", "id": "l1", "name": "a", "meta": {"security": [label]}})
    assert r.status_code in (200, 201), r.text
    _, token = await secure.partner(("system/Location.rus",))
    r = await secure.client.put("/fhir/Location/l1", headers=bearer(token), json={
        "resourceType": "Location", "id": "l1", "name": "b"})
    assert r.status_code == 200, r.text
    stored = (await secure.client.get("/fhir/Location/l1", headers=bearer(admin))).json()
    assert stored["name"] == "b"
    assert label in [{k: s[k] for k in ("system", "code")} for s in stored["meta"]["security"]]
