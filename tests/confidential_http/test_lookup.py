"""POST /fhir/Patient/$communication-contact (ASCMI.md §6): the designated contact when a request in force
covers the communication, else the member's own — never a relative's or a subscriber's."""

from __future__ import annotations

import httpx
import pytest

from tests.confidential_http.support import (
    about,
    at,
    cin,
    consent_ref,
    contact,
    example,
    form,
    get,
    out,
    parameters,
    post_request,
)

MARIA = cin("91234567A")
NORMAL = ("about", "valueCoding", {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"})
MARIA_OWN = [
    {"valueAddress": {"use": "home", "line": ["1450 Alder Street", "Apt 3B"], "city": "Eureka", "state": "CA",
                      "postalCode": "95501", "country": "US"}},
    {"valueContactPoint": {"system": "phone", "value": "(707) 555-0148"}},
    {"valueContactPoint": {"system": "email", "value": "maria.delgado@example.com"}},
]
DESIGNATED = [{"valueContactPoint": {"system": "email", "value": "m.delgado.private@example.org"}}]


@pytest.fixture
async def maria(client: httpx.AsyncClient) -> str:
    """Maria's AB 133 form (her own address, phone, email) and her request of 2026-11-30 (a private email)."""
    assert (await client.post("/ascmi/forms", json=form("ab133-all-share"))).status_code == 201
    return consent_ref(await post_request(client, example("electronic")))


async def test_a_communication_about_sensitive_services_goes_to_the_designated_contact(
        client: httpx.AsyncClient, maria: str) -> None:
    answer = await contact(client, MARIA, about("SEX"), ("kind", "valueCode", "eob"), at("2026-12-01"))
    assert out(answer, "contact") == DESIGNATED
    assert out(answer, "basis") == [{"valueCode": "designated"}]
    assert out(answer, "consent") == [{"valueReference": {"reference": f"http://test/fhir/{maria}/_history/1"}}]
    assert "explanation of benefits" in out(answer, "reason")[0]["valueString"]


async def test_it_applies_from_the_day_received_not_only_after_the_due_date(client: httpx.AsyncClient,
                                                                          maria: str) -> None:
    on_the_day = await contact(client, MARIA, about("MH"), at("2026-11-30"))
    assert out(on_the_day, "basis") == [{"valueCode": "designated"}]
    day_before = await contact(client, MARIA, about("MH"), at("2026-11-29"))
    assert out(day_before, "contact") == MARIA_OWN and out(day_before, "basis") == [{"valueCode": "member-on-file"}]
    assert out(day_before, "consent") == []


async def test_a_general_communication_goes_to_the_member_when_the_request_covers_sensitive_services_only(
        client: httpx.AsyncClient, maria: str) -> None:
    answer = await contact(client, MARIA, ("kind", "valueCode", "bill"), at("2026-12-01"))
    assert out(answer, "contact") == MARIA_OWN
    assert "covers communications about sensitive services" in out(answer, "reason")[0]["valueString"]
    labelled_general = await contact(client, MARIA, NORMAL, at("2026-12-01"))
    assert out(labelled_general, "basis") == [{"valueCode": "member-on-file"}]
    any_sensitive = await contact(client, MARIA, NORMAL, about("42CFRPart2"), at("2026-12-01"))
    assert out(any_sensitive, "basis") == [{"valueCode": "designated"}]


async def test_all_communications_cover_general_ones_until_the_request_ends(client: httpx.AsyncClient) -> None:
    await post_request(client, example("all-communications"))
    sam = cin("97334455J")
    answer = await contact(client, sam, ("kind", "valueCode", "bill"), at("2027-12-31"))
    assert [list(c)[0] for c in out(answer, "contact")] == ["valueAddress", "valueContactPoint"]
    assert out(answer, "basis") == [{"valueCode": "designated"}]
    after = await client.post("/fhir/Patient/$communication-contact", json=parameters(sam, at("2028-01-01")))
    assert after.status_code == 422 and after.json()["issue"][0]["code"] == "not-found"


async def test_a_replaced_request_answers_for_its_own_days(client: httpx.AsyncClient, maria: str) -> None:
    newer = consent_ref(await post_request(client, example("replacement")))
    old_days = await contact(client, MARIA, about("SEX"), at("2026-12-02"))
    assert out(old_days, "contact") == DESIGNATED
    assert out(old_days, "consent") == [{"valueReference": {"reference": f"http://test/fhir/{maria}/_history/2"}}]
    new_days = await contact(client, MARIA, about("SEX"), at("2026-12-03"))
    assert [list(c)[0] for c in out(new_days, "contact")] == ["valueAddress", "valueContactPoint"]
    assert out(new_days, "consent")[0]["valueReference"]["reference"].startswith(f"http://test/fhir/{newer}/")


async def test_the_day_is_californian_late_friday_evening_utc_is_still_friday(client: httpx.AsyncClient) -> None:
    request = example("mail")
    request["designated"]["email"] = "grace@example.org"
    request["individual"]["email"] = "grace.home@example.org"
    await post_request(client, request)  # received Friday 2026-12-04
    grace = cin("97223344H")
    thursday_evening = await contact(client, grace, about("STD"), at("2026-12-04T07:30:00Z"))  # 23:30 Thu in LA
    assert out(thursday_evening, "basis") == [{"valueCode": "member-on-file"}]
    friday = await contact(client, grace, about("STD"), at("2026-12-04T08:00:00Z"))  # 00:00 Fri in LA
    assert out(friday, "basis") == [{"valueCode": "designated"}]
    no_offset = await contact(client, grace, about("STD"), at("2026-12-03T23:59:00"))  # read in Los Angeles
    assert out(no_offset, "basis") == [{"valueCode": "member-on-file"}]


async def test_never_a_relatives_a_guardians_or_a_subscribers_contact(client: httpx.AsyncClient) -> None:
    await post_request(client, example("phone"))  # Tuan (17) designated his own phone; nothing else on file
    patient_ref = (await get(client, consent_ref(await post_request(client, example("phone"), status=200))))[
        "patient"]["reference"]
    patient = await get(client, patient_ref)
    patient["contact"] = [{"name": {"text": "Linh Nguyen (mother, policy holder)"},
                           "telecom": [{"system": "phone", "value": "(530) 555-0100"}],
                           "address": {"line": ["9 Family Home Rd"], "city": "Chico", "state": "CA"}}]
    patient["telecom"] = [{"system": "phone", "value": "(530) 555-0111", "use": "old"}]
    assert (await client.put(f"/fhir/{patient_ref}", json=patient)).status_code == 200
    related = {"resourceType": "RelatedPerson", "patient": {"reference": patient_ref},
               "telecom": [{"system": "phone", "value": "(530) 555-0100"}]}
    assert (await client.post("/fhir/RelatedPerson", json=related)).status_code == 201
    sensitive = await contact(client, cin("97112233G"), about("SEX"))
    assert out(sensitive, "contact") == [{"valueContactPoint": {"system": "phone", "value": "(530) 555-0199"}}]
    general = await client.post("/fhir/Patient/$communication-contact",
                                json=parameters(cin("97112233G"), ("kind", "valueCode", "bill")))
    assert general.status_code == 422
    issue = general.json()["issue"][0]
    assert issue["code"] == "not-found" and "Tuan Nguyen" in issue["diagnostics"]


async def test_an_unknown_member_is_422_not_found(client: httpx.AsyncClient) -> None:
    response = await client.post("/fhir/Patient/$communication-contact", json=parameters(cin("99999999Z")))
    assert response.status_code == 422
    assert response.json()["issue"][0]["code"] == "not-found"
    assert "99999999Z" in response.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(("body", "where"), [
    (parameters(about("SEX")), "patient"),
    (parameters(MARIA, ("purpose", "valueCode", "TREAT")), "Parameters.parameter[1]"),
    (parameters(MARIA, ("kind", "valueCode", "postcard")), "Parameters.parameter[1]"),
    (parameters(MARIA, about("NOT-A-LABEL")), "Parameters.parameter[1]"),
    (parameters(MARIA, at("yesterday")), "Parameters.parameter[1]"),
    (parameters(MARIA, ("kind", "valueString", "bill")), "Parameters.parameter[1]"),
    ({"resourceType": "Patient"}, "Parameters"),
])
async def test_a_malformed_question_is_400_naming_the_parameter(client: httpx.AsyncClient, body: dict,
                                                                where: str) -> None:
    response = await client.post("/fhir/Patient/$communication-contact", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == [where]


async def test_two_identifiers_naming_two_people_are_400(client: httpx.AsyncClient, maria: str) -> None:
    await post_request(client, example("phone"))
    response = await client.post("/fhir/Patient/$communication-contact",
                                 json=parameters(MARIA, cin("97112233G")))
    assert response.status_code == 400
