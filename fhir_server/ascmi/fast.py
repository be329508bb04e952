"""FAST Consent ``$fileConsent`` and ``$revokeConsent`` (HL7 Scalable Consent Management IG) as transactions.

Pure: request Parameters → what to store. ``$fileConsent`` takes a ``consent`` (Consent) and an optional
``document`` (DocumentReference or QuestionnaireResponse) — or the Consent itself as the body — and stores them
in one transaction; an ASCMI Consent filed this way supersedes the person's older ones exactly like a form
(:mod:`fhir_server.ascmi.supersession`). ``$revokeConsent`` takes a ``consent`` and a ``patient`` reference
and an optional ``document``: the Consent gets a new version, ``inactive`` with ``provision.period.end`` the day
before the revocation takes effect (the day it is received), and a Provenance; it is never deleted.

>>> parse_revoke({"resourceType": "Parameters", "parameter": [
...     {"name": "consent", "valueReference": {"reference": "Consent/1"}},
...     {"name": "patient", "valueReference": {"reference": "Patient/2"}}]})[:2]
('Consent/1', {'reference': 'Patient/2'})
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir_server.ascmi import provenance, supersession
from fhir_server.ascmi.bundle import IdFactory, TransactionBuilder, random_ids, weak_etag
from fhir_server.ascmi.consents import closed, closing_end, form_type
from fhir_server.ascmi.stored import Stored
from fhir_server.ascmi.terminology import Terminology
from fhir_server.fhir.outcome import BadRequest, Conflict, Unprocessable

DOCUMENT_TYPES = ("DocumentReference", "QuestionnaireResponse")
_REFERENCE = re.compile(r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


@dataclass(frozen=True, slots=True)
class Filing:
    """What ``$fileConsent`` was given."""

    consent: dict[str, Any]
    document: dict[str, Any] | None


def _parameters(body: Any, operation: str) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise BadRequest(f"{operation} takes a Parameters resource", ["Parameters"], code="structure")
    params = body.get("parameter") or []
    if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
        raise BadRequest("Parameters.parameter must be an array of objects", ["Parameters.parameter"],
                         code="structure")
    return params


def _one(params: list[dict[str, Any]], name: str, required: bool, operation: str) -> dict[str, Any] | None:
    found = [p for p in params if p.get("name") == name]
    if len(found) > 1:
        raise BadRequest(f"{operation} takes one '{name}' parameter, not {len(found)}",
                         [f"Parameters.parameter.where(name='{name}')"])
    if not found:
        if required:
            raise BadRequest(f"{operation} needs a '{name}' parameter", [f"Parameters.parameter.where(name='{name}')"],
                             code="required")
        return None
    return found[0]


def _document(params: list[dict[str, Any]], operation: str) -> dict[str, Any] | None:
    param = _one(params, "document", False, operation)
    if param is None:
        return None
    document = param.get("resource")
    if not isinstance(document, dict) or document.get("resourceType") not in DOCUMENT_TYPES:
        raise BadRequest("'document' must be a DocumentReference or QuestionnaireResponse resource",
                         ["Parameters.parameter.where(name='document').resource"])
    return document


def parse_file(body: Any) -> Filing:
    """Parameters (``consent`` + optional ``document``) or a bare Consent → :class:`Filing`."""
    if isinstance(body, dict) and body.get("resourceType") == "Consent":
        return Filing(body, None)
    params = _parameters(body, "$fileConsent")
    param = _one(params, "consent", True, "$fileConsent")
    assert param is not None
    consent = param.get("resource")
    if not isinstance(consent, dict) or consent.get("resourceType") != "Consent":
        raise BadRequest("'consent' must be a Consent resource",
                         ["Parameters.parameter.where(name='consent').resource"])
    return Filing(consent, _document(params, "$fileConsent"))


def parse_revoke(body: Any) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    """Parameters → (``Consent/<id>``, the ``patient`` Reference, the optional document)."""
    params = _parameters(body, "$revokeConsent")
    consent_param = _one(params, "consent", True, "$revokeConsent")
    patient_param = _one(params, "patient", True, "$revokeConsent")
    assert consent_param is not None and patient_param is not None
    consent = consent_param.get("valueReference")
    reference = relative(consent.get("reference")) if isinstance(consent, dict) else None
    if reference is None or not reference.startswith("Consent/"):
        raise BadRequest("'consent' must be a valueReference to a Consent (\"Consent/<id>\")",
                         ["Parameters.parameter.where(name='consent').valueReference"])
    patient = patient_param.get("valueReference")
    if not isinstance(patient, dict) or not (patient.get("reference") or isinstance(patient.get("identifier"), dict)):
        raise BadRequest("'patient' must be a valueReference with a reference or an identifier",
                         ["Parameters.parameter.where(name='patient').valueReference"])
    return reference, patient, _document(params, "$revokeConsent")


def relative(reference: Any) -> str | None:
    """``http://x/fhir/Consent/1/_history/2`` or ``Consent/1`` → ``Consent/1``; anything else → None."""
    if not isinstance(reference, str):
        return None
    match = _REFERENCE.search(reference)
    return f"{match['type']}/{match['id']}" if match else None


def patient_reference(consent: dict[str, Any]) -> str | None:
    """The Consent's ``Patient/<id>`` (None when it has no literal patient reference)."""
    ref = relative((consent.get("patient") or {}).get("reference"))
    return ref if ref and ref.startswith("Patient/") else None


