"""Rule 8: the AuditEvent every decision leaves (permit or deny), for the HTTP layer to store.

Shape: HL7 FAST Consent ``FASTConsentAuditEvent`` (what ``$recordDisclosure`` records), which derives from the
IHE BALP ``AuthZconsent`` pattern: type DICOM 110113 "Security Alert", subtype BALP ``AuthZ-Consent``, action
``E``, outcome ``0`` for a permit and ``8`` for a deny (as BALP's deny example), ``purposeOfEvent`` = P;
agent = the recipient (information recipient, requestor); entities = the patient (role Patient), the governing
Consent version (type Consent) when one governed, and the information asked about (its security labels, one
``detail`` per label with that label's decision). Identifiers travel beside references, as FAST requires for
participants, so the event stays meaningful on another server. A patient's disclosure list is then
``AuditEvent?patient=Patient/<id>`` or ``AuditEvent?entity=Consent/<id>``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir_server.consent.model import Decision, DecisionRequest
from fhir_server.consent.parameters import versioned_url

FAST_PROFILE = "http://hl7.org/fhir/us/consent-management/StructureDefinition/FASTConsentAuditEvent"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
BALP_SUBTYPE = "https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"


def _who(reference: str | None, identifiers: list[dict[str, Any]]) -> dict[str, Any]:
    who: dict[str, Any] = {}
    if reference:
        who["reference"] = reference
    if identifiers:
        who["identifier"] = identifiers[0]
    if len(identifiers) > 1:
        who["extension"] = [
            {"url": "http://hl7.org/fhir/StructureDefinition/additionalIdentifier", "valueIdentifier": i}
            for i in identifiers[1:]
        ]
    return who


def to_audit_event(
    decision: Decision,
    request: DecisionRequest,
    *,
    recorded: datetime,
    base_url: str,
    patient_reference: str | None = None,
    recipient_reference: str | None = None,
    observer: str = "ASCMI consent decision service",
) -> dict[str, Any]:
    """The FAST/BALP AuthZ-Consent AuditEvent for one decision.

    ``patient_reference``/``recipient_reference`` are ``Patient/<id>`` / ``Organization/<id>`` when the store
    knows them (an unknown patient or recipient is recorded by identifier only); ``recorded`` is an aware
    datetime.
    """
    when = recorded.isoformat()
    purpose = request.purpose.to_json()
    permit = decision.decision == "permit"
    entity: list[dict[str, Any]] = [
        {
            "what": _who(patient_reference, [i.to_json() for i in request.patient]),
            "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
            "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
        }
    ]
    if decision.consent is not None:
        entity.append(
            {
                "what": {"reference": versioned_url(base_url, decision.consent.reference)},
                "type": {
                    "system": "http://hl7.org/fhir/resource-types",
                    "code": "Consent",
                    "display": "Consent",
                },
                "description": "the consent in force at the decision's time",
            }
        )
    entity.append(
        {
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "description": f"information requested on {decision.date.isoformat()} (basis {decision.basis})",
            "securityLabel": [ld.label.to_json() for ld in decision.label_decisions],
            "detail": [
                {"type": ld.label.code, "valueString": ld.decision} for ld in decision.label_decisions
            ],
        }
    )
    return {
        "resourceType": "AuditEvent",
        "meta": {"profile": [FAST_PROFILE]},
        "type": {"system": DCM, "code": "110113", "display": "Security Alert"},
        "subtype": [
            {
                "system": BALP_SUBTYPE,
                "code": "AuthZ-Consent",
                "display": "Authorization Decision using Roles and Consent",
            }
        ],
        "action": "E",
        "period": {"start": when, "end": when},
        "recorded": when,
        "outcome": "0" if permit else "8",
        "outcomeDesc": f"{decision.decision} (basis {decision.basis}, consent on file: "
        f"{'yes' if decision.consent_on_file else 'no'})",
        "purposeOfEvent": [{"coding": [purpose]}],
        "agent": [
            {
                "type": {
                    "coding": [{"system": PARTICIPATION, "code": "IRCP", "display": "information recipient"}]
                },
                "who": _who(recipient_reference, [i.to_json() for i in request.recipient]),
                "requestor": True,
                "purposeOfUse": [{"coding": [purpose]}],
            }
        ],
        "source": {
            "observer": {"display": observer},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
        "entity": entity,
    }
