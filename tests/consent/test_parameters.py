"""``Consent/$decide`` Parameters in and out: shapes and the 400s that name the parameter."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from fhir_server.consent.decide import decide
from fhir_server.consent.model import Coding
from fhir_server.consent.parameters import parse_parameters, to_parameters
from fhir_server.fhir.outcome import BadRequest
from tests.consent.builder import BASE, NPI, form, party
from tests.consent.cases import ACT, CONF

CIN = f"{BASE}/sid/medi-cal-cin"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


def params(*entries: dict) -> dict:
    return {"resourceType": "Parameters", "parameter": list(entries)}


PATIENT = {"name": "patient", "valueIdentifier": {"system": CIN, "value": "91234567A"}}
RECIPIENT = {"name": "recipient", "valueIdentifier": {"system": NPI, "value": "1111111111"}}
PURPOSE = {"name": "purpose", "valueCoding": {"system": ACT_REASON, "code": "TREAT"}}


def label(code: str, system: str = ACT) -> dict:
    return {"name": "label", "valueCoding": {"system": system, "code": code}}


def test_a_full_request_parses_into_a_decision_request():
    req = parse_parameters(
        params(
            PATIENT,
            RECIPIENT,
            PURPOSE,
            label("MH"),
            label("N", CONF),
            {"name": "time", "valueDateTime": "2025-03-01"},
        )
    )
    assert req.patient[0].value == "91234567A" and req.recipient[0].system == NPI
    assert req.purpose == Coding(ACT_REASON, "TREAT")
    assert [lab.code for lab in req.labels] == ["MH", "N"]
    assert req.time == date(2025, 3, 1)


def test_a_datetime_with_offset_parses_as_an_aware_instant():
    req = parse_parameters(
        params(PATIENT, RECIPIENT, PURPOSE, {"name": "time", "valueDateTime": "2025-03-01T10:00:00-08:00"})
    )
    assert isinstance(req.time, datetime) and req.time.tzinfo is not None


def test_the_local_social_services_purpose_is_accepted():
    purpose = {
        "name": "purpose",
        "valueCoding": {"system": f"{BASE}/CodeSystem/ascmi-purpose", "code": "social-services"},
    }
    assert parse_parameters(params(PATIENT, RECIPIENT, purpose)).purpose.code == "social-services"


BAD = [
    ("a_body_that_is_not_parameters_is_rejected", {"resourceType": "Bundle"}, "Parameters", "structure"),
    ("a_missing_patient_is_rejected", params(RECIPIENT, PURPOSE), "patient", "required"),
    ("a_missing_recipient_is_rejected", params(PATIENT, PURPOSE), "recipient", "required"),
    ("a_missing_purpose_is_rejected", params(PATIENT, RECIPIENT), "purpose", "required"),
    (
        "two_purposes_are_rejected",
        params(PATIENT, RECIPIENT, PURPOSE, PURPOSE),
        "Parameters.parameter[3]",
        "invalid",
    ),
    (
        "an_unknown_purpose_code_is_rejected",
        params(
            PATIENT, RECIPIENT, {"name": "purpose", "valueCoding": {"system": ACT_REASON, "code": "MARKT"}}
        ),
        "Parameters.parameter[2]",
        "code-invalid",
    ),
    (
        "an_unknown_label_is_rejected",
        params(PATIENT, RECIPIENT, PURPOSE, label("TBOO")),
        "Parameters.parameter[3]",
        "code-invalid",
    ),
    (
        "an_unknown_parameter_name_is_rejected",
        params(PATIENT, RECIPIENT, PURPOSE, {"name": "labels", "valueString": "x"}),
        "Parameters.parameter[3]",
        "not-supported",
    ),
    (
        "a_patient_given_as_a_string_is_rejected",
        params({"name": "patient", "valueString": "91234567A"}, RECIPIENT, PURPOSE),
        "Parameters.parameter[0]",
        "invalid",
    ),
    (
        "an_identifier_without_value_is_rejected",
        params({"name": "patient", "valueIdentifier": {"system": CIN}}, RECIPIENT, PURPOSE),
        "Parameters.parameter[0]",
        "invalid",
    ),
    (
        "a_time_that_is_not_a_datetime_is_rejected",
        params(PATIENT, RECIPIENT, PURPOSE, {"name": "time", "valueDateTime": "yesterday"}),
        "Parameters.parameter[3]",
        "invalid",
    ),
    (
        "a_parameter_array_that_is_not_an_array_is_rejected",
        {"resourceType": "Parameters", "parameter": {}},
        "Parameters.parameter",
        "structure",
    ),
]


@pytest.mark.parametrize(("body", "where", "code"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_parameters_are_a_400_naming_the_parameter(body, where, code):
    with pytest.raises(BadRequest) as err:
        parse_parameters(body)
    assert err.value.status == 400
    assert err.value.code == code
    assert where in err.value.expression
    assert err.value.outcome()["issue"][0]["expression"] == [where]


def test_the_answer_is_a_parameters_resource_in_the_contract_shape():
    consent = form(id="shape", share=("general-health", "substance-use-part2", "hiv"))
    req = parse_parameters(
        params(
            PATIENT,
            RECIPIENT,
            PURPOSE,
            label("42CFRPart2"),
            label("HIV"),
            {"name": "time", "valueDateTime": "2025-03-01"},
        )
    )
    d = decide(req, [consent], party("cbo", covered=False, type="cbo"), "1980-01-01")
    out = to_parameters(d, "https://fhir.example.org/fhir/")
    assert out["resourceType"] == "Parameters"
    by_name: dict[str, list] = {}
    for p in out["parameter"]:
        by_name.setdefault(p["name"], []).append(p)
    assert by_name["decision"] == [{"name": "decision", "valueCode": "permit"}]
    assert by_name["consentOnFile"] == [{"name": "consentOnFile", "valueBoolean": True}]
    assert by_name["basis"] == [{"name": "basis", "valueCode": "consent"}]
    assert by_name["consent"][0]["valueReference"]["reference"] == (
        "https://fhir.example.org/fhir/Consent/shape/_history/1"
    )
    assert all(isinstance(r["valueString"], str) and r["valueString"] for r in by_name["reason"])
    assert [o["valueCoding"]["code"] for o in by_name["obligation"]] == ["42CFRPart2", "NORDSCLCD"]
    assert [
        [(part["name"], part.get("valueCode") or part["valueCoding"]["code"]) for part in ld["part"]]
        for ld in by_name["label-decision"]
    ] == [[("label", "42CFRPart2"), ("decision", "permit")], [("label", "HIV"), ("decision", "permit")]]


def test_a_patient_without_consent_gets_no_consent_reference_and_a_label_decision_for_n():
    req = parse_parameters(params(PATIENT, RECIPIENT, PURPOSE))
    d = decide(req, [], party(None), None)
    out = to_parameters(d, "http://x/fhir")
    names = [p["name"] for p in out["parameter"]]
    assert "consent" not in names and "obligation" not in names
    assert {"name": "consentOnFile", "valueBoolean": False} in out["parameter"]
    ld = [p for p in out["parameter"] if p["name"] == "label-decision"]
    assert ld[0]["part"][0]["valueCoding"] == {"system": CONF, "code": "N"}
    assert ld[0]["part"][1] == {"name": "decision", "valueCode": "deny"}
