"""Each category's labels come from ICD-10-CM, SNOMED CT, LOINC and RxNorm codes on the elements each type
carries them in (docs/labels.md), are stored in ``meta.security`` and are searchable with ``_security``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.labels.support import ACT, ICD, LABELS, LOINC, PATIENT, RX, SCT, cc, codes_of, found_by_label, post, stored


def condition(system: str, code: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "subject": PATIENT, "code": cc(system, code)}


def observation(system: str, code: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "subject": PATIENT, "code": cc(system, code)}


def medication_request(code: str) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": PATIENT,
            "medicationCodeableConcept": cc(RX, code)}


def encounter_reason(system: str, code: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "status": "finished", "subject": PATIENT,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "reasonCode": [cc(SCT, "185349003"), cc(system, code)]}


CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("substance-use", "ICD-10-CM descendant with a dot", condition(ICD, "F10.20")),
    ("substance-use", "ICD-10-CM descendant without the dot", condition(ICD, "F1120")),
    ("substance-use", "ICD-10-CM range end", condition(ICD, "F19.99")),
    ("substance-use", "LOINC AUDIT-C", observation(LOINC, "75626-2")),
    ("substance-use", "RxNorm buprenorphine", medication_request("1819")),
    ("substance-use", "RxNorm methadone statement",
     {"resourceType": "MedicationStatement", "status": "active", "subject": PATIENT,
      "medicationCodeableConcept": cc(RX, "6813")}),
    ("substance-use", "SNOMED reason of a Procedure",
     {"resourceType": "Procedure", "status": "completed", "subject": PATIENT, "code": cc(SCT, "387713003"),
      "reasonCode": [cc(SCT, "7200002")]}),
    ("mental-health", "ICD-10-CM F32.9", condition(ICD, "F32.9")),
    ("mental-health", "ICD-10-CM F99 itself", condition(ICD, "F99")),
    ("mental-health", "ICD-10-CM F50.01", condition(ICD, "F50.01")),
    ("mental-health", "LOINC PHQ-9 total", observation(LOINC, "44261-6")),
    ("mental-health", "SNOMED answer in valueCodeableConcept",
     {**observation(LOINC, "75310-3"), "valueCodeableConcept": cc(SCT, "35489007")}),
    ("mental-health", "LOINC in a component",
     {**observation(LOINC, "11111-1"), "component": [{"code": cc(LOINC, "55758-7"), "valueInteger": 3}]}),
    ("mental-health", "RxNorm lithium", medication_request("6448")),
    ("mental-health", "ICD-10-CM reason of an Encounter", encounter_reason(ICD, "F41.1")),
    ("hiv", "ICD-10-CM B20", condition(ICD, "B20")),
    ("hiv", "ICD-10-CM Z21", condition(ICD, "Z21")),
    ("hiv", "ICD-10-CM O98.711 below O98.7", condition(ICD, "O98.711")),
    ("hiv", "LOINC HIV Ag/Ab test", observation(LOINC, "75622-1")),
    ("hiv", "RxNorm dolutegravir", medication_request("1433868")),
    ("hiv", "SNOMED conclusion of a DiagnosticReport",
     {"resourceType": "DiagnosticReport", "status": "final", "subject": PATIENT, "code": cc(LOINC, "11502-2"),
      "conclusionCode": [cc(SCT, "86406008")]}),
    ("hiv", "ICD-10-CM reason of an Immunization",
     {"resourceType": "Immunization", "status": "completed", "patient": PATIENT,
      "vaccineCode": cc("http://hl7.org/fhir/sid/cvx", "33"), "occurrenceDateTime": "2026-01-01",
      "reasonCode": [cc(ICD, "B20")]}),
    ("sti", "ICD-10-CM A54.9", condition(ICD, "A54.9")),
    ("sti", "ICD-10-CM A64", condition(ICD, "A64")),
    ("sti", "LOINC gonorrhoea NAA", observation(LOINC, "43305-2")),
    ("sti", "LOINC RPR ordered",
     {"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": PATIENT,
      "code": cc(LOINC, "20507-0")}),
    ("sti", "SNOMED syphilis", condition(SCT, "76272004")),
    ("reproductive-health", "ICD-10-CM Z30.09", condition(ICD, "Z30.09")),
    ("reproductive-health", "ICD-10-CM O03.9 reason of an Encounter", encounter_reason(ICD, "O03.9")),
    ("reproductive-health", "SNOMED termination of pregnancy",
     {"resourceType": "Procedure", "status": "completed", "subject": PATIENT, "code": cc(SCT, "386639001")}),
    ("reproductive-health", "LOINC pregnancy test", observation(LOINC, "2106-3")),
    ("reproductive-health", "RxNorm levonorgestrel", medication_request("6373")),
    ("gender-affirming-care", "ICD-10-CM Z87.890", condition(ICD, "Z87.890")),
    ("gender-affirming-care", "SNOMED gender dysphoria", condition(SCT, "93461009")),
    ("intimate-partner-violence", "ICD-10-CM T74.11XA", condition(ICD, "T74.11XA")),
    ("intimate-partner-violence", "ICD-10-CM T76.31XD", condition(ICD, "T76.31XD")),
    ("intimate-partner-violence", "ICD-10-CM Y07.01 reason of an Encounter", encounter_reason(ICD, "Y07.01")),
    ("intimate-partner-violence", "LOINC HARK", observation(LOINC, "76499-3")),
    ("intimate-partner-violence", "SNOMED victim of intimate partner abuse", condition(SCT, "706893006")),
]


@pytest.mark.parametrize(("category", "resource"), [(c, r) for c, _, r in CASES],
                         ids=[f"{c}: {n}" for c, n, _ in CASES])
async def test_codes_imply_their_categorys_labels_on_create(client: httpx.AsyncClient, category: str,
                                                           resource: dict[str, Any]) -> None:
    created = await post(client, resource)
    assert codes_of(created) == LABELS[category]
    assert codes_of(await stored(client, created)) == LABELS[category]


async def test_labels_are_searchable_with_security(client: httpx.AsyncClient) -> None:
    hiv = await post(client, condition(ICD, "B20"))
    mh = await post(client, condition(ICD, "F32.9"))
    plain = await post(client, condition(ICD, "J06.9"))
    assert await found_by_label(client, "Condition", "HIV") == {hiv["id"]}
    assert await found_by_label(client, "Condition", "PSY") == {mh["id"]}
    response = await client.get("/fhir/Condition", params={"_security:not": f"{ACT}|HIV"})
    assert {e["resource"]["id"] for e in response.json()["entry"]} == {mh["id"], plain["id"]}


async def test_f64_is_gender_affirming_care_and_mental_health_as_the_table_says(client: httpx.AsyncClient) -> None:
    created = await post(client, condition(ICD, "F64.0"))
    assert codes_of(created) == LABELS["gender-affirming-care"] | LABELS["mental-health"]


async def test_codes_of_several_categories_add_every_categorys_labels(client: httpx.AsyncClient) -> None:
    resource = condition(ICD, "B20")
    resource["evidence"] = [{"code": [cc(ICD, "F11.20")]}]
    created = await post(client, resource)
    assert codes_of(created) == LABELS["hiv"] | LABELS["substance-use"]


NEGATIVES = [
    ("just below F10", condition(ICD, "F09")),
    ("the F49 gap", condition(ICD, "F49")),
    ("intellectual disability F70 is outside the ranges", condition(ICD, "F70")),
    ("A65 after the STI range", condition(ICD, "A65")),
    ("O09 after O08", condition(ICD, "O09.90")),
    ("T74.0 before T74.1", condition(ICD, "T74.01XA")),
    ("T74.4 after T74.3", condition(ICD, "T74.4XXA")),
    ("O98.6 next to O98.7", condition(ICD, "O98.611")),
    ("an ICD-10-CM code under another system", condition(SCT, "F10.20")),
    ("a code in an element not read (Condition.note)",
     {**condition(ICD, "J06.9"), "note": [{"text": "B20"}], "bodySite": [cc(ICD, "B20")]}),
    ("a type whose codes are not read", {"resourceType": "Patient", "maritalStatus": cc(ICD, "B20")}),
    ("a consent form's DocumentReference",
     {"resourceType": "DocumentReference", "status": "current", "subject": PATIENT,
      "type": cc(LOINC, "64292-6"), "category": [cc(ICD, "B20")],
      "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}]}),
]


@pytest.mark.parametrize("resource", [r for _, r in NEGATIVES], ids=[n for n, _ in NEGATIVES])
async def test_codes_outside_the_value_sets_add_no_label(client: httpx.AsyncClient, resource: dict[str, Any]) -> None:
    created = await post(client, resource)
    assert "security" not in created.get("meta", {})
