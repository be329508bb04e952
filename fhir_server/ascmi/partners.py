"""Care Partners named on a form → Organizations and memberships of the Care Partner network (ASCMI.md §3).

A Care Partner is matched by identifier: several identifiers in one request all name the same party, and any
match counts. Every Care Partner named on a form becomes a network member from the form's signed date; a
membership that starts later moves back when an earlier-signed form names the partner (§5).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir_server.ascmi.bundle import TransactionBuilder, escape_token, token_query, weak_etag
from fhir_server.ascmi.canonical import NETWORK_REFERENCE
from fhir_server.ascmi.stored import KnownPartner, Stored
from fhir_server.ascmi.terminology import Terminology
from fhir_server.ascmi.vocab import NETWORK_MEMBER


def identifier_keys(partner: dict[str, Any]) -> set[tuple[str, str]]:
    identifiers = partner.get("identifiers") or partner.get("identifier") or []
    if not isinstance(identifiers, list):  # a malformed form: the schema reports it
        return set()
    return {(str(i.get("system")), str(i.get("value"))) for i in identifiers if isinstance(i, dict)}


def same_party(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two Care Partners (form JSON or Organization resources) sharing any identifier are the same party."""
    return bool(identifier_keys(a) & identifier_keys(b))


def partner_key(partner: dict[str, Any]) -> str:
    """A short stable key of a Care Partner: its first identifier's value (used inside local identifiers)."""
    return str(partner["identifiers"][0]["value"])


def organization(partner: dict[str, Any], terminology: Terminology) -> dict[str, Any]:
    """A CarePartnerOrganization; ``state`` absent means CA and is stored explicitly."""
    canonical = terminology.canonical
    kind = terminology.care_partner_types[partner["type"]]
    return {
        "resourceType": "Organization",
        "meta": {"profile": [canonical.structuredefinition("CarePartnerOrganization")]},
        "extension": [
            {
                "url": canonical.structuredefinition("covered-entity"),
                "valueBoolean": bool(partner["coveredEntity"]),
            }
        ],
        "identifier": [{"system": i["system"], "value": i["value"]} for i in partner["identifiers"]],
        "active": True,
        "type": [{"coding": [kind.to_json()]}],
        "name": partner["name"],
        "address": [{"state": partner.get("state", "CA")}],
    }


@dataclass(frozen=True, slots=True)
class PartnerRef:
    """A Care Partner of the form and the reference the bundle uses for it."""

    partner: dict[str, Any]
    reference: str
    display: str

    def actor(self, role: dict[str, Any]) -> dict[str, Any]:
        return {
            "role": copy.deepcopy(role),
            "reference": {"reference": self.reference, "display": self.display},
        }


def add_partners(
    builder: TransactionBuilder,
    partners: Iterable[dict[str, Any]],
    *,
    signed: date,
    terminology: Terminology,
    known: Sequence[KnownPartner] = (),
) -> list[PartnerRef]:
    """Entries for every distinct Care Partner (Organization + membership); returns one ref per input
    partner."""
    refs: list[PartnerRef] = []
    for partner in partners:
        existing = next((r for r in refs if same_party(r.partner, partner)), None)
        if existing:
            refs.append(PartnerRef(partner, existing.reference, existing.display))
            continue
        match = next((k for k in known if same_party(partner, dict(k.organization.resource))), None)
        if match:
            ref = PartnerRef(partner, match.organization.reference, str(match.organization.resource.get("name", "")))
            _membership_of_known(builder, match, signed=signed, terminology=terminology)
        else:
            url = builder.post(
                organization(partner, terminology),
                if_none_exist=token_query("identifier", partner["identifiers"]),
            )
            ref = PartnerRef(partner, url, partner["name"])
            builder.post(
                affiliation(ref, signed, terminology),
                if_none_exist=f"identifier={escape_token(_membership_system(terminology))}|"
                f"{escape_token(_membership_value(partner))}",
            )
        refs.append(ref)
    return refs


def affiliation(ref: PartnerRef, signed: date, terminology: Terminology) -> dict[str, Any]:
    return {
        "resourceType": "OrganizationAffiliation",
        "identifier": [{"system": _membership_system(terminology), "value": _membership_value(ref.partner)}],
        "active": True,
        "period": {"start": signed.isoformat()},
        "organization": {"reference": NETWORK_REFERENCE},
        "participatingOrganization": {"reference": ref.reference, "display": ref.display},
        "code": [copy.deepcopy(NETWORK_MEMBER)],
    }


def _membership_system(terminology: Terminology) -> str:
    return terminology.canonical.sid("care-partner-membership")


def _membership_value(partner: dict[str, Any]) -> str:
    first = partner["identifiers"][0]
    return f"{first['system']}#{first['value']}"


def _open(affiliation: Stored) -> bool:
    resource = affiliation.resource
    return resource.get("active", True) is not False and not resource.get("period", {}).get("end")


def _membership_of_known(
    builder: TransactionBuilder, known: KnownPartner, *, signed: date, terminology: Terminology
) -> None:
    """Start a membership, or move an open one back to ``signed`` when it starts later."""
    open_ = sorted(
        (a for a in known.affiliations if _open(a)),
        key=lambda a: a.resource.get("period", {}).get("start") or "0000",
    )
    if not open_:
        identifiers = list(known.organization.resource.get("identifier", []))
        if identifiers:
            ref = PartnerRef(
                {"identifiers": identifiers},
                known.organization.reference,
                str(known.organization.resource.get("name", "")),
            )
            builder.post(affiliation(ref, signed, terminology))
        return
    first = open_[0]
    start = first.resource.get("period", {}).get("start")
    if start and start[:10] > signed.isoformat():
        moved = copy.deepcopy(dict(first.resource))
        moved["id"] = first.id
        moved.setdefault("period", {})["start"] = signed.isoformat()
        moved.get("meta", {}).pop("versionId", None)
        builder.put(moved, if_match=weak_etag(first.version_id))
