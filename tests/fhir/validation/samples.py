"""Resources and conformance resources shared by the validator tests (all built here, none read from disk)."""

from __future__ import annotations

import copy
from typing import Any

from fhir_server.fhir import jsonio

V3_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
LOINC = "http://loinc.org"
SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
EX = "http://example.org/fhir"

_CONSENT = {
    "resourceType": "Consent",
    "id": "c1",
    "text": {
        "status": "generated",
        "div": '<div xmlns="http://www.w3.org/1999/xhtml">Consent to share</div>',
    },
    "extension": [{"url": f"{EX}/StructureDefinition/signature-method", "valueCode": "wet"}],
    "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:6f1c9b02-3c5e-4a7e-9e62-8a4f3b8e0f11"}],
    "status": "active",
    "scope": {"coding": [{"system": SCOPE, "code": "patient-privacy"}]},
    "category": [
        {"coding": [{"system": LOINC, "code": "59284-0"}]},
        {"coding": [{"system": V3_ACT, "code": "IDSCL"}]},
    ],
    "patient": {"reference": "Patient/p1"},
    "dateTime": "2024-05-01T10:00:00-07:00",
    "performer": [{"reference": "Organization/o1"}],
    "organization": [{"reference": "Organization/o1"}],
    "policyRule": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/consentpolicycodes", "code": "hipaa-auth"}
        ]
    },
    "provision": {
        "type": "permit",
        "period": {"start": "2024-05-01", "end": "2025-05-01"},
        "actor": [
            {
                "role": {"coding": [{"system": V3_PARTICIPATION, "code": "IRCP"}]},
                "reference": {"reference": "Organization/o2"},
            }
        ],
        "action": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}
        ],
        "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
        "provision": [
            {"type": "deny", "securityLabel": [{"system": V3_ACT, "code": "HIV"}]},
            {
                "type": "permit",
                "actor": [
                    {
                        "role": {"coding": [{"system": V3_PARTICIPATION, "code": "AUT"}]},
                        "reference": {"reference": "Organization/o3"},
                    }
                ],
            },
        ],
    },
}


def consent() -> dict[str, Any]:
    """A valid ASCMI-like Consent, parsed the way the server parses bodies (decimals as FHIRDecimal)."""
    return jsonio.loads(jsonio.dumps(copy.deepcopy(_CONSENT)))


SIGNATURE_EXTENSION: dict[str, Any] = {
    "resourceType": "StructureDefinition",
    "url": f"{EX}/StructureDefinition/signature-method",
    "name": "SignatureMethod",
    "status": "active",
    "kind": "complex-type",
    "abstract": False,
    "context": [{"type": "element", "expression": "Consent"}],
    "type": "Extension",
    "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
    "derivation": "constraint",
    "differential": {
        "element": [
            {"id": "Extension", "path": "Extension", "max": "1"},
            {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
            {
                "id": "Extension.url",
                "path": "Extension.url",
                "fixedUri": f"{EX}/StructureDefinition/signature-method",
            },
            {
                "id": "Extension.value[x]",
                "path": "Extension.value[x]",
                "min": 1,
                "type": [{"code": "code"}],
                "binding": {"strength": "required", "valueSet": f"{EX}/ValueSet/signature-methods"},
            },
        ]
    },
}

SIGNATURE_CODES: dict[str, Any] = {
    "resourceType": "CodeSystem",
    "url": f"{EX}/CodeSystem/signature-methods",
    "status": "active",
    "content": "complete",
    "concept": [{"code": "wet"}, {"code": "electronic", "concept": [{"code": "typed"}]}],
}

SIGNATURE_VALUES: dict[str, Any] = {
    "resourceType": "ValueSet",
    "url": f"{EX}/ValueSet/signature-methods",
    "status": "active",
    "compose": {"include": [{"system": f"{EX}/CodeSystem/signature-methods"}]},
}

ACTOR_ROLES: dict[str, Any] = {
    "resourceType": "ValueSet",
    "url": f"{EX}/ValueSet/actor-roles",
    "status": "active",
    "compose": {"include": [{"system": V3_PARTICIPATION, "concept": [{"code": "IRCP"}, {"code": "AUT"}]}]},
}

TEST_CONSENT: dict[str, Any] = {
    "resourceType": "StructureDefinition",
    "url": f"{EX}/StructureDefinition/test-consent",
    "name": "TestConsent",
    "status": "active",
    "kind": "resource",
    "abstract": False,
    "type": "Consent",
    "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Consent",
    "derivation": "constraint",
    "differential": {
        "element": [
            {"id": "Consent", "path": "Consent"},
            {
                "id": "Consent.extension",
                "path": "Consent.extension",
                "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"},
            },
            {
                "id": "Consent.extension:signatureMethod",
                "path": "Consent.extension",
                "sliceName": "signatureMethod",
                "min": 1,
                "max": "1",
                "type": [{"code": "Extension", "profile": [SIGNATURE_EXTENSION["url"]]}],
            },
            {"id": "Consent.identifier", "path": "Consent.identifier", "min": 1},
            {"id": "Consent.status", "path": "Consent.status", "fixedCode": "active"},
            {
                "id": "Consent.scope",
                "path": "Consent.scope",
                "patternCodeableConcept": {"coding": [{"system": SCOPE, "code": "patient-privacy"}]},
            },
            {
                "id": "Consent.category",
                "path": "Consent.category",
                "slicing": {"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "open"},
            },
            {
                "id": "Consent.category:ascmi",
                "path": "Consent.category",
                "sliceName": "ascmi",
                "min": 1,
                "max": "1",
                "patternCodeableConcept": {"coding": [{"system": LOINC, "code": "59284-0"}]},
            },
            {
                "id": "Consent.performer",
                "path": "Consent.performer",
                "type": [
                    {
                        "code": "Reference",
                        "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Organization"],
                    }
                ],
            },
            {"id": "Consent.provision", "path": "Consent.provision", "min": 1},
            {
                "id": "Consent.provision.actor.role",
                "path": "Consent.provision.actor.role",
                "binding": {"strength": "required", "valueSet": ACTOR_ROLES["url"]},
            },
            {
                "id": "Consent.provision.actor.role.coding",
                "path": "Consent.provision.actor.role.coding",
                "min": 1,
            },
            {"id": "Consent.provision.purpose", "path": "Consent.provision.purpose", "max": "1"},
        ]
    },
}

CLOSED_CATEGORY_CONSENT: dict[str, Any] = {
    **TEST_CONSENT,
    "url": f"{EX}/StructureDefinition/closed-category-consent",
    "name": "ClosedCategoryConsent",
    "baseDefinition": TEST_CONSENT["url"],
    "differential": {
        "element": [
            {
                "id": "Consent.category",
                "path": "Consent.category",
                "slicing": {"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "closed"},
            },
        ]
    },
}

HELD = [
    SIGNATURE_EXTENSION,
    SIGNATURE_CODES,
    SIGNATURE_VALUES,
    ACTOR_ROLES,
    TEST_CONSENT,
    CLOSED_CATEGORY_CONSENT,
]
