"""``Patient/$communication-contact``: where may a communication about this member go? (ASCMI.md §6)

When a confidential communications request in force at T covers the communication (it covers all
communications, or one of the labels the communication is ``about``), the answer is the contacts the member
designated — from the day the request was received, not only once the Care Partners have acted on it. Otherwise
it is the member's own address, phone and email on the Patient: never ``Patient.contact`` (relatives, guardians),
never a RelatedPerson, never a subscriber. No contact at all → 422 ``not-found`` naming the person.

Parsing and answering are pure; :func:`communication_contact` gathers the inputs through the Store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir_server.ascmi.bundle import escape_token, token_query
from fhir_server.ascmi.confidential import requests
from fhir_server.ascmi.confidential.vocab import FORM_CODE, Vocabulary
from fhir_server.ascmi.stored import Stored, from_version
from fhir_server.consent.clock import now_date, to_local_date
from fhir_server.consent.parameters import by_name, time_parameter
from fhir_server.fhir.outcome import BadRequest, FHIRError
from fhir_server.repository import conditional
from fhir_server.store.base import ResourceVersion, Store

_SHAPES = {"patient": "valueIdentifier", "about": "valueCoding", "kind": "valueCode", "time": "valueDateTime"}


@dataclass(frozen=True, slots=True)
class ContactQuestion:
    patient: tuple[dict[str, str], ...]  # identifiers ({system?, value})
    about: tuple[dict[str, str], ...]  # label Codings ({system?, code})
    kind: str | None
    time: date | datetime | None


@dataclass(frozen=True, slots=True)
class ContactAnswer:
    contacts: tuple[dict[str, Any], ...]  # {"valueAddress": …} | {"valueContactPoint": …}
    basis: str  # designated | member-on-file
    consent: str | None  # Consent/<id>/_history/<vid>
    reason: str


def _bad(diagnostics: str, where: str, code: str = "invalid") -> BadRequest:
    return BadRequest(diagnostics, (where,), code=code)


def parse_question(params: Any, vocabulary: Vocabulary) -> ContactQuestion:
    """A Parameters body → ContactQuestion, or 400 naming the offending parameter."""
    found = by_name(params, _SHAPES, "$communication-contact")
    if not found["patient"]:
        raise _bad("parameter 'patient' is required", "patient", "required")
    for name in ("kind", "time"):
        if len(found[name]) > 1:
            raise _bad(f"parameter '{name}' may appear only once", found[name][1][0])
    patient = []
    for where, value in found["patient"]:
        if not isinstance(value, dict) or not isinstance(value.get("value"), str) or not value["value"] \
                or not isinstance(value.get("system", ""), str):
            raise _bad("parameter 'patient' needs a valueIdentifier with a value", where)
        patient.append({k: value[k] for k in ("system", "value") if k in value})
    about = []
    for where, value in found["about"]:
        if not isinstance(value, dict) or not isinstance(value.get("code"), str) or not value["code"] \
                or not isinstance(value.get("system", ""), str):
            raise _bad("parameter 'about' needs a valueCoding with a code", where)
        coding = {k: value[k] for k in ("system", "code") if k in value}
        if vocabulary.category_of(coding) is None:
            raise _bad(f"about {coding.get('system', '')}#{coding['code']} is not an ASCMI security label", where,
                       "code-invalid")
        about.append(coding)
    kind = None
    if found["kind"]:
        where, kind = found["kind"][0]
        if kind not in vocabulary.kinds:
            raise _bad(f"kind {kind!r} is not one of {', '.join(vocabulary.kinds)}", where, "code-invalid")
    return ContactQuestion(tuple(patient), tuple(about), kind, time_parameter(found["time"]))


def member_contacts(patient: Mapping[str, Any], day: date) -> list[dict[str, Any]]:
    """The member's own addresses, phones and emails in use on ``day`` (not ``old``, not ended)."""

    def current(element: Mapping[str, Any]) -> bool:
        end = str((element.get("period") or {}).get("end", ""))[:10]
        return element.get("use") != "old" and (not end or end >= day.isoformat())

    out: list[dict[str, Any]] = [{"valueAddress": a} for a in patient.get("address", []) if current(a)]
    out += [{"valueContactPoint": t} for t in patient.get("telecom", [])
            if current(t) and t.get("system") in ("phone", "email", "sms") and t.get("value")]
    return out


