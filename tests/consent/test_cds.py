"""``patient-consent-consult``: discovery, request parsing and the LEAP-shaped card."""

from __future__ import annotations

import pytest

from fhir_server.consent.cds import discovery, parse_cds_request, to_cds_response
from fhir_server.consent.decide import decide
from fhir_server.fhir.outcome import BadRequest
from tests.consent.builder import BASE, NPI, form, party
from tests.consent.cases import ACT, CONF

CIN = f"{BASE}/sid/medi-cal-cin"
BASE_URL = "https://fhir.example.org/fhir"


def consult(purpose=("TREAT",), content=None, **ctx_extra) -> dict:
    ctx = {
        "patientId": [{"system": CIN, "value": "91234567A"}],
        "actor": [{"system": NPI, "value": "1111111111"}],
        "purposeOfUse": list(purpose),
        "category": ["http://loinc.org|64292-6"],
        **ctx_extra,
    }
    if content is not None:
        ctx["content"] = content
    return {"hook": "patient-consent-consult", "hookInstance": "abc", "context": ctx}


def bundle(*label_sets: tuple[tuple[str, str], ...]) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "meta": {"security": [{"system": s, "code": c} for s, c in ls]},
                }
            }
            for ls in label_sets
        ],
    }


def answer(body: dict, consents, recipient, time="2025-03-01"):
    from datetime import date

    c = parse_cds_request(body)
    reqs = [
        r.__class__(r.patient, r.recipient, r.purpose, r.labels, date.fromisoformat(time)) for r in c.requests
    ]
    return to_cds_response([decide(r, consents, recipient, "1980-01-01") for r in reqs], BASE_URL)


def test_discovery_lists_the_patient_consent_consult_service():
    services = discovery()["services"]
    assert [(s["hook"], s["id"]) for s in services] == [
        ("patient-consent-consult", "patient-consent-consult")
    ]


def test_labels_come_from_the_content_meta_security_and_unlabelled_resources_are_general_health():
    body = consult(
        content=bundle(((ACT, "HIV"), ("http://terminology.hl7.org/CodeSystem/v3-ActReason", "HTEST")), ())
    )
    req = parse_cds_request(body).requests[0]
    assert [(lab.system, lab.code) for lab in req.labels] == [(ACT, "HIV"), (CONF, "N")]


def test_no_content_means_general_health():
    assert parse_cds_request(consult()).requests[0].labels == ()


def test_a_single_purpose_string_is_accepted_and_several_make_one_request_each():
    body = consult()
    body["context"]["purposeOfUse"] = "TREAT"
    assert [r.purpose.code for r in parse_cds_request(body).requests] == ["TREAT"]
    assert [r.purpose.code for r in parse_cds_request(consult(("TREAT", "HPAYMT"))).requests] == [
        "TREAT",
        "HPAYMT",
    ]


BAD = [
    ("a_body_that_is_not_an_object_is_rejected", [], "$"),
    ("another_hook_is_rejected", {**consult(), "hook": "patient-view"}, "hook"),
    ("a_missing_context_is_rejected", {"hook": "patient-consent-consult"}, "context"),
    (
        "a_missing_patient_id_is_rejected",
        {"context": {"actor": [{"system": NPI, "value": "1"}], "purposeOfUse": ["TREAT"]}},
        "context.patientId",
    ),
    ("an_actor_without_value_is_rejected", consult(actor=[{"system": NPI}]), "context.actor[0]"),
    ("an_unknown_purpose_is_rejected", consult(("MARKT",)), "context.purposeOfUse[0]"),
    ("an_empty_purpose_list_is_rejected", consult(()), "context.purposeOfUse"),
    (
        "content_that_is_not_a_bundle_is_rejected",
        consult(content={"resourceType": "Observation"}),
        "context.content",
    ),
]


@pytest.mark.parametrize(("body", "where"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_malformed_consult_is_a_400(body, where):
    with pytest.raises(BadRequest) as err:
        parse_cds_request(body)
    assert err.value.status == 400 and err.value.code == "invalid"
    assert list(err.value.expression) == [where]


def test_without_a_consent_on_file_the_card_says_no_consent_even_when_the_floor_permits():
    card = answer(consult(), [], party("clinic"))["cards"][0]
    assert card["summary"] == "NO_CONSENT"
    assert card["extension"]["decision"] == "NO_CONSENT"
    assert card["extension"]["outcome"] == "permit" and card["extension"]["basis"] == "legal-floor"
    assert "basedOn" not in card["extension"]


def test_some_labels_denied_is_a_permit_with_one_redact_listing_them():
    consent = form(id="cds-mixed", share=("general-health", "hiv"))
    body = consult(content=bundle(((ACT, "HIV"),), ((ACT, "MH"),), ((ACT, "PSYTHPN"),), ()))
    card = answer(body, [consent], party("cbo", covered=False, type="cbo"))["cards"][0]
    ext = card["extension"]
    assert card["summary"] == "CONSENT_PERMIT" and ext["decision"] == "CONSENT_PERMIT"
    assert ext["outcome"] == "permit" and ext["basis"] == "consent"
    assert ext["basedOn"] == f"{BASE_URL}/Consent/cds-mixed/_history/1"
    redact = [o for o in ext["obligations"] if o["id"]["code"] == "REDACT"]
    assert len(redact) == 1
    assert redact[0]["parameters"]["codes"] == [
        {"system": ACT, "code": "MH"},
        {"system": ACT, "code": "PSYTHPN"},
    ]
    assert [o["id"]["code"] for o in ext["obligations"]] == ["REDACT", "NORDSCLCD"]


def test_all_labels_denied_is_a_consent_deny_without_obligations():
    consent = form(id="cds-none", share=())
    card = answer(consult(content=bundle(((ACT, "HIV"),))), [consent], party("clinic"))["cards"][0]
    assert card["summary"] == "CONSENT_DENY"
    assert card["extension"]["outcome"] == "deny" and card["extension"]["basis"] == "consent"
    assert card["extension"]["obligations"] == []


def test_with_several_purposes_the_most_permissive_answer_wins():
    consent = form(id="cds-treat", share=("substance-use-part2",), purposes=("TREAT",))
    body = consult(("HPAYMT", "TREAT"), content=bundle(((ACT, "42CFRPart2"),)))
    card = answer(body, [consent], party("cbo", covered=False, type="cbo"))["cards"][0]
    assert card["extension"]["outcome"] == "permit"
    assert [o["id"]["code"] for o in card["extension"]["obligations"]] == ["42CFRPart2", "NORDSCLCD"]
