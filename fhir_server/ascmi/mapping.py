"""One ASCMI form → one FHIR transaction Bundle (ASCMI.md §3).

Entries, in order: Patient (conditional create), the Care Partner Organizations (conditional create on
identifier) with their network memberships, a RelatedPerson for a representative, a DocumentReference for the
signed form, the Consent, its Provenance, then the supersession updates of older Consents on file. Pure: the
caller passes the clock (``now``), the time zone, the id factory and what it found in the store.

>>> from datetime import datetime, timezone
>>> bundle = form_to_bundle(EXAMPLE, now=datetime(2025, 3, 1, tzinfo=timezone.utc))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from fhir_server.ascmi import patient as patients
from fhir_server.ascmi import provenance, supersession
from fhir_server.ascmi.bundle import IdFactory, TransactionBuilder, random_ids
from fhir_server.ascmi.canonical import DEFAULT_BASE
from fhir_server.ascmi.consent import form_consent
from fhir_server.ascmi.partners import PartnerRef, add_partners
from fhir_server.ascmi.stored import KnownPartner, Stored
from fhir_server.ascmi.terminology import Terminology, load_terminology
from fhir_server.ascmi.vocab import RELEASE_OF_INFORMATION

DEFAULT_TZ = "America/Los_Angeles"


def form_to_bundle(
    form: dict[str, Any],
    *,
    now: datetime,
    canonical_base: str = DEFAULT_BASE,
    tz: str = DEFAULT_TZ,
    new_id: IdFactory | None = None,
    known_partners: Sequence[KnownPartner] = (),
    existing_consents: Sequence[Stored] = (),
    terminology: Terminology | None = None,
) -> dict[str, Any]:
    """The transaction Bundle for a *validated* form (see :func:`fhir_server.ascmi.schema.check_form`).

    ``known_partners``: Organizations (and their network affiliations) already on file for Care Partners the
    form names; ``existing_consents``: the person's ASCMI Consents on file (for supersession). Both may be
    empty, the bundle is then fully conditional and supersedes nothing.
    """
    t = terminology or load_terminology(canonical_base)
    builder = TransactionBuilder(new_id or random_ids())
    signed = date.fromisoformat(form["signedDate"])
    patient = builder.post(
        patients.patient(form["individual"], form["collector"], t),
        if_none_exist=patients.match_query(form["individual"], form["collector"], t),
    )
    recipients = form["recipients"]
    named = [
        form["collector"],
        *recipients.get("include", []),
        *recipients.get("exclude", []),
        *form.get("intermediaries", []),
    ]
    refs = add_partners(builder, named, signed=signed, terminology=t, known=known_partners)
    n_inc, n_exc = len(recipients.get("include", [])), len(recipients.get("exclude", []))
    collector, included = refs[0], refs[1 : 1 + n_inc]
    excluded, intermediaries = refs[1 + n_inc : 1 + n_inc + n_exc], refs[1 + n_inc + n_exc :]
    representative = add_representative(builder, form, patient, t)
    document = add_document(
        builder,
        form,
        patient=patient,
        author=collector,
        now=now,
        description=f"Signed {t.form_types[form['formType']].display} form {form['formId']}",
    )
    performers = _performers(form, patient, representative)
    consent = form_consent(
        form,
        patient=patient,
        performers=performers,
        collector=collector,
        included=included,
        excluded=excluded,
        intermediaries=intermediaries,
        document=document,
        terminology=t,
    )
    decision = supersession.plan(signed, existing_consents, terminology=t)
    supersession.apply_to_new(consent, decision)
    consent_url = builder.post(consent)
    reason = None
    if decision.newer is not None:
        reason = (
            f"signed before the ASCMI Consent on file signed {decision.newer.resource['dateTime']} "
            f"({decision.newer.reference}); stored inactive"
        )
    extra = [provenance.representative_agent(form, representative, patient, t)] if representative else []
    builder.post(
        provenance.creation(
            target=consent_url,
            occurred=form["signedDate"],
            now=now,
            custodian=collector.reference,
            custodian_display=collector.display,
            extra_agents=extra,
            document=document,
            reason=reason,
            sigs=provenance.signatures(form, patient=patient, representative=representative, tz=tz, terminology=t),
        )
    )
    supersession.add_entries(
        builder,
        decision,
        cause=consent_url,
        cause_type=form["formType"],
        signed=signed,
        agent=collector.reference,
        agent_display=collector.display,
        now=now,
        terminology=t,
    )
    return builder.to_json()


def produced_consent_index(bundle: dict[str, Any]) -> int:
    """Index of the entry holding the Consent the form produced (the ``Location`` of the 201 response)."""
    for i, entry in enumerate(bundle["entry"]):
        if entry["resource"]["resourceType"] == "Consent" and entry["request"]["method"] == "POST":
            return i
    raise ValueError("bundle has no new Consent")


def _performers(doc: dict[str, Any], patient: str, representative: str | None) -> list[str]:
    if representative:
        return [representative, patient] if doc.get("minorSignature") else [representative]
    return [patient]


def add_representative(
    builder: TransactionBuilder, doc: dict[str, Any], patient: str, terminology: Terminology
) -> str | None:
    """A RelatedPerson for the representative who signed, or None when the person signed."""
    sig = doc["signature"]
    rep = sig.get("representative")
    if sig["signer"] != "representative" or not rep:
        return None
    codings = [c.to_json() for c in terminology.relationships[rep["relationship"]]]
    return builder.post(
        {
            "resourceType": "RelatedPerson",
            "active": True,
            "patient": {"reference": patient},
            "relationship": [{"coding": codings, "text": rep["relationship"]}],
            "name": [{"text": rep["name"]}],
        }
    )


def add_document(
    builder: TransactionBuilder,
    doc: dict[str, Any],
    *,
    patient: str,
    author: PartnerRef,
    now: datetime,
    description: str,
) -> str | None:
    """A DocumentReference holding the signed form when one is attached."""
    attachment = doc.get("attachment")
    if not attachment:
        return None
    content: dict[str, Any] = {
        "contentType": attachment["contentType"],
        "data": "".join(attachment["data"].split()),
        "title": attachment.get("title") or description,
        "creation": doc["signedDate"],
    }
    return builder.post(
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "docStatus": "final",
            "type": {"coding": [dict(RELEASE_OF_INFORMATION)]},
            "subject": {"reference": patient},
            "date": provenance.instant(now),
            "author": [{"reference": author.reference, "display": author.display}],
            "description": description,
            "content": [{"attachment": content}],
        }
    )