def person(patient: Mapping[str, Any]) -> str:
    """``Patient/1 (Ana Reyes)``: how an answer names the member."""
    names = patient.get("name") or [{}]
    given = " ".join(names[0].get("given", []))
    text = " ".join(x for x in (given, names[0].get("family", "")) if x) or names[0].get("text", "")
    return f"Patient/{patient.get('id')}" + (f" ({text})" if text else "")


def answer(patient: Mapping[str, Any], in_force: Stored | None, question: ContactQuestion, day: date, *,
           vocabulary: Vocabulary) -> ContactAnswer:
    """The rule of ASCMI.md §6, pure."""
    what = vocabulary.kinds.get(question.kind or "", "this communication").lower()
    if in_force is not None and requests.covers(in_force.resource, question.about):
        contacts = requests.designated_contacts(in_force.resource, vocabulary)
        version = (in_force.resource.get("meta") or {}).get("versionId", in_force.version_id)
        received = str(in_force.resource.get("dateTime", "?"))
        return ContactAnswer(tuple(contacts), "designated", f"{in_force.reference}/_history/{version}",
                             f"{person(patient)} asked on {received} that {what} go only to the contact they "
                             "designated (confidential communications request); never to the subscriber or "
                             "other enrollees.")
    contacts = member_contacts(patient, day)
    if not contacts:
        raise FHIRError(422, "not-found", f"{person(patient)} has no address, phone or email on file, and no "
                                          "confidential communications request designates one for this "
                                          "communication", ("Parameters.parameter.where(name='patient')",))
    why = "no confidential communications request is in force"
    if in_force is not None:
        why = (f"the confidential communications request in force ({in_force.reference}) covers communications "
               "about sensitive services, and this one is about none")
    return ContactAnswer(tuple(contacts), "member-on-file", None,
                         f"{why}: send {what} to {person(patient)}'s own address, phone or email on file, never "
                         "to a subscriber, other enrollee or relative.")


def to_parameters(result: ContactAnswer, base_url: str) -> dict[str, Any]:
    out: list[dict[str, Any]] = [{"name": "contact", **c} for c in result.contacts]
    out.append({"name": "basis", "valueCode": result.basis})
    if result.consent:
        out.append({"name": "consent", "valueReference": {"reference": f"{base_url.rstrip('/')}/{result.consent}"}})
    out.append({"name": "reason", "valueString": result.reason})
    return {"resourceType": "Parameters", "parameter": out}


async def find_patient(store: Store, identifiers: Sequence[dict[str, str]]) -> ResourceVersion | None:
    """The one Patient the identifiers name (any matches); two different ones → 400."""
    with_system = [i for i in identifiers if i.get("system")]
    found: dict[str, ResourceVersion] = {}
    if with_system:
        for v in await conditional.find(store, "Patient", token_query("identifier", with_system), 2):  # type: ignore[arg-type]
            found[v.id] = v
    for ident in (i for i in identifiers if not i.get("system")):
        query = f"identifier={escape_token(ident['value'])}"
        for v in await conditional.find(store, "Patient", query, 2):  # type: ignore[arg-type]
            found[v.id] = v
    if len(found) > 1:
        raise BadRequest("the patient identifiers name two different Patients on file",
                         ("Parameters.parameter.where(name='patient')",))
    return next(iter(found.values()), None)


async def requests_of(store: Store, patient_id: str, vocabulary: Vocabulary) -> list[tuple[Stored, str]]:
    query = f"patient=Patient/{patient_id}&category={escape_token(vocabulary.form_system)}|{FORM_CODE}"
    out = []
    for v in await conditional.find(store, "Consent", query, 1000):  # type: ignore[arg-type]
        out.append((from_version(v), v.last_updated))
    return out


def day_of(question: ContactQuestion, tz: str) -> date:
    return to_local_date(question.time, tz) if question.time is not None else now_date(tz)
