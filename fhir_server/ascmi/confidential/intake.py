"""Confidential communications intake as a service (ASCMI.md §6): validate, look up what is on file, map, and
write one transaction — the same shape as the form intake (:class:`fhir_server.ascmi.intake.Intake`), whose
lookups and retrying writer it reuses.

Access: when the caller is a Care Partner (a client acting for an Organization), the request's ``receivedBy``
(a withdrawal's, when it names one) must be that Organization, else 403.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fhir_server.ascmi.bundle import escape_token
from fhir_server.ascmi.canonical import NETWORK_REFERENCE
from fhir_server.ascmi.confidential import mapping, schema, withdrawal
from fhir_server.ascmi.confidential.mapping import Obliged, request_system
from fhir_server.ascmi.confidential.vocab import FORM_CODE, Vocabulary, load_vocabulary
from fhir_server.ascmi.consents import form_type
from fhir_server.ascmi.intake import Intake, IntakeResult
from fhir_server.ascmi.partners import identifier_keys
from fhir_server.ascmi.stored import Stored, from_version
from fhir_server.fhir.outcome import Conflict, FHIRError, NotFound, Unprocessable, information
from fhir_server.settings import Settings
from fhir_server.store.base import ResourceVersion, Store

HEALTH_PLAN = "health-plan"


def forbidden(diagnostics: str, expression: str) -> FHIRError:
    return FHIRError(403, "forbidden", diagnostics, (expression,))


class ConfidentialIntake(Intake):
    def __init__(self, store: Store, settings: Settings, base: str, caller_organization: str | None = None) -> None:
        super().__init__(store, settings, base)
        self.vocabulary: Vocabulary = load_vocabulary(settings.canonical_base)
        self.caller_organization = caller_organization

    # -- lookups --------------------------------------------------------------------------------------------

    def _request_query(self) -> str:
        return f"category={escape_token(self.vocabulary.form_system)}|{FORM_CODE}"

    async def _requests_of(self, patient_id: str) -> list[tuple[Stored, str]]:
        found = await self._find("Consent", f"patient=Patient/{patient_id}&{self._request_query()}", 1000)
        return [(from_version(v), v.last_updated) for v in found]

    async def _tasks_of(self, consent_ref: str) -> list[Stored]:
        return [from_version(v) for v in await self._find("Task", f"focus={consent_ref}", 100)]

    async def _check_caller(self, partner: dict[str, Any], expression: str) -> None:
        """403 unless a Care Partner caller's own Organization is ``partner`` (shares an identifier)."""
        if self.caller_organization is None:
            return
        rtype, _, oid = self.caller_organization.partition("/")
        version = await self.store.read(rtype, oid) if rtype == "Organization" and oid else None
        own = from_version(version).resource if version is not None and not version.deleted else {}
        if not identifier_keys(partner) & identifier_keys(dict(own)):
            raise forbidden(f"a Care Partner files requests it received itself: {partner.get('name')!r} is not "
                            f"{self.caller_organization}", expression)

    async def _is_member(self, org_ref: str, day: date) -> bool:
        found = await self._find("OrganizationAffiliation",
                                 f"participating-organization={org_ref}&primary-organization={NETWORK_REFERENCE}", 100)
        for v in found:
            a = from_version(v).resource
            p = a.get("period") or {}
            if a.get("active", True) is not False and str(p.get("start", "0000"))[:10] <= day.isoformat() \
                    <= str(p.get("end", "9999"))[:10]:
                return True
        return False

    async def _obliged(self, patient_id: str, day: date) -> list[Obliged]:
        """Network members of type health-plan that the person's ASCMI forms name (collector, recipients,
        exclusions, intermediaries; any form on file that is not entered in error)."""
        named: dict[str, None] = {}
        for consent in await self._form_consents(patient_id):
            c = consent.resource
            if not form_type(c, self.terminology) or c.get("status") == "entered-in-error":
                continue
            refs = [o.get("reference") for o in c.get("organization", [])]
            for p in (c.get("provision") or {}).get("provision", []):
                refs += [(a.get("reference") or {}).get("reference") for a in p.get("actor", [])]
            named.update((r, None) for r in refs if isinstance(r, str) and r.startswith("Organization/")
                         and r != NETWORK_REFERENCE)
        plan_system = self.terminology.canonical.codesystem("care-partner-type")
        out = []
        for ref in named:
            version = await self.store.read("Organization", ref.partition("/")[2])
            if version is None or version.deleted:
                continue
            org = from_version(version).resource
            kinds = {(c.get("system"), c.get("code")) for t in org.get("type", []) for c in t.get("coding", [])}
            if (plan_system, HEALTH_PLAN) in kinds and await self._is_member(ref, day):
                out.append(Obliged(ref, str(org.get("name", ""))))
        return out

    # -- requests -------------------------------------------------------------------------------------------

    async def file_request(self, request: Any, prefer_return: str = "representation") -> IntakeResult:
        schema.check_request(request, vocabulary=self.vocabulary, today=self._today())
        await self._check_caller(request["receivedBy"], "$.receivedBy")
        received = date.fromisoformat(request["receivedDate"])

        async def build() -> tuple[dict[str, Any], int] | IntakeResult:
            repeat = await self._same_request(request)
            if repeat is not None:
                return repeat
            person = await self._patient(request["individual"], request["receivedBy"])
            existing = await self._requests_of(person.id) if person else []
            open_tasks = {s.reference: await self._tasks_of(s.reference) for s, _ in existing
                          if s.resource.get("status") == "active"}
            return mapping.request_to_bundle(
                request, vocabulary=self.vocabulary, now=self._now(), tz=self.settings.timezone,
                obliged=await self._obliged(person.id, received) if person else [],
                known_partners=await self._known_partners([request["receivedBy"]]),
                existing=existing, open_tasks=open_tasks)

        return await self._write(build, prefer_return)

    async def _same_request(self, request: dict[str, Any]) -> IntakeResult | None:
        """Submitting a request is idempotent: the same requestId from the same Care Partner answers 200."""
        query = f"identifier={escape_token(request['requestId'])}&{self._request_query()}"
        found = [v for v in await self._find("Consent", query, 100)
                 if await self._received_by(from_version(v), request["receivedBy"], request["requestId"])]
        if not found:
            return None
        consent = from_version(found[0])
        on_file = str(consent.resource.get("dateTime", ""))[:10]
        if on_file != request["receivedDate"]:
            raise Conflict(f"requestId {request['requestId']!r} from {request['receivedBy'].get('name')!r} is already "
                           f"on file as {consent.reference}, received {on_file}; a new request needs its own "
                           "requestId", ["$.requestId"])
        note = (f"request {request['requestId']!r} from {request['receivedBy'].get('name')!r} is already on file as "
                f"{consent.reference}; nothing was written")
        return IntakeResult(information(note), found[0], created=False)

    async def _received_by(self, consent: Stored, partner: dict[str, Any], request_id: str) -> bool:
        """Was ``consent`` received by ``partner`` under ``request_id``? Its identifier system is the partner's
        (whatever order the partner lists its identifiers in), or its organization is that partner."""
        prefix = str(self.vocabulary.canonical.sid("ascmi-confidential-communication-id/"))
        mine = {request_system({"identifiers": [i]}, self.vocabulary) for i in partner["identifiers"]}
        idents = [i for i in consent.resource.get("identifier", [])
                  if i.get("value") == request_id and str(i.get("system", "")).startswith(prefix)]
        if any(i.get("system") in mine for i in idents):
            return True
        known = {k.organization.reference for k in await self._known_partners([partner])}
        return bool(idents) and any(o.get("reference") in known for o in consent.resource.get("organization", []))

    # -- withdrawals ----------------------------------------------------------------------------------------

    async def _withdrawn_request(self, body: dict[str, Any]) -> tuple[Stored, str]:
        if "consent" in body:
            return await self._read_consent(str(body["consent"]), "$.consent"), "$.consent"
        request_id = str(body["requestId"])
        found = [from_version(v) for v in await self._find(
            "Consent", f"identifier={escape_token(request_id)}&{self._request_query()}", 100)]
        found = [c for c in found if any(i.get("value") == request_id for i in c.resource.get("identifier", []))]
        if body.get("receivedBy"):
            found = [c for c in found if await self._received_by(c, body["receivedBy"], request_id)]
        elif self.caller_organization:
            found = [c for c in found
                     if any(o.get("reference") == self.caller_organization for o in c.resource.get("organization", []))]
        if not found:
            raise NotFound(f"no confidential communications request with requestId {request_id!r} is on file",
                           ["$.requestId"])
        active = [c for c in found if c.resource.get("status") == "active"]
        if len(active) > 1:
            raise Unprocessable(f"requestId {request_id!r} names {len(active)} requests in force (from different "
                                "Care Partners); name receivedBy or the Consent", ["$.requestId"])
        return (active or found)[0], "$.requestId"

    async def withdraw(self, body: Any) -> ResourceVersion:
        """``{ requestId | consent, receivedDate, receivedBy? }`` → the request's new version (ended)."""
        schema.check_withdrawal(body, vocabulary=self.vocabulary, today=self._today())
        if body.get("receivedBy"):
            await self._check_caller(body["receivedBy"], "$.receivedBy")
        received = date.fromisoformat(body["receivedDate"])

        async def build() -> tuple[dict[str, Any], int]:
            consent, expression = await self._withdrawn_request(body)
            agent, display = await self._withdrawal_agent(body, consent)
            bundle = withdrawal.withdrawal_to_bundle(
                consent, received=received, agent=agent, agent_display=display,
                tasks=await self._tasks_of(consent.reference), now=self._now(), vocabulary=self.vocabulary,
                expression=expression)
            return bundle, 0

        return (await self._write(build, "minimal")).consent

    async def _withdrawal_agent(self, body: dict[str, Any], consent: Stored) -> tuple[str, str]:
        """Who received the withdrawal: the named receivedBy (on file), the caller's Organization, or else the
        Care Partner that received the request."""
        if body.get("receivedBy"):
            known = await self._known_partners([body["receivedBy"]])
            if known:
                org = known[0].organization
                return org.reference, str(org.resource.get("name", ""))
        if self.caller_organization:
            return self.caller_organization, ""
        organization = (consent.resource.get("organization") or [{}])[0]
        return str(organization.get("reference", "")), str(organization.get("display", ""))

