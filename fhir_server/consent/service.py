"""The consent decision service: gathers the engine's inputs through the Store, decides, audits.

The engine (``decide``) is pure; this module only looks things up: the Patient by identifier, that Patient's
Consents, the recipient Organization and its network affiliations. Every decision is audited (rule 8) through
the write-behind writer so that the answer does not wait for an fsync.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fhir_server.consent.audit import to_audit_event
from fhir_server.consent.decide import decide
from fhir_server.consent.model import ConsentVersion, Decision, DecisionRequest, DecisionSettings, Identifier
from fhir_server.consent.recipient import recipient_facts
from fhir_server.fhir import jsonio
from fhir_server.fhir.outcome import BadRequest
from fhir_server.repository import conditional
from fhir_server.repository.writebehind import WriteBehind
from fhir_server.settings import Settings
from fhir_server.store.base import ResourceVersion, Store

NETWORK = "Organization/ascmi-care-partner-network"


def _token(identifier: Identifier) -> str:
    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace(",", "\\,").replace("|", "\\|").replace("$", "\\$")

    return f"{esc(identifier.system)}|{esc(identifier.value)}" if identifier.system else esc(identifier.value)


class DecisionService:
    def __init__(self, store: Store, settings: Settings, base: str, audit: WriteBehind | None) -> None:
        self.store = store
        self.base = base
        self.audit = audit
        self.settings = DecisionSettings(settings.canonical_base, settings.timezone,
                                         settings.honor_do_not_share_on_floor)

    async def _by_identifiers(self, rtype: str, identifiers: Sequence[Identifier], what: str,
                              ) -> ResourceVersion | None:
        query = "identifier=" + ",".join(_token(i) for i in identifiers)
        found = await conditional.find(self.store, rtype, query, 3)  # type: ignore[arg-type]
        if len({v.id for v in found}) > 1:
            raise BadRequest(f"the {what} identifiers name {len(found)} different {rtype} resources "
                             f"({', '.join(v.reference for v in found)})", [what])
        return found[0] if found else None

    async def _consents(self, patient_id: str) -> list[ConsentVersion]:
        found = await conditional.find(self.store, "Consent", f"patient=Patient/{patient_id}", 1000)  # type: ignore[arg-type]
        return [ConsentVersion.from_json(v.body, v.last_updated, id=v.id, version_id=str(v.version_id))
                for v in found if v.body is not None]

    async def _recipient(self, identifiers: Sequence[Identifier]) -> tuple[Any, str | None]:
        org = await self._by_identifiers("Organization", identifiers, "recipient")
        organizations, affiliations = [], []
        if org is not None:
            assert org.body is not None
            organizations.append(jsonio.loads(org.body))
            found = await conditional.find(self.store, "OrganizationAffiliation",  # type: ignore[arg-type]
                                           f"participating-organization={org.reference}", 100)
            affiliations = [jsonio.loads(a.body) for a in found if a.body is not None]
        facts = recipient_facts(identifiers, organizations, affiliations, self.settings.canonical_base,
                                self.settings.timezone)
        return facts, org.reference if org else None

    async def decide(self, request: DecisionRequest) -> Decision:
        person = await self._by_identifiers("Patient", request.patient, "patient")
        consents: list[ConsentVersion] = []
        birth_date = None
        if person is not None:
            assert person.body is not None
            birth_date = jsonio.loads(person.body).get("birthDate")
            consents = await self._consents(person.id)
        recipient, recipient_ref = await self._recipient(request.recipient)
        decision = decide(request, consents, recipient, birth_date, self.settings)
        if self.audit is not None:
            event = to_audit_event(decision, request, recorded=datetime.now(UTC), base_url=self.base,
                                   patient_reference=person.reference if person else None,
                                   recipient_reference=recipient_ref)
            self.audit.submit(event)
        return decision
