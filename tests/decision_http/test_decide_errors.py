"""``Consent/$decide`` bad input: 400 OperationOutcome whose issue names the parameter (ASCMI.md §4, §5);
an unknown patient is not an error."""

from __future__ import annotations

from typing import Any

import pytest

from tests.decision_http.world import ACT_REASON, CIN, EIN, NPI, RECIPIENTS, World, cin, decide_parameters

pytestmark = pytest.mark.asyncio(loop_scope="module")


def good() -> list[dict[str, Any]]:
    return decide_parameters([(CIN, cin("A"))], RECIPIENTS["CBO"], "TREAT")["parameter"]


def params(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(entries)}


PATIENT, RECIPIENT, PURPOSE = good()

BAD: list[tuple[str, Any, str, str]] = [  # id, body, issue code, expression
    ("not-parameters", {"resourceType": "Patient"}, "structure", "Parameters"),
    ("parameter-not-array", {"resourceType": "Parameters", "parameter": {}}, "structure", "Parameters.parameter"),
    ("patient-missing", params(RECIPIENT, PURPOSE), "required", "patient"),
    ("recipient-missing", params(PATIENT, PURPOSE), "required", "recipient"),
    ("purpose-missing", params(PATIENT, RECIPIENT), "required", "purpose"),
    ("unknown-parameter", params(PATIENT, RECIPIENT, PURPOSE, {"name": "actor", "valueString": "x"}),
     "not-supported", "Parameters.parameter[3]"),
    ("patient-wrong-type", params({"name": "patient", "valueString": "A"}, RECIPIENT, PURPOSE), "invalid",
     "Parameters.parameter[0]"),
    ("patient-identifier-without-value", params({"name": "patient", "valueIdentifier": {"system": CIN}},
                                                RECIPIENT, PURPOSE), "invalid", "Parameters.parameter[0]"),
    ("recipient-wrong-type", params(PATIENT, {"name": "recipient", "valueReference": {"reference": "Organization/x"}},
                                    PURPOSE), "invalid", "Parameters.parameter[1]"),
    ("purpose-twice", params(PATIENT, RECIPIENT, PURPOSE, PURPOSE), "invalid", "Parameters.parameter[3]"),
    ("purpose-unknown-code", params(PATIENT, RECIPIENT, {"name": "purpose", "valueCoding": {
        "system": ACT_REASON, "code": "ETREAT"}}), "code-invalid", "Parameters.parameter[2]"),
    ("purpose-as-code", params(PATIENT, RECIPIENT, {"name": "purpose", "valueCode": "TREAT"}), "invalid",
     "Parameters.parameter[2]"),
    ("label-unknown", params(PATIENT, RECIPIENT, PURPOSE, {"name": "label", "valueCoding": {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "TABOO"}}), "code-invalid",
     "Parameters.parameter[3]"),
    ("label-wrong-system", params(PATIENT, RECIPIENT, PURPOSE, {"name": "label", "valueCoding": {
        "system": "urn:other", "code": "MH"}}), "code-invalid", "Parameters.parameter[3]"),
    ("label-without-code", params(PATIENT, RECIPIENT, PURPOSE, {"name": "label", "valueCoding": {}}), "invalid",
     "Parameters.parameter[3]"),
    ("time-not-a-datetime", params(PATIENT, RECIPIENT, PURPOSE, {"name": "time", "valueDateTime": "yesterday"}),
     "invalid", "Parameters.parameter[3]"),
    ("time-twice", params(PATIENT, RECIPIENT, PURPOSE, {"name": "time", "valueDateTime": "2026-01-01"},
                          {"name": "time", "valueDateTime": "2026-01-02"}), "invalid", "Parameters.parameter[4]"),
    ("two-patients", params(PATIENT, {"name": "patient", "valueIdentifier": {"system": CIN, "value": cin("B")}},
                            RECIPIENT, PURPOSE), "invalid", "patient"),
    ("two-recipients", params(PATIENT, RECIPIENT, {"name": "recipient", "valueIdentifier": {
        "system": NPI, "value": "1000000001"}}, PURPOSE), "invalid", "recipient"),
]


@pytest.mark.parametrize(("name", "body", "code", "expression"), BAD, ids=[b[0] for b in BAD])
async def test_bad_parameters_are_400_naming_the_parameter(world: World, name: str, body: Any, code: str,
                                                           expression: str) -> None:
    r = await world.client.post("/fhir/Consent/$decide", json=body)
    assert r.status_code == 400, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert (issue["severity"], issue["code"]) == ("error", code)
    assert issue["expression"] == [expression]


async def test_body_that_is_not_json_is_400(world: World) -> None:
    r = await world.client.post("/fhir/Consent/$decide", content=b"{",
                                headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_get_is_not_how_decide_is_called(world: World) -> None:
    r = await world.client.get("/fhir/Consent/$decide")
    assert r.status_code in (400, 405)
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_unknown_patient_is_a_decision_not_an_error(world: World) -> None:
    r = await world.client.post("/fhir/Consent/$decide", json=decide_parameters(
        [("urn:nobody", "n-1")], [(EIN, "00-0000000")], "COC", ("MH",)))
    assert r.status_code == 200
    out = {p["name"]: p for p in r.json()["parameter"] if p["name"] != "reason" and p["name"] != "label-decision"}
    assert out["consentOnFile"]["valueBoolean"] is False
    assert (out["decision"]["valueCode"], out["basis"]["valueCode"]) == ("deny", "no-consent")
    assert "consent" not in out


async def test_labels_without_system_are_read_by_code(world: World) -> None:
    body = params(PATIENT, RECIPIENT, PURPOSE, {"name": "label", "valueCoding": {"code": "MH"}},
                  {"name": "time", "valueDateTime": "2026-01-15"})
    r = await world.client.post("/fhir/Consent/$decide", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["parameter"][0] == {"name": "decision", "valueCode": "permit"}
