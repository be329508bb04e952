"""POST /ascmi/forms: what is on file afterwards (ASCMI.md §1, §3, §5)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.ascmi_http.support import (
    BASE,
    consent_ref,
    count,
    example,
    get,
    issues,
    names,
    post_form,
    search,
)


def _signed(form: dict[str, Any], day: str) -> dict[str, Any]:
    """The same person's form signed on another day: another form, so another formId."""
    form["signedDate"] = form["signature"]["date"] = day
    form["formId"] = f"{form['formId']}-{day}"
    return form


async def test_the_same_person_and_care_partners_submitted_twice_are_stored_once(client: httpx.AsyncClient) -> None:
    first = await post_form(client, example("named-include-exclude"))
    patients, organizations = await count(client, "Patient"), await count(client, "Organization")
    affiliations = await count(client, "OrganizationAffiliation")
    second = await post_form(client, _signed(example("named-include-exclude"), "2025-05-01"))
    assert (await count(client, "Patient"), await count(client, "Organization"),
            await count(client, "OrganizationAffiliation")) == (patients, organizations, affiliations)
    one, two = await get(client, consent_ref(first)), await get(client, consent_ref(second))
    assert one["patient"] == two["patient"] and one["organization"] == two["organization"]


async def test_the_same_form_submitted_again_is_answered_200_and_writes_nothing(client: httpx.AsyncClient) -> None:
    first = await post_form(client, example("named-include-exclude"))
    before = (await client.get("/fhir/_history?_count=1")).json()["total"]
    again = await client.post("/ascmi/forms", json=example("named-include-exclude"))
    assert again.status_code == 200, again.text
    assert again.headers["location"] == first.headers["location"]
    assert again.json()["resourceType"] == "OperationOutcome"
    assert (await client.get("/fhir/_history?_count=1")).json()["total"] == before


async def test_another_form_reusing_a_form_id_is_a_409_conflict(client: httpx.AsyncClient) -> None:
    await post_form(client, example("named-include-exclude"))
    reused = example("named-include-exclude")
    reused["signedDate"] = reused["signature"]["date"] = "2025-05-01"
    response = await client.post("/ascmi/forms", json=reused)
    assert response.status_code == 409, response.text
    assert response.json()["issue"][0]["expression"] == ["$.formId"]


async def test_a_care_partner_named_on_two_peoples_forms_is_one_organization(client: httpx.AsyncClient) -> None:
    await post_form(client, example("ab133-all-share"))
    before = await count(client, "Organization")
    other = example("ab133-all-share")
    other["individual"].update(givenName="Ana", familyName="Lopez", mediCalId="99999999Z")
    await post_form(client, other)
    assert await count(client, "Organization") == before
    assert await count(client, "Patient") == 2


async def test_a_newer_form_supersedes_the_older_one(client: httpx.AsyncClient) -> None:
    older = await post_form(client, example("non-ab133-mixed"))
    newer = await post_form(client, _signed(example("non-ab133-mixed"), "2025-05-20"))
    old = await get(client, consent_ref(older))
    assert old["status"] == "inactive" and old["provision"]["period"]["end"] == "2025-05-19"
    assert old["meta"]["versionId"] == "2"
    assert (await get(client, consent_ref(newer)))["status"] == "active"
    provenances = await search(client, f"Provenance?target={consent_ref(older)}")
    assert any("superseded" in p.get("reason", [{}])[0].get("text", "") for p in provenances)


async def test_an_older_signed_form_arriving_second_is_stored_superseded(client: httpx.AsyncClient) -> None:
    newer = await post_form(client, _signed(example("non-ab133-mixed"), "2025-05-20"))
    older = await post_form(client, example("non-ab133-mixed"))  # signed 2025-03-14
    stored_older = await get(client, consent_ref(older))
    assert stored_older["status"] == "inactive"
    assert stored_older["provision"]["period"] == {"start": "2025-03-14", "end": "2025-05-19"}
    stored_newer = await get(client, consent_ref(newer))
    assert stored_newer["status"] == "active" and stored_newer["meta"]["versionId"] == "1"


async def test_a_form_that_shares_nothing_is_found_as_an_active_consent(client: httpx.AsyncClient) -> None:
    response = await post_form(client, example("share-nothing"))
    consent = await get(client, consent_ref(response))
    found = await search(client, f"Consent?patient={consent['patient']['reference']}&status=active")
    assert [c["id"] for c in found] == [consent["id"]]
    assert {p["type"] for p in consent["provision"]["provision"]} == {"deny"}


async def test_prefer_minimal_still_answers_201_with_location(client: httpx.AsyncClient) -> None:
    response = await client.post("/ascmi/forms", json=example("share-nothing"),
                                 headers={"Prefer": "return=minimal"})
    assert response.status_code == 201
    assert response.headers["location"].startswith("http://test/fhir/Consent/")
    assert all("resource" not in e for e in response.json()["entry"])


PROFILES = {"Consent": "ASCMIConsent", "Patient": "ASCMIPatient", "Organization": "CarePartnerOrganization"}


@pytest.mark.parametrize("name", names("form"))
async def test_stored_resources_validate_against_their_profiles(client: httpx.AsyncClient, name: str) -> None:
    response = await post_form(client, example(name))
    for entry in response.json()["entry"]:
        rtype = entry["response"]["location"].split("/")[0]
        if rtype not in PROFILES:
            continue
        resource = await get(client, entry["response"]["location"])
        checked = await client.post(f"/fhir/{rtype}/$validate",
                                    params={"profile": f"{BASE}/StructureDefinition/{PROFILES[rtype]}"},
                                    json=resource)
        assert checked.status_code == 200, checked.text
        errors = [i for i in issues(checked) if i["severity"] in ("error", "fatal")]
        assert errors == [], (rtype, errors)
