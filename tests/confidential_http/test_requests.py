"""POST /ascmi/confidential-communications: the Consent it stores, idempotency and replacement (ASCMI.md §6)."""

from __future__ import annotations

import httpx
import pytest

from tests.confidential_http.support import (
    BASE,
    SENSITIVE,
    consent_ref,
    created,
    example,
    form,
    get,
    issues,
    post_request,
    request_names,
    search,
    total,
)


@pytest.mark.parametrize("name", request_names())
async def test_each_example_request_is_stored_as_a_consent_that_validates_against_its_profile(
        client: httpx.AsyncClient, name: str) -> None:
    response = await post_request(client, example(name))
    consent = await get(client, consent_ref(response))
    checked = await client.post("/fhir/Consent/$validate",
                                params={"profile": f"{BASE}/StructureDefinition/ASCMIConfidentialCommunication"},
                                json=consent)
    assert checked.status_code == 200, checked.text
    assert [i for i in issues(checked) if i["severity"] in ("error", "fatal")] == []


async def test_the_consent_carries_the_request_as_section_6_says(client: httpx.AsyncClient) -> None:
    request = example("mail")
    consent = await get(client, consent_ref(await post_request(client, request)))
    assert consent["meta"]["profile"] == [f"{BASE}/StructureDefinition/ASCMIConfidentialCommunication"]
    assert consent["status"] == "active"
    assert consent["scope"]["coding"][0]["code"] == "patient-privacy"
    assert [c["coding"][0]["code"] for c in consent["category"]] == ["59284-0", "CONFIDENTIAL-COMMUNICATIONS"]
    assert consent["category"][1]["coding"][0]["system"] == f"{BASE}/CodeSystem/ascmi-form"
    assert consent["policyRule"]["coding"][0]["code"] == "CONFIDENTIAL-COMMUNICATIONS"
    assert consent["dateTime"] == "2026-12-04"
    assert consent["provision"]["period"] == {"start": "2026-12-04"}
    assert consent["provision"]["type"] == "deny"
    assert [c["code"] for c in consent["provision"]["securityLabel"]] == SENSITIVE
    organization = await get(client, consent["organization"][0]["reference"])
    assert organization["name"] == "Golden Poppy Health Plan"
    assert consent["extension"] == [{
        "url": f"{BASE}/StructureDefinition/designated-contact",
        "valueAddress": {"use": "home", "type": "postal", "line": ["PO Box 2231"], "city": "Arcata", "state": "CA",
                         "postalCode": "95518", "country": "US"},
    }]
    assert consent["identifier"][0]["value"] == "GPHP-CC-2026-1203"
    patient = await get(client, consent["patient"]["reference"])
    assert "address" not in patient  # the designated contact is not the member's address on file


async def test_all_communications_carries_no_label_and_ends_becomes_the_period_end(client: httpx.AsyncClient) -> None:
    consent = await get(client, consent_ref(await post_request(client, example("all-communications"))))
    assert "securityLabel" not in consent["provision"]
    assert consent["provision"]["period"] == {"start": "2026-12-02", "end": "2027-12-31"}
    assert [e.get("valueAddress", e.get("valueContactPoint")) for e in consent["extension"]][1] == \
        {"system": "email", "value": "sam.w@example.net"}


async def test_the_same_request_id_from_the_same_care_partner_again_answers_200_and_writes_nothing(
        client: httpx.AsyncClient) -> None:
    first = await post_request(client, example("phone"))
    before = await total(client)
    again = await post_request(client, example("phone"), status=200)
    assert again.headers["location"] == first.headers["location"]
    assert issues(again)[0]["severity"] == "information"
    assert await total(client) == before


async def test_the_same_request_id_with_another_received_date_is_a_conflict(client: httpx.AsyncClient) -> None:
    await post_request(client, example("phone"))
    changed = example("phone")
    changed["receivedDate"] = "2026-12-02"
    before = await total(client)
    response = await client.post("/ascmi/confidential-communications", json=changed)
    assert response.status_code == 409
    assert issues(response)[0]["code"] == "conflict" and issues(response)[0]["expression"] == ["$.requestId"]
    assert await total(client) == before


