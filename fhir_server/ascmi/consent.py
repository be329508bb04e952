"""ASCMI form choices → the Consent (profile ASCMIConsent), as ASCMI.md §3 and §5 "Provisions written by the
mapping".

Root provision ``deny`` over ``signedDate … expiration``; one nested ``permit`` per shared category (its
labels, the form's purposes, actor = the network or each included Care Partner, actions access + disclose);
one nested ``deny`` per category not shared (labels only) — a category left out of the form is do-not-share —
and one per excluded Care Partner (actor only). A form that shares nothing is an active Consent with only
nested denies.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import date
from typing import Any
from urllib.parse import quote

from fhir_server.ascmi.canonical import NETWORK_REFERENCE
from fhir_server.ascmi.partners import PartnerRef, partner_key
from fhir_server.ascmi.terminology import Category, Terminology
from fhir_server.ascmi.vocab import (
    ACCESS_AND_DISCLOSE,
    INFORMATION_RECIPIENT,
    PATIENT_PRIVACY,
    RELEASE_OF_INFORMATION,
)

NETWORK_DISPLAY = "All my Care Partners (ASCMI Care Partner network)"


def form_concept(form_type: str, terminology: Terminology) -> dict[str, Any]:
    return {"coding": [terminology.form_types[form_type].to_json()]}


def consent_shell(
    *,
    form_type: str,
    patient: str,
    signed: date,
    performers: Sequence[str],
    organization: PartnerRef,
    terminology: Terminology,
) -> dict[str, Any]:
    """The elements every ASCMI Consent has, form or revocation."""
    return {
        "resourceType": "Consent",
        "meta": {"profile": [terminology.canonical.structuredefinition("ASCMIConsent")]},
        "status": "active",
        "scope": copy.deepcopy(PATIENT_PRIVACY),
        "category": [{"coding": [dict(RELEASE_OF_INFORMATION)]}, form_concept(form_type, terminology)],
        "patient": {"reference": patient},
        "dateTime": signed.isoformat(),
        "performer": [{"reference": p} for p in dict.fromkeys(performers)],
        "organization": [{"reference": organization.reference, "display": organization.display}],
    }


def form_identifier(identifier_value: str, owner: PartnerRef, terminology: Terminology) -> dict[str, Any]:
    """The formId (or revocationId) under the system of the Care Partner that assigned it."""
    system = terminology.canonical.sid(f"ascmi-form-id/{quote(partner_key(owner.partner), safe='')}")
    return {
        "use": "official",
        "system": system,
        "value": identifier_value,
        "assigner": {"reference": owner.reference, "display": owner.display},
    }


def policy_uri(form_type: str, form_version: str, terminology: Terminology) -> str:
    return f"{terminology.canonical.codesystem('ascmi-form')}/{form_type}/{quote(form_version, safe='')}"


def form_consent(
    form: dict[str, Any],
    *,
    patient: str,
    performers: Sequence[str],
    collector: PartnerRef,
    included: Sequence[PartnerRef],
    excluded: Sequence[PartnerRef],
    intermediaries: Sequence[PartnerRef],
    document: str | None,
    terminology: Terminology,
) -> dict[str, Any]:
    signed = date.fromisoformat(form["signedDate"])
    consent = consent_shell(
        form_type=form["formType"],
        patient=patient,
        signed=signed,
        performers=performers,
        organization=collector,
        terminology=terminology,
    )
    consent["identifier"] = [form_identifier(form["formId"], collector, terminology)]
    consent["policy"] = [{"uri": policy_uri(form["formType"], form["formVersion"], terminology)}]
    consent["policyRule"] = form_concept(form["formType"], terminology)
    if document:
        consent["sourceReference"] = {"reference": document}
    consent["provision"] = root_provision(
        form, included=included, excluded=excluded, intermediaries=intermediaries, terminology=terminology
    )
    return _ordered(consent)


def root_provision(
    form: dict[str, Any],
    *,
    included: Sequence[PartnerRef],
    excluded: Sequence[PartnerRef],
    intermediaries: Sequence[PartnerRef],
    terminology: Terminology,
) -> dict[str, Any]:
    expiration = form.get("expiration", {})
    root: dict[str, Any] = {}
    if expiration.get("event"):
        root["extension"] = [
            {
                "url": terminology.canonical.structuredefinition("ascmi-expiration-event"),
                "valueCode": expiration["event"],
            }
        ]
    root["type"] = "deny"
    root["period"] = {"start": form["signedDate"]}
    if expiration.get("date"):
        root["period"]["end"] = expiration["date"]
    recipients = form["recipients"]
    if recipients["allCarePartners"]:
        actors = [network_actor()]
    else:
        actors = [r.actor(INFORMATION_RECIPIENT) for r in _distinct(included)]
    actors += [
        r.actor(INFORMATION_RECIPIENT)
        for r in _distinct(intermediaries)
        if r.reference not in {a["reference"]["reference"] for a in actors}
    ]
    purposes = [terminology.purposes[p].to_json() for p in form.get("purposes", [])]
    minor = form.get("minorSignature") or {}
    nested = []
    for category in terminology.categories.values():
        if form["categories"].get(category.code, "do-not-share") == "share":
            signed_by_minor = minor.get("date") if category.code in minor.get("categories", []) else None
            nested.append(permit(category, actors, purposes, signed_by_minor, terminology))
        else:
            nested.append(deny_category(category))
    nested += [deny_partner(r) for r in _distinct(excluded)]
    root["provision"] = nested
    return root


def network_actor() -> dict[str, Any]:
    return {
        "role": copy.deepcopy(INFORMATION_RECIPIENT),
        "reference": {"reference": NETWORK_REFERENCE, "display": NETWORK_DISPLAY},
    }


def permit(
    category: Category,
    actors: list[dict[str, Any]],
    purposes: list[dict[str, Any]],
    minor_signed: str | None,
    terminology: Terminology,
) -> dict[str, Any]:
    provision: dict[str, Any] = {}
    if minor_signed:
        provision["extension"] = [
            {
                "url": terminology.canonical.structuredefinition("ascmi-minor-signature"),
                "valueDate": minor_signed,
            }
        ]
    provision.update(
        {
            "type": "permit",
            "actor": copy.deepcopy(actors),
            "action": copy.deepcopy(ACCESS_AND_DISCLOSE),
            "securityLabel": [c.to_json() for c in category.labels],
            "purpose": copy.deepcopy(purposes),
        }
    )
    if not purposes:
        del provision["purpose"]
    return provision


def deny_category(category: Category) -> dict[str, Any]:
    return {"type": "deny", "securityLabel": [c.to_json() for c in category.labels]}


def deny_partner(ref: PartnerRef) -> dict[str, Any]:
    return {"type": "deny", "actor": [ref.actor(INFORMATION_RECIPIENT)]}


def _distinct(refs: Sequence[PartnerRef]) -> list[PartnerRef]:
    seen: dict[str, PartnerRef] = {}
    for r in refs:
        seen.setdefault(r.reference, r)
    return list(seen.values())


_ORDER = [
    "resourceType",
    "id",
    "meta",
    "text",
    "extension",
    "identifier",
    "status",
    "scope",
    "category",
    "patient",
    "dateTime",
    "performer",
    "organization",
    "sourceAttachment",
    "sourceReference",
    "policy",
    "policyRule",
    "verification",
    "provision",
]


def _ordered(resource: dict[str, Any]) -> dict[str, Any]:
    """Elements in the order of the R4 definition, so stored JSON reads like the spec."""
    return {k: resource[k] for k in sorted(resource, key=lambda k: _ORDER.index(k) if k in _ORDER else 99)}


def ordered_consent(resource: dict[str, Any]) -> dict[str, Any]:
    return _ordered(resource)