def _new_document(builder: TransactionBuilder, document: dict[str, Any] | None) -> str | None:
    if document is None:
        return None
    doc = {k: v for k, v in document.items() if k not in ("id", "meta")}
    if document.get("meta"):
        meta = {k: v for k, v in document["meta"].items() if k not in ("versionId", "lastUpdated")}
        if meta:
            doc["meta"] = meta
    return builder.post(doc)


def _agent(consent: dict[str, Any]) -> tuple[str, str]:
    for candidate in [*(consent.get("organization") or []), *(consent.get("performer") or []),
                      consent.get("patient") or {}]:
        if isinstance(candidate, dict) and candidate.get("reference"):
            return str(candidate["reference"]), str(candidate.get("display", ""))
    return "Consent", ""


def file_bundle(
    filing: Filing,
    *,
    existing: Sequence[Stored],
    now: datetime,
    terminology: Terminology,
    new_id: IdFactory | None = None,
) -> dict[str, Any]:
    """The transaction of ``$fileConsent``: the document, the Consent, and for an active ASCMI Consent the
    supersession updates of the person's ASCMI Consents on file (``existing``)."""
    builder = TransactionBuilder(new_id or random_ids())
    consent = copy.deepcopy(filing.consent)
    consent.pop("id", None)
    if isinstance(consent.get("meta"), dict):
        consent["meta"] = {k: v for k, v in consent["meta"].items() if k not in ("versionId", "lastUpdated")}
        if not consent["meta"]:
            del consent["meta"]
    document = _new_document(builder, filing.document)
    if document:
        source = relative((consent.get("sourceReference") or {}).get("reference"))
        named = f"{filing.document['resourceType']}/{filing.document.get('id')}" if filing.document else None
        if "sourceAttachment" not in consent and (source is None or source == named):
            consent["sourceReference"] = {"reference": document}
    kind = form_type(consent, terminology)
    decision = None
    if kind is not None:
        decision = _ascmi_supersession(consent, kind, existing, terminology)
    consent_url = builder.post(consent)
    if decision is not None and kind is not None:
        agent, display = _agent(consent)
        supersession.add_entries(builder, decision, cause=consent_url, cause_type=kind,
                                 signed=date.fromisoformat(str(consent["dateTime"])[:10]), agent=agent,
                                 agent_display=display, now=now, terminology=terminology)
    return builder.to_json()


def _ascmi_supersession(consent: dict[str, Any], kind: str, existing: Sequence[Stored],
                        terminology: Terminology) -> supersession.Supersession | None:
    """An ASCMI Consent needs its signed date and person; it carries the ascmi-form category (so searches
    by category find it, as they find forms); an active one supersedes (or is superseded) by signed date."""
    if not patient_reference(consent):
        raise Unprocessable("an ASCMI Consent must name its patient (\"Patient/<id>\")", ["Consent.patient"])
    try:
        signed = date.fromisoformat(str(consent.get("dateTime", ""))[:10])
    except ValueError:
        raise Unprocessable("an ASCMI Consent needs dateTime, the date the form was signed",
                            ["Consent.dateTime"], code="required") from None
    system = terminology.canonical.codesystem("ascmi-form")
    categories = consent.setdefault("category", [])
    if not any(c.get("system") == system for cat in categories for c in cat.get("coding", [])):
        categories.append({"coding": [terminology.form_types[kind].to_json()]})
    if consent.get("status") != "active":
        return None
    provision = consent.setdefault("provision", {})
    provision.setdefault("period", {}).setdefault("start", signed.isoformat())
    decision = supersession.plan(signed, existing, terminology=terminology)
    supersession.apply_to_new(consent, decision)
    return decision


def check_revocable(consent: Stored, *, terminology: Terminology) -> None:
    """409 when the Consent is not active; 422 when it is an ASCMI revocation (revoke the form instead)."""
    if form_type(consent.resource, terminology) == "REVOCATION":
        raise Unprocessable(f"{consent.reference} is an ASCMI revocation; revoke the form it revoked",
                            ["Parameters.parameter.where(name='consent')"])
    status = consent.resource.get("status")
    if status != "active":
        raise Conflict(f"{consent.reference} is not in force (status {status}); it was already revoked or "
                       "superseded", ["Parameters.parameter.where(name='consent')"])


def revoke_bundle(
    consent: Stored,
    *,
    document: dict[str, Any] | None,
    today: date,
    now: datetime,
    terminology: Terminology,
    new_id: IdFactory | None = None,
) -> tuple[dict[str, Any], int]:
    """The transaction of ``$revokeConsent`` and the index of the Consent's new version in it."""
    check_revocable(consent, terminology=terminology)
    builder = TransactionBuilder(new_id or random_ids())
    doc_url = _new_document(builder, document)
    index = len(builder.entries)
    end = closing_end(consent.resource, today)
    builder.put(closed(dict(consent.resource), end, consent_id=consent.id), if_match=weak_etag(consent.version_id))
    kind = form_type(consent.resource, terminology)
    reason: dict[str, Any] = {"text": f"revoked ($revokeConsent), effective {today.isoformat()}"}
    if kind is not None:
        reason["coding"] = [terminology.form_types["REVOCATION"].to_json()]
    agent, display = _agent(dict(consent.resource))
    builder.post(provenance.update(target=consent.reference, occurred=today.isoformat(), now=now, reason=reason,
                                   agent=agent, agent_display=display, cause=doc_url))
    return builder.to_json(), index
