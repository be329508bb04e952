"""External code systems and fixed codes the ASCMI mapping writes (HL7, LOINC, ISO).

Only URIs and codes fixed by FHIR or by ASCMI.md §3 live here; every list a form revision may change
(categories, purposes, Care Partner types, labels) is data in ``profiles/`` and ``mappings/``.
"""

from __future__ import annotations

from typing import Any

LOINC = "http://loinc.org"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
V3_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
V3_DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
V3_ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
PROVENANCE_AGENT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
ORGANIZATION_ROLE = "http://hl7.org/fhir/organization-role"
SIGNATURE_TYPE = "urn:iso-astm:E1762-95:2013"
BCP47 = "urn:ietf:bcp:47"
NPI = "http://hl7.org/fhir/sid/us-npi"


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [coding(system, code, display)]}


RELEASE_OF_INFORMATION = coding(LOINC, "64292-6", "Release of information consent")
PATIENT_PRIVACY = concept(CONSENT_SCOPE, "patient-privacy", "Privacy Consent")
INFORMATION_RECIPIENT = concept(V3_PARTICIPATION, "IRCP", "information recipient")
ACCESS_AND_DISCLOSE = [
    concept(CONSENT_ACTION, "access", "Access"),
    concept(CONSENT_ACTION, "disclose", "Disclose"),
]
MEDICAID_NUMBER = concept(V2_0203, "MA", "Patient Medicaid number")
CONSENT_SIGNATURE = coding(SIGNATURE_TYPE, "1.2.840.10065.1.12.1.7", "Consent Signature")
ACTIVITY_CREATE = concept(V3_DATA_OPERATION, "CREATE", "create")
ACTIVITY_UPDATE = concept(V3_DATA_OPERATION, "UPDATE", "revise")
AGENT_CUSTODIAN = concept(PROVENANCE_AGENT_TYPE, "custodian", "Custodian")
AGENT_ATTESTER = concept(PROVENANCE_AGENT_TYPE, "attester", "Attester")
NETWORK_MEMBER = concept(ORGANIZATION_ROLE, "member", "Member")
