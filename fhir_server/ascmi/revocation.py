"""ASCMI Revocation → transaction entries (ASCMI.md §3 "Revocation", §5 "Revocation fine print").

(a) the revoked Consent gets a new version, ``inactive``, ``provision.period.end`` = the day before the
effective date (never deleted; ``If-Match`` its current version so a concurrent change fails instead of being
lost), with a Provenance (UPDATE, reason ``ascmi-form#REVOCATION``, occurred = effective date, the
revocation's signature); (b) the revocation itself is a Consent on file: active, root deny from the effective
date, an explicit nested deny for every category, and its own Provenance. The checks that need the revoked
Consent raise FHIRErrors.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from fhir_server.ascmi import provenance
from fhir_server.ascmi.bundle import IdFactory, TransactionBuilder, random_ids, weak_etag
from fhir_server.ascmi.canonical import DEFAULT_BASE
from fhir_server.ascmi.consent import (
    consent_shell,
    deny_category,
    form_concept,
    form_identifier,
    ordered_consent,
)
from fhir_server.ascmi.consents import closed, closing_end, form_type, signed_date
from fhir_server.ascmi.mapping import DEFAULT_TZ, add_document, add_representative
from fhir_server.ascmi.partners import add_partners
from fhir_server.ascmi.patient import fold
from fhir_server.ascmi.stored import KnownPartner, Stored
from fhir_server.ascmi.terminology import Terminology, load_terminology
from fhir_server.fhir.outcome import Conflict, NotFound, Unprocessable


def check_revocable(revoked: Stored, *, terminology: Terminology) -> None:
    """409 when the form is no longer in force (revoked, superseded, entered in error); 422 when the Consent
    is not an ASCMI form or is itself a revocation."""
    kind = form_type(revoked.resource, terminology)
    if kind is None:
        raise Unprocessable(f"{revoked.reference} is not an ASCMI Consent", ["$.revokes"])
    if kind == "REVOCATION":
        raise Unprocessable(f"{revoked.reference} is a revocation; name the form it revoked", ["$.revokes"])
    status = revoked.resource.get("status")
    if status != "active":
        raise Conflict(
            f"{revoked.reference} is no longer in force (status {status}); it was revoked or superseded",
            ["$.revokes"],
        )


def check_against(
    revocation: dict[str, Any], revoked: Stored, patient: Mapping[str, Any], *, terminology: Terminology
) -> None:
    """422 when the revocation takes effect before the form was signed or names another person."""
    effective = date.fromisoformat(revocation["effectiveDate"])
    if effective < signed_date(revoked.resource):
        raise Unprocessable(
            f"effective date {effective.isoformat()} is before the revoked form's signed date "
            f"{revoked.resource['dateTime']}",
            ["$.effectiveDate"],
        )
    if not individual_matches(revocation["individual"], patient, terminology):
        raise Unprocessable(f"the individual does not match the person of {revoked.reference}", ["$.individual"])


def individual_matches(individual: Mapping[str, Any], patient: Mapping[str, Any], terminology: Terminology) -> bool:
    """Same CIN when both have one; otherwise same folded family name, a matching given name and birth
    date."""
    cin_system = terminology.canonical.medi_cal_cin
    cins = {i.get("value") for i in patient.get("identifier", []) if i.get("system") == cin_system}
    if individual.get("mediCalId") and cins:
        return individual["mediCalId"] in cins
    if individual.get("birthDate") != patient.get("birthDate"):
        return False
    family, given = fold(individual["familyName"]), fold(individual["givenName"])
    return any(
        fold(n.get("family", "")) == family and given in {fold(g) for g in n.get("given", [])}
        for n in patient.get("name", [])
    )


def select_by_form_id(
    form_id: str,
    candidates: Sequence[tuple[Stored, Mapping[str, Any]]],
    revocation: dict[str, Any],
    *,
    terminology: Terminology,
) -> tuple[Stored, Mapping[str, Any]]:
    """Pick the revoked form among Consents found by ``identifier=<formId>`` (each with its Patient).

    Form ids are unique per collector, not globally, so with several candidates the person decides.
    """
    forms = [
        (c, p)
        for c, p in candidates
        if form_type(c.resource, terminology) not in (None, "REVOCATION")
        and any(i.get("value") == form_id for i in c.resource.get("identifier", []))
    ]
    if not forms:
        raise NotFound(f"no ASCMI form with formId {form_id!r} is on file", ["$.revokes.formId"])
    if len(forms) == 1:
        return forms[0]
    mine = [(c, p) for c, p in forms if individual_matches(revocation["individual"], p, terminology)]
    if not mine:
        raise Unprocessable(f"formId {form_id!r} belongs to another person", ["$.individual"])
    active = [m for m in mine if m[0].resource.get("status") == "active"]
    return (active or mine)[0]


def revocation_to_bundle(
    revocation: dict[str, Any],
    *,
    revoked: Stored,
    patient: Stored,
    now: datetime,
    canonical_base: str = DEFAULT_BASE,
    tz: str = DEFAULT_TZ,
    new_id: IdFactory | None = None,
    known_partners: Sequence[KnownPartner] = (),
    terminology: Terminology | None = None,
) -> dict[str, Any]:
    """The transaction Bundle for a validated revocation of ``revoked`` (whose person is ``patient``).

    Runs :func:`check_revocable` and :func:`check_against` first, so it raises 409/422 FHIRErrors.
    """
    t = terminology or load_terminology(canonical_base)
    check_revocable(revoked, terminology=t)
    check_against(revocation, revoked, patient.resource, terminology=t)
    builder = TransactionBuilder(new_id or random_ids())
    effective = date.fromisoformat(revocation["effectiveDate"])
    signed = date.fromisoformat(revocation["signedDate"])
    (received_by,) = add_partners(
        builder, [revocation["receivedBy"]], signed=signed, terminology=t, known=known_partners
    )
    person = patient.reference
    representative = add_representative(builder, revocation, person, t)
    document = add_document(
        builder,
        revocation,
        patient=person,
        author=received_by,
        now=now,
        description="Signed ASCMI Revocation form",
    )
    consent = consent_shell(
        form_type="REVOCATION",
        patient=person,
        signed=signed,
        performers=[representative or person],
        organization=received_by,
        terminology=t,
    )
    if revocation.get("revocationId"):
        consent["identifier"] = [form_identifier(revocation["revocationId"], received_by, t)]
    consent["policyRule"] = form_concept("REVOCATION", t)
    if document:
        consent["sourceReference"] = {"reference": document}
    consent["provision"] = {
        "type": "deny",
        "period": {"start": effective.isoformat()},
        "provision": [deny_category(c) for c in t.categories.values()],
    }
    sigs = provenance.signatures(revocation, patient=person, representative=representative, tz=tz, terminology=t)
    end = closing_end(revoked.resource, effective)
    builder.put(closed(dict(revoked.resource), end, consent_id=revoked.id), if_match=weak_etag(revoked.version_id))
    consent_url = builder.post(ordered_consent(consent))
    reason = {
        "coding": [t.form_types["REVOCATION"].to_json()],
        "text": f"revoked by the person, effective {effective.isoformat()}",
    }
    builder.post(
        provenance.update(
            target=revoked.reference,
            occurred=effective.isoformat(),
            now=now,
            reason=reason,
            agent=received_by.reference,
            agent_display=received_by.display,
            cause=consent_url,
            sigs=sigs,
        )
    )
    extra = [provenance.representative_agent(revocation, representative, person, t)] if representative else []
    builder.post(
        provenance.creation(
            target=consent_url,
            occurred=revocation["signedDate"],
            now=now,
            custodian=received_by.reference,
            custodian_display=received_by.display,
            sigs=copy.deepcopy(sigs),
            extra_agents=extra,
            document=document,
        )
    )
    return builder.to_json()
