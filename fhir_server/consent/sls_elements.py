"""Which elements of which resource types carry the clinical codes labelling reads (ACCESS.md §C).

Kept as tables (documented in docs/labels.md) rather than FHIRPath so that reading them costs a few dict
look-ups: a path is a dotted walk through objects and arrays that ends at a CodeableConcept or a Coding.
A type that is not listed is never labelled from its codes and never inherits Part 2 — consent records
(Consent, Provenance, RelatedPerson, a form's DocumentReference), Patient, Organization, conformance resources
and AuditEvent stay unlabelled: they are identity, directory or policy data, not health information.

>>> CODE_PATHS["Observation"][:2]
(('code',), ('category',))
"""

from __future__ import annotations

LOINC = "http://loinc.org"

_CODES: dict[str, tuple[str, ...]] = {
    "AllergyIntolerance": ("code", "reaction.substance", "reaction.manifestation"),
    "AdverseEvent": ("event",),
    "Appointment": ("serviceType", "specialty", "appointmentType", "reasonCode"),
    "CarePlan": ("category", "activity.detail.code", "activity.detail.reasonCode",
                 "activity.detail.productCodeableConcept"),
    "CareTeam": ("category", "reasonCode"),
    "Claim": ("diagnosis.diagnosisCodeableConcept", "procedure.procedureCodeableConcept", "item.productOrService"),
    "ClinicalImpression": ("code", "finding.itemCodeableConcept", "investigation.code"),
    "Communication": ("category", "reasonCode", "topic"),
    "CommunicationRequest": ("category", "reasonCode"),
    "Composition": ("type", "category", "section.code", "event.code"),
    "Condition": ("code", "category", "evidence.code", "stage.summary"),
    "DetectedIssue": ("code",),
    "DeviceRequest": ("codeCodeableConcept", "reasonCode"),
    "DeviceUseStatement": ("reasonCode",),
    "DiagnosticReport": ("code", "category", "conclusionCode"),
    "DocumentReference": ("type", "category", "context.event", "context.practiceSetting"),
    "Encounter": ("type", "serviceType", "reasonCode"),
    "EpisodeOfCare": ("type",),
    "ExplanationOfBenefit": ("diagnosis.diagnosisCodeableConcept", "procedure.procedureCodeableConcept",
                             "item.productOrService"),
    "Flag": ("code", "category"),
    "Goal": ("description", "category"),
    "ImagingStudy": ("procedureCode", "reasonCode"),
    "Immunization": ("vaccineCode", "reasonCode"),
    "ImmunizationRecommendation": ("recommendation.vaccineCode", "recommendation.targetDisease"),
    "List": ("code",),
    "Media": ("reasonCode",),
    "Medication": ("code", "ingredient.itemCodeableConcept"),
    "MedicationAdministration": ("medicationCodeableConcept", "reasonCode"),
    "MedicationDispense": ("medicationCodeableConcept",),
    "MedicationRequest": ("medicationCodeableConcept", "reasonCode"),
    "MedicationStatement": ("medicationCodeableConcept", "reasonCode"),
    "Observation": ("code", "category", "valueCodeableConcept", "component.code", "component.valueCodeableConcept"),
    "Procedure": ("code", "category", "reasonCode", "complication"),
    "RiskAssessment": ("code", "prediction.outcome", "reasonCode"),
    "ServiceRequest": ("code", "category", "reasonCode", "orderDetail"),
    "Specimen": ("type",),
    "Task": ("code", "reasonCode"),
}

# References whose target's inferred labels this resource inherits: an Encounter whose diagnosis is an HIV
# Condition discloses the diagnosis as surely as the Condition does.
_INHERITS: dict[str, tuple[str, ...]] = {
    "Encounter": ("diagnosis.condition", "reasonReference"),
    "EpisodeOfCare": ("diagnosis.condition",),
    "MedicationRequest": ("reasonReference",),
    "MedicationStatement": ("reasonReference",),
    "MedicationAdministration": ("reasonReference",),
    "Procedure": ("reasonReference",),
    "ServiceRequest": ("reasonReference",),
    "CarePlan": ("addresses",),
    "Goal": ("addresses",),
    "Claim": ("diagnosis.diagnosisReference",),
    "ExplanationOfBenefit": ("diagnosis.diagnosisReference",),
}

# Who wrote it: an Organization reference here that is a ``part2-program`` makes the resource a Part 2 record.
_AUTHORS: dict[str, tuple[str, ...]] = {
    "AllergyIntolerance": ("recorder", "asserter"),
    "CarePlan": ("author", "contributor"),
    "CareTeam": ("managingOrganization",),
    "Claim": ("provider",),
    "ClinicalImpression": ("assessor",),
    "Communication": ("sender",),
    "CommunicationRequest": ("sender", "requester"),
    "Composition": ("author", "custodian"),
    "Condition": ("recorder", "asserter"),
    "DiagnosticReport": ("performer", "resultsInterpreter"),
    "DocumentReference": ("author", "custodian"),
    "Encounter": ("serviceProvider",),
    "EpisodeOfCare": ("managingOrganization",),
    "ExplanationOfBenefit": ("provider",),
    "Flag": ("author",),
    "Goal": ("expressedBy",),
    "Immunization": ("performer.actor",),
    "List": ("source",),
    "MedicationAdministration": ("performer.actor",),
    "MedicationDispense": ("performer.actor",),
    "MedicationRequest": ("requester", "recorder", "performer"),
    "MedicationStatement": ("informationSource",),
    "Observation": ("performer",),
    "Procedure": ("performer.actor", "recorder", "asserter"),
    "RiskAssessment": ("performer",),
    "ServiceRequest": ("requester", "performer"),
    "Task": ("owner", "requester"),
}

# A DocumentReference of one of these types is a consent form (the ASCMI mapping writes 64292-6): a consent
# record, not clinical data.
CONSENT_DOCUMENT_CODES = frozenset({(LOINC, "64292-6"), (LOINC, "59284-0")})


def _split(paths: dict[str, tuple[str, ...]]) -> dict[str, tuple[tuple[str, ...], ...]]:
    return {t: tuple(tuple(p.split(".")) for p in ps) for t, ps in paths.items()}


CODE_PATHS = _split(_CODES)
INHERIT_PATHS = _split(_INHERITS)
AUTHOR_PATHS = _split(_AUTHORS)
LABELLED_TYPES = frozenset(CODE_PATHS)
