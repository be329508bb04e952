"""ASCMI intake as a service: validate, look up what is on file, map, and write one transaction.

The pure pieces (schema checks, mapping, supersession, revocation rules) live beside this module; this one only
gathers their inputs through the Store interface and hands the Bundle to the transaction processor. A 412 from
an ``If-Match`` in the Bundle means someone changed the person's consents meanwhile: look again and retry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fhir_server.ascmi import care_groups, expiration, fast, mapping, patient, revocation, schema
from fhir_server.ascmi.bundle import escape_token, token_query
from fhir_server.ascmi.canonical import NETWORK_REFERENCE
from fhir_server.ascmi.consents import form_type
from fhir_server.ascmi.partners import partner_key
from fhir_server.ascmi.stored import KnownPartner, Stored
from fhir_server.ascmi.terminology import Terminology, load_terminology
from fhir_server.fhir import jsonio
from fhir_server.fhir.outcome import BadRequest, Conflict, FHIRError, NotFound, Unprocessable, information
from fhir_server.repository import conditional
from fhir_server.repository.bundle import BundleProcessor
from fhir_server.settings import Settings
from fhir_server.store.base import ResourceVersion, Store, pause_after_race

RETRIES = 10  # N intakes racing for one person need up to N rounds: each round has one winner
#: A planned intake: the transaction Bundle, the index of the Consent it files, and (optionally) the entries whose
#: ``ifNoneExist`` must still find nothing when it runs (:meth:`Intake._must_create`).
Built = tuple[dict[str, Any], int] | tuple[dict[str, Any], int, frozenset[int]]


@dataclass(frozen=True)
class IntakeResult:
    """The transaction-response and the Consent the form (or revocation) produced."""

    response: dict[str, Any]
    consent: ResourceVersion
    created: bool = True  # False: the same form was already on file (a retried submission)


def _stored(version: ResourceVersion) -> Stored:
    assert version.body is not None
    return Stored(jsonio.loads(version.body), version.id, str(version.version_id))


class Intake:
    def __init__(self, store: Store, settings: Settings, base: str) -> None:
        self.store = store
        self.settings = settings
        self.base = base
        self.tz = ZoneInfo(settings.timezone)
        self.terminology: Terminology = load_terminology(settings.canonical_base)

    def _now(self) -> datetime:
        return datetime.now(self.tz)

    def _today(self) -> date:
        return self._now().date()

    # -- lookups ----------------------------------------------------------------------------------------

    async def _find(self, rtype: str, query: str, limit: int = 50) -> list[ResourceVersion]:
        return await conditional.find(self.store, rtype, query, limit)  # type: ignore[arg-type]

    async def _form_consents(self, patient_id: str) -> list[Stored]:
        system = self.terminology.canonical.codesystem("ascmi-form")
        found = await self._find("Consent", f"patient=Patient/{patient_id}&category={system}|", 1000)
        return [_stored(v) for v in found]

    async def _known_partners(self, partners: list[dict[str, Any]]) -> list[KnownPartner]:
        known = []
        for partner in partners:
            identifiers = partner.get("identifiers") or []
            if not identifiers:
                continue
            orgs = await self._find("Organization", token_query("identifier", identifiers), 2)
            if len(orgs) > 1:
                raise BadRequest(f"the identifiers of Care Partner {partner.get('name')!r} name two different "
                                 f"Organizations on file ({orgs[0].reference}, {orgs[1].reference})")
            if not orgs:
                continue
            affiliations = await self._find(
                "OrganizationAffiliation",
                f"participating-organization={orgs[0].reference}&primary-organization={NETWORK_REFERENCE}", 100)
            known.append(KnownPartner(_stored(orgs[0]), tuple(_stored(a) for a in affiliations)))
        return known

    async def _patient(self, individual: dict[str, Any], collector: dict[str, Any]) -> ResourceVersion | None:
        found = await self._find("Patient", patient.match_query(individual, collector, self.terminology), 2)
        if len(found) > 1:
            raise BadRequest("the individual's identifiers name two different Patients on file")
        return found[0] if found else None

    # -- forms --------------------------------------------------------------------------------------------

    async def file_form(self, form: Any, prefer_return: str = "representation") -> IntakeResult:
        schema.check_form(form, terminology=self.terminology, today=self._today())
        named = [form["collector"], *form["recipients"].get("include", []),
                 *form["recipients"].get("exclude", []), *form.get("intermediaries", [])]

        async def build() -> Built | IntakeResult:
            person = await self._patient(form["individual"], form["collector"])
            existing = await self._form_consents(person.id) if person else []
            repeat = self._same_form(form, existing)
            if repeat is not None:
                return await self._already_on_file(form, repeat)
            bundle = mapping.form_to_bundle(
                form, now=self._now(), canonical_base=self.settings.canonical_base, tz=self.settings.timezone,
                known_partners=await self._known_partners(named), existing_consents=existing,
                terminology=self.terminology)
            consent_index = mapping.produced_consent_index(bundle)
            return bundle, consent_index, self._must_create(bundle, form, consent_index, new_person=person is None)

        return await self._write(build, prefer_return)

    def _must_create(self, bundle: dict[str, Any], form: dict[str, Any], consent_index: int, *,
                     new_person: bool) -> frozenset[int]:
        """What this Bundle was planned on, checked again inside its transaction: the form is still not on file
        (its Consent entry gets an ``ifNoneExist`` on formId + collector system, for this person), and a person
        found new is still new (the supersession plan assumed no Consents). A concurrent intake that filed
        either first makes the transaction fail as a lost race; :meth:`_write` then looks again, so a duplicate
        form answers "already on file" and another form of the same new person supersedes on fresh facts."""
        entries = bundle["entry"]
        person_query = patient.match_query(form["individual"], form["collector"], self.terminology)
        consent = entries[consent_index]["resource"]
        own = [i for i in consent.get("identifier") or [] if i.get("value") == form["formId"]]
        must = set()
        if own:
            entries[consent_index]["request"]["ifNoneExist"] = (
                f"identifier={escape_token(own[0]['system'])}|{escape_token(own[0]['value'])}"
                f"&patient.{person_query}")
            must.add(consent_index)
        if new_person:
            must.update(i for i, e in enumerate(entries) if e["request"].get("ifNoneExist") == person_query
                        and e["resource"]["resourceType"] == "Patient")
        return frozenset(must)

    # -- revocations ----------------------------------------------------------------------------------------

    async def _revoked(self, body: dict[str, Any]) -> tuple[Stored, Stored]:
        revokes = body["revokes"]
        if "consent" in revokes:
            reference = str(revokes["consent"])
            rtype, _, cid = reference.partition("/")
            version = await self.store.read("Consent", cid) if rtype == "Consent" and cid else None
            if version is None or version.deleted:
                raise NotFound(f"{reference} is not on file", ["$.revokes.consent"])
            consent = _stored(version)
            person_ref = (consent.resource.get("patient") or {}).get("reference", "")
            person = await self.store.read("Patient", person_ref.partition("/")[2]) if person_ref else None
            if person is None or person.deleted:
                raise Unprocessable(f"{reference} names no Patient on file", ["$.revokes.consent"])
            return consent, _stored(person)
        form_id = str(revokes["formId"])
        system = self.terminology.canonical.codesystem("ascmi-form")
        candidates = []
        for version in await self._find("Consent", f"identifier={_escape(form_id)}&category={system}|", 100):
            consent = _stored(version)
            person_ref = (consent.resource.get("patient") or {}).get("reference", "")
            person = await self.store.read("Patient", person_ref.partition("/")[2]) if person_ref else None
            if person is not None and not person.deleted:
                candidates.append((consent, _stored(person).resource))
        consent, person_resource = revocation.select_by_form_id(form_id, candidates, body,
                                                                terminology=self.terminology)
        person_id = str(person_resource["id"])
        person_version = str((person_resource.get("meta") or {}).get("versionId", "1"))
        return consent, Stored(person_resource, person_id, person_version)

    async def file_revocation(self, body: Any, prefer_return: str = "representation") -> IntakeResult:
        schema.check_revocation(body, terminology=self.terminology, today=self._today())

        async def build() -> tuple[dict[str, Any], int]:
            revoked, person = await self._revoked(body)
            bundle = revocation.revocation_to_bundle(
                body, revoked=revoked, patient=person, now=self._now(),
                canonical_base=self.settings.canonical_base, tz=self.settings.timezone,
                known_partners=await self._known_partners([body["receivedBy"]]), terminology=self.terminology)
            return bundle, mapping.produced_consent_index(bundle)

        return await self._write(build, prefer_return)

    # -- expiration events (ASCMI.md §5) ------------------------------------------------------------------

    async def _read_consent(self, reference: str, expression: str) -> Stored:
        rtype, _, cid = reference.partition("/")
        version = await self.store.read("Consent", cid) if rtype == "Consent" and cid else None
        if version is None or version.deleted:
            raise NotFound(f"{reference} is not on file", [expression])
        return _stored(version)

    async def _form_by_id(self, form_id: str, expression: str) -> Stored:
        """The ASCMI form with this formId; with several (ids are unique per collector), the one in force."""
        system = self.terminology.canonical.codesystem("ascmi-form")
        found = [_stored(v) for v in await self._find("Consent", f"identifier={_escape(form_id)}&category={system}|",
                                                      100)]
        forms = [c for c in found if form_type(c.resource, self.terminology) not in (None, "REVOCATION")
                 and any(i.get("value") == form_id for i in c.resource.get("identifier", []))]
        if not forms:
            raise NotFound(f"no ASCMI form with formId {form_id!r} is on file", [expression])
        active = [c for c in forms if c.resource.get("status") == "active"]
        if len(active) > 1:
            raise Unprocessable(f"formId {form_id!r} names {len(active)} forms in force; name the Consent instead",
                                [expression])
        return (active or forms)[0]

    async def consent_named(self, body: dict[str, Any]) -> dict[str, Any]:
        """The Consent an expiration event names (``consent`` or ``formId``), for the caller's ownership check."""
        if "consent" in body:
            return dict((await self._read_consent(str(body["consent"]), "$.consent")).resource)
        return dict((await self._form_by_id(str(body.get("formId")), "$.formId")).resource)

    async def record_expiration_event(self, body: Any) -> ResourceVersion:
        """``{ formId | consent, event, date }`` → the Consent's new version with ``period.end`` = date."""
        expiration.check_event(body, terminology=self.terminology, today=self._today())

        async def build() -> tuple[dict[str, Any], int]:
            if "consent" in body:
                consent = await self._read_consent(str(body["consent"]), "$.consent")
            else:
                consent = await self._form_by_id(str(body["formId"]), "$.formId")
            bundle = expiration.event_to_bundle(consent, event=body["event"], day=date.fromisoformat(body["date"]),
                                                now=self._now(), terminology=self.terminology)
            return bundle, 0

        return (await self._write(build, "minimal")).consent

    # -- FAST Consent $fileConsent / $revokeConsent ----------------------------------------------------------

    async def file_consent(self, filing: fast.Filing, prefer_return: str = "representation") -> IntakeResult:
        """Store a Consent (and its document) in one transaction; an ASCMI one supersedes like a form."""

        async def build() -> tuple[dict[str, Any], int]:
            existing: list[Stored] = []
            person = fast.patient_reference(filing.consent)
            if person and form_type(filing.consent, self.terminology):
                existing = await self._form_consents(person.partition("/")[2])
            bundle = fast.file_bundle(filing, existing=existing, now=self._now(), terminology=self.terminology)
            return bundle, mapping.produced_consent_index(bundle)

        return await self._write(build, prefer_return)

    async def _same_patient(self, consent: Stored, patient_ref: dict[str, Any]) -> None:
        """422 unless the ``patient`` parameter names the Consent's own patient (by reference or identifier)."""
        own = fast.patient_reference(dict(consent.resource))
        expression = "Parameters.parameter.where(name='patient')"
        if patient_ref.get("reference"):
            if fast.relative(patient_ref["reference"]) != own:
                raise Unprocessable(f"{consent.reference} is about {own}, not {patient_ref['reference']}",
                                    [expression])
            return
        ident = patient_ref["identifier"]
        query = token_query("identifier", [{"system": str(ident.get("system", "")), "value": str(ident.get("value"))}])
        if not ident.get("system"):
            query = f"identifier={_escape(str(ident.get('value')))}"
        found = {v.reference for v in await self._find("Patient", query, 10)}
        if own not in found:
            raise Unprocessable(f"the patient identifier does not name {own}, the patient of {consent.reference}",
                                [expression])

    async def revoke_consent(self, reference: str, patient_ref: dict[str, Any],
                             document: dict[str, Any] | None) -> IntakeResult:

        async def build() -> tuple[dict[str, Any], int]:
            consent = await self._read_consent(reference, "Parameters.parameter.where(name='consent')")
            await self._same_patient(consent, patient_ref)
            return fast.revoke_bundle(consent, document=document, today=self._today(), now=self._now(),
                                      terminology=self.terminology)

        return await self._write(build, "minimal")

    # -- writing ------------------------------------------------------------------------------------------

    def _same_form(self, form: dict[str, Any], existing: list[Stored]) -> Stored | None:
        """The person's Consent that came from this very form (same formId from the same collector), if any.

        Submitting a form is idempotent: an HIE that retries after a timeout must not file it twice (a second
        Consent would supersede the first and clutter the person's record)."""
        system_suffix = "/sid/ascmi-form-id/" + quote(partner_key(form["collector"]), safe="")
        for consent in existing:
            for ident in consent.resource.get("identifier") or []:
                if ident.get("value") == form["formId"] and str(ident.get("system", "")).endswith(system_suffix):
                    return consent
        return None

    async def _already_on_file(self, form: dict[str, Any], consent: Stored) -> IntakeResult:
        """A retry of the same form answers 200; the same formId on another form is the collector's mistake."""
        signed = str(consent.resource.get("dateTime", ""))[:10]
        if signed != form["signedDate"]:
            raise Conflict(f"formId {form['formId']!r} from {form['collector'].get('name')!r} is already on file "
                           f"as Consent/{consent.id}, signed {signed}; a new or corrected form needs its own formId",
                           ["$.formId"])
        version = await self.store.vread("Consent", consent.id, int(consent.version_id))
        assert version is not None
        note = (f"form {form['formId']!r} from {form['collector'].get('name')!r} is already on file as "
                f"Consent/{consent.id}; nothing was written")
        return IntakeResult(information(note), version, created=False)

    async def _write(self, build: Callable[[], Awaitable[Built | IntakeResult]], prefer_return: str) -> IntakeResult:
        """Build (from a fresh look at the store) and run the transaction; on a 412 someone changed the
        person's consents meanwhile, or filed the same form or the same new person first: look again (after a
        short random pause, so that the losers of one race do not meet again)."""
        for attempt in range(RETRIES):
            built = await build()
            if isinstance(built, IntakeResult):
                return built
            bundle, consent_index, *rest = built
            try:
                result = await self._run(bundle, consent_index, prefer_return, rest[0] if rest else frozenset())
            except FHIRError as exc:
                if exc.status != 412 or attempt == RETRIES - 1:
                    raise
                await pause_after_race(attempt)
                continue
            await self._after_intake(result)
            return result
        raise AssertionError("unreachable")

    async def _after_intake(self, result: IntakeResult) -> None:
        """Follow-ups of a committed intake, each in its own module (Care Partner Groups for bulk export)."""
        await care_groups.after_intake(self.store, result.consent, self._today())

    async def _run(self, bundle: dict[str, Any], consent_index: int, prefer_return: str,
                   must_create: frozenset[int]) -> IntakeResult:
        # one attempt: after a lost race the Bundle itself is stale, so _write builds it again
        processor = BundleProcessor(self.store, self.settings, self.base, attempts=1, must_create=must_create)
        response = await processor.transaction(bundle, prefer_return)
        location = response["entry"][consent_index]["response"]["location"]
        rtype, cid, _, vid = location.split("/")[:4]
        consent = await self.store.vread(rtype, cid, int(vid))
        assert consent is not None
        return IntakeResult(response, consent)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("|", "\\|").replace("$", "\\$")
