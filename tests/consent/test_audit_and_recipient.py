"""Rule 8's AuditEvent shape, and recipient facts read from Organization / OrganizationAffiliation."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fhir_server.consent.audit import to_audit_event
from fhir_server.consent.decide import decide
from fhir_server.consent.model import Coding, DecisionRequest, Identifier
from fhir_server.consent.recipient import recipient_facts
from fhir_server.fhir.outcome import BadRequest
from tests.consent.builder import ACT_REASON, BASE, NPI, form, party
from tests.consent.cases import ACT

CIN = f"{BASE}/sid/medi-cal-cin"
REQ = DecisionRequest(
    (Identifier(CIN, "91234567A"),),
    (Identifier(NPI, "1111111111"),),
    Coding(ACT_REASON, "TREAT"),
    (Coding(ACT, "42CFRPart2"),),
    date(2025, 3, 1),
)


def test_a_decision_becomes_a_fast_consent_audit_event():
    d = decide(REQ, [form(id="audited")], party("cbo", covered=False, type="cbo"), "1980-01-01")
    ae = to_audit_event(
        d,
        REQ,
        recorded=datetime(2025, 3, 1, 18, 0, tzinfo=UTC),
        base_url="http://h/fhir",
        patient_reference="Patient/p1",
        recipient_reference="Organization/cbo",
    )
    assert ae["resourceType"] == "AuditEvent"
    assert ae["meta"]["profile"] == [
        "http://hl7.org/fhir/us/consent-management/StructureDefinition/FASTConsentAuditEvent"
    ]
    assert ae["type"]["code"] == "110113" and ae["subtype"][0]["code"] == "AuthZ-Consent"
    assert ae["outcome"] == "0" and ae["action"] == "E"
    assert ae["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"
    assert ae["agent"][0]["who"] == {
        "reference": "Organization/cbo",
        "identifier": {"system": NPI, "value": "1111111111"},
    }
    patient, consent, info = ae["entity"]
    assert patient["what"]["reference"] == "Patient/p1" and patient["role"]["code"] == "1"
    assert consent["what"]["reference"] == "http://h/fhir/Consent/audited/_history/1"
    assert info["securityLabel"] == [{"system": ACT, "code": "42CFRPart2"}]
    assert info["detail"] == [{"type": "42CFRPart2", "valueString": "permit"}]


def test_a_deny_without_consent_is_audited_too_with_identifiers_only():
    d = decide(REQ, [], party(None), None)
    ae = to_audit_event(d, REQ, recorded=datetime(2025, 3, 1, tzinfo=UTC), base_url="http://h/fhir")
    assert ae["outcome"] == "8"
    assert [e.get("type", {}).get("code") for e in ae["entity"]] == ["1", "2"]
    assert ae["entity"][0]["what"] == {"identifier": {"system": CIN, "value": "91234567A"}}


ORG = {
    "resourceType": "Organization",
    "id": "org1",
    "identifier": [{"system": NPI, "value": "1111111111"}, {"system": "urn:ein", "value": "95-1"}],
    "type": [{"coding": [{"system": f"{BASE}/CodeSystem/care-partner-type", "code": "health-plan"}]}],
    "extension": [{"url": f"{BASE}/StructureDefinition/covered-entity", "valueBoolean": True}],
    "address": [{"state": "nv"}],
}
AFF = {
    "resourceType": "OrganizationAffiliation",
    "active": True,
    "organization": {"reference": "Organization/ascmi-care-partner-network"},
    "participatingOrganization": {"reference": "Organization/org1"},
    "period": {"start": "2025-01-10", "end": "2025-12-31"},
}


def test_recipient_facts_are_read_from_the_organization_and_its_affiliations():
    f = recipient_facts([Identifier(NPI, "1111111111")], [ORG], [AFF, {**AFF, "active": False, "period": {}}])
    assert f.known and f.covered_entity and f.type == "health-plan" and f.in_state == "NV"
    assert f.organization_ids == ("org1",)
    assert Identifier("urn:ein", "95-1") in f.identifiers
    assert [(m.network_id, m.start, m.end, m.active) for m in f.memberships] == [
        ("ascmi-care-partner-network", date(2025, 1, 10), date(2025, 12, 31), True),
        ("ascmi-care-partner-network", None, None, False),
    ]


def test_an_organization_without_state_is_in_california_and_without_extension_is_not_covered():
    f = recipient_facts([Identifier(NPI, "1")], [{"resourceType": "Organization", "id": "o"}])
    assert f.in_state == "CA" and not f.covered_entity and f.known


def test_identifiers_naming_two_organizations_are_a_400():
    with pytest.raises(BadRequest) as err:
        recipient_facts([Identifier(NPI, "1")], [ORG, {**ORG, "id": "org2"}])
    assert err.value.status == 400 and list(err.value.expression) == ["recipient"]


def test_no_matching_organization_is_an_unknown_recipient():
    f = recipient_facts([Identifier(NPI, "9")], [])
    assert not f.known and not f.covered_entity and f.identifiers == (Identifier(NPI, "9"),)