async def test_the_same_request_id_from_another_care_partner_is_another_request(client: httpx.AsyncClient) -> None:
    await post_request(client, example("phone"))
    other = example("phone")
    other["receivedBy"] = example("electronic")["receivedBy"]
    other["receivedDate"] = "2026-12-03"
    await post_request(client, other)


async def test_a_newer_request_replaces_the_older_one(client: httpx.AsyncClient) -> None:
    first = consent_ref(await post_request(client, example("electronic")))
    old_tasks = await search(client, f"Task?focus={first}")
    newer = await post_request(client, example("replacement"))
    older = await get(client, first)
    assert older["status"] == "inactive"
    assert older["provision"]["period"] == {"start": "2026-11-30", "end": "2026-12-02"}
    assert older["meta"]["versionId"] == "2"
    assert (await get(client, consent_ref(newer)))["status"] == "active"
    assert {t["status"] for t in await search(client, f"Task?focus={first}")} == {"cancelled"}
    assert len(old_tasks) == 1
    assert [t["status"] for t in await search(client, f"Task?focus={consent_ref(newer)}")] == ["requested"]
    why = await search(client, f"Provenance?target={first}")
    assert any("replaced by" in p.get("reason", [{}])[0].get("text", "") for p in why)


async def test_an_older_request_arriving_after_a_newer_one_is_stored_inactive_without_tasks(
        client: httpx.AsyncClient) -> None:
    newer = consent_ref(await post_request(client, example("replacement")))
    late = await post_request(client, example("electronic"))
    older = await get(client, consent_ref(late))
    assert older["status"] == "inactive"
    assert older["provision"]["period"] == {"start": "2026-11-30", "end": "2026-12-02"}
    assert created(late, "Task") == []
    assert (await get(client, newer))["status"] == "active"


async def test_a_request_is_not_a_sharing_choice_it_never_governs_a_decision(client: httpx.AsyncClient) -> None:
    await post_request(client, example("phone"))
    decision = await client.post("/fhir/Consent/$decide", json={"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueIdentifier": {"system": f"{BASE}/sid/medi-cal-cin", "value": "97112233G"}},
        {"name": "recipient", "valueIdentifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1456781230"}},
        {"name": "purpose", "valueCoding": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                            "code": "TREAT"}},
    ]})
    assert decision.status_code == 200, decision.text
    params = {p["name"]: p for p in decision.json()["parameter"]}
    assert params["consentOnFile"]["valueBoolean"] is False


async def test_a_new_form_does_not_supersede_a_request_nor_a_request_a_form(client: httpx.AsyncClient) -> None:
    filed = await client.post("/ascmi/forms", json=form("ab133-all-share"))
    assert filed.status_code == 201, filed.text
    request = consent_ref(await post_request(client, example("electronic")))
    later = form("ab133-all-share")
    later["formId"], later["signedDate"] = "GPHP-2026-000999", "2026-12-01"
    later["signature"]["date"] = "2026-12-01"
    assert (await client.post("/ascmi/forms", json=later)).status_code == 201
    assert (await get(client, request))["status"] == "active"
    assert (await get(client, consent_ref(filed)))["status"] == "inactive"  # by the later form, not the request


async def test_a_revocation_cannot_name_a_request(client: httpx.AsyncClient) -> None:
    request = consent_ref(await post_request(client, example("phone")))
    revocation = form("revoke-by-consent")
    revocation["revokes"] = {"consent": request}
    response = await client.post("/ascmi/revocations", json=revocation)
    assert response.status_code == 422


async def test_a_retry_listing_the_care_partners_identifiers_in_another_order_is_still_a_retry(
        client: httpx.AsyncClient) -> None:
    first = await post_request(client, example("phone"))
    retry = example("phone")
    retry["receivedBy"]["identifiers"].reverse()
    again = await post_request(client, retry, status=200)
    assert again.headers["location"] == first.headers["location"]
