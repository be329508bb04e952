"""The one gate: may this caller see this resource now? (ACCESS.md §B)

Every path that returns resources calls this module — read, vread, search (matches and includes), history,
``$everything``, transaction/batch GET entries, conditional interactions, subscription notifications, bulk export.
No path filters on its own.

Interface (stable; other rooms build on it):

- ``await gate.visible(caller, versions)`` → the subset of ``versions`` the caller may see, in the same order.
  Administrators see everything. Apply it *before* paging (fetch until the page is full) so pages stay full and
  totals count only what is visible. A delete marker is visible when the last version with a body was.
- ``gate.disclosed(caller, version)`` → the bytes to send: stored bytes for an administrator; for a Care
  Partner the disclosed copy with its obligation codes added to ``meta.security`` (stored bytes never change).
  Call it on versions ``visible`` returned (it reads the obligations ``visible`` found).
- ``await gate.visible_versions(caller, versions)`` → like ``visible`` and, for a version that is not the current
  one (vread, history), also requires the current version to be visible: a resource the caller may not see now
  has no visible past either.

Care Partner rules (ACCESS.md §B): *consent records* (Consent, Provenance targeting a Consent, the
DocumentReference a Consent names as its source, the RelatedPerson that signed one, a Patient without sensitivity
label) are visible when the caller's Organization is a network member today or is named in one of that person's
Consents; every other resource in a Patient compartment is disclosed only when the decision engine (ASCMI.md §4)
permits it for each of its patients, with the §2 labels in its ``meta.security`` (none → general health) and the
caller's purpose; an AuditEvent only when it records the caller's own request (for a person signed in to the
web page, who shares the page's client id with everyone: one naming that person); a ``fulfill`` Task focused on a
Consent (a confidential-communication request, ASCMI.md §6) is a consent record its owner and requester always
see (they must act on it whatever the person shares with them); the rest by scope.

Decisions are cached per (patient, recipient, purpose, label set, day) under the store versions of the patient
and their Consents and of the recipient Organization and its memberships (:mod:`.facts`), so a new form or a
revocation changes the next answer on every worker.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import orjson

from fhir_server import metrics
from fhir_server.consent.clock import now_date
from fhir_server.consent.compartment import patients_of, references
from fhir_server.consent.decide import decide
from fhir_server.consent.disclose import with_obligations
from fhir_server.consent.facts import Person, Recipient, load_people, load_recipient
from fhir_server.consent.model import Coding, DecisionRequest, DecisionSettings, Identifier
from fhir_server.consent.tables import Tables, load_tables
from fhir_server.fhir.outcome import FHIRError, NotFound
from fhir_server.fhir.search.api import parse_search
from fhir_server.security.caller import Caller
from fhir_server.settings import Settings
from fhir_server.store.base import ResourceVersion, Store

CLIENT_ID_SYSTEM = "urn:ietf:params:oauth:client-id"
PUBLIC_CLIENT_ID = "ascmi-care-partner-app"  # security.signin: one client for every person; told apart by user
# Entries per cache map (facts, decisions, obligations, disclosures; least recently used). An entry is a few
# hundred bytes (keys of ids and versions, small tuples), so four maps of 10,000 stay within ~20 MB of a worker
# (docs/deploy.md, *Memory per worker*); at 50,000 they could take ~100 MB. Versions never change, so a
# smaller cache only means more misses for a Care Partner paging through more than 10,000 versions.
CACHE_SIZE = 10_000
RECORD_TYPES = ("Consent", "Provenance", "DocumentReference", "RelatedPerson", "Patient")

Verdict = tuple[bool, tuple[Coding, ...], str]  # (permit, obligations, basis: "consent Consent/1/_history/2" …)


@dataclass(frozen=True, slots=True)
class Disclosure:
    """Why a visible version was disclosed, for the accounting of disclosures (:mod:`.disclosure`)."""

    patients: tuple[str, ...]
    labels: tuple[Coding, ...]  # the §2 labels decided (none: general health)
    bases: tuple[str, ...]  # per patient: "consent Consent/<id>/_history/<vid>" | "legal-floor" | "consent-record"


@dataclass(frozen=True, slots=True)
class _Facts:
    """What a version says about itself (cached per version: versions never change)."""

    kind: str  # free | record | data | audit | hidden | provenance (targeting Consents) | task (fulfil Task)
    patients: tuple[str, ...] = ()
    labels: tuple[Coding, ...] = ()
    targets: tuple[str, ...] = ()  # Provenance: ids of the Consents it targets
    clients: tuple[str, ...] = ()  # AuditEvent: client ids of its agents
    users: tuple[str, ...] = ()  # AuditEvent: usernames of its agents (people signed in to the web page)
    owners: tuple[str, ...] = ()  # fulfil Task: "Organization/<id>" of its owner and requester


@dataclass(slots=True)
class _Item:
    """One version being judged: what it is and what it needs."""

    version: ResourceVersion
    kind: str
    patients: tuple[str, ...]
    labels: tuple[Coding, ...]
    facts: _Facts


@dataclass(slots=True)
class _Judgement:
    recipient: Recipient
    people: dict[str, Person]
    day: date
    obligations: dict[tuple[str, str, int], tuple[Coding, ...]] = field(default_factory=dict)


class Gate:
    """Decides visibility for one server (one store); holds the decision cache."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.decision_settings = DecisionSettings(settings.canonical_base, settings.timezone,
                                                  settings.honor_do_not_share_on_floor)
        self._decisions: OrderedDict[tuple[Any, ...], Verdict] = OrderedDict()
        self._obligations: OrderedDict[tuple[Any, ...], tuple[Coding, ...]] = OrderedDict()
        self._disclosures: OrderedDict[tuple[Any, ...], Disclosure] = OrderedDict()
        self._facts: OrderedDict[tuple[str, str, int], _Facts] = OrderedDict()
        self._user_system = f"{settings.canonical_base}/sid/username"  # security.audit.user_system
        self.hits = 0  # decision cache statistics (tests, benchmarks)
        self.misses = 0

    @property
    def tables(self) -> Tables:
        return load_tables(self.settings.canonical_base)

    # -- the interface ------------------------------------------------------------------------------------

    async def visible(self, caller: Caller, versions: Sequence[ResourceVersion]) -> list[ResourceVersion]:
        """The versions ``caller`` may see now, in order."""
        if caller.is_administrator or not versions:
            return list(versions)
        items = [await self._item(v) for v in versions]
        await self._classify(items)
        judgement = await self._judgement(caller, items)
        out = []
        for item in items:
            allowed, obligations, bases = self._allows(caller, item, judgement)
            if allowed:
                out.append(item.version)
                self._remember(caller, item, obligations, bases)
        return out

    def disclosure(self, caller: Caller, version: ResourceVersion) -> Disclosure | None:
        """Why ``visible`` let a Care Partner see ``version`` (None: not judged, or not patient data)."""
        return self._disclosures.get(self._obligation_key(caller, version))

    async def visible_versions(self, caller: Caller, versions: Sequence[ResourceVersion]
                               ) -> list[ResourceVersion]:
        """``visible`` for past versions too: a version shows only while the resource's current one does."""
        if caller.is_administrator or not versions:
            return list(versions)
        shown = await self.visible(caller, versions)
        refs = list(dict.fromkeys((v.resource_type, v.id) for v in shown))
        current = [c for c in [await self.store.read(t, i) for t, i in refs] if c is not None]
        now = {(c.resource_type, c.id) for c in await self.visible(caller, current)}
        return [v for v in shown if (v.resource_type, v.id) in now]

    async def can_see(self, caller: Caller, version: ResourceVersion | None) -> bool:
        """One resource: ``None`` (never existed) is not visible."""
        return version is not None and bool(await self.visible(caller, [version]))

    async def guard_write(self, caller: Caller, current: ResourceVersion | None, resource_type: str, id: str,
                          *, delete: bool = False, assigned: bool = False) -> None:
        """Update, patch and delete of a resource the caller may not see answer the 404 of a missing one and
        change nothing; for a Care Partner a delete of what does not exist (or no longer does) is that 404 too.

        A Care Partner's update of an id that does not exist is that 404 as well (no update-as-create with an id
        the client chose): were it a 201, a PUT would tell a withheld id (404) from an unknown one (201), and an
        ``If-Match`` on an unknown id (412) from a withheld one. ``assigned``: the id is the server's own (a
        conditional update that matched nothing creates) — nobody could have chosen it to probe."""
        if caller.is_administrator:
            return
        if current is None and assigned and not delete:
            return
        missing = current is None or (delete and current.deleted)
        if missing or not await self.can_see(caller, current):
            raise NotFound(f"{resource_type}/{id} is not known to this server")

    def shows(self, caller: Caller) -> Callable[[ResourceVersion], Awaitable[bool]] | None:
        """``can_see`` for one caller, for checks that must treat a withheld resource as missing (the references
        of a written resource); None for an administrator (everything is visible)."""
        if caller.is_administrator:
            return None

        async def see(version: ResourceVersion) -> bool:
            return await self.can_see(caller, version)
        return see

    def disclosed(self, caller: Caller, version: ResourceVersion) -> bytes:
        """What ``caller`` receives of a visible ``version``: the stored bytes, plus obligations for partners."""
        assert version.body is not None
        if caller.is_administrator:
            return version.body
        codes = self._obligations.get(self._obligation_key(caller, version))
        return with_obligations(version.body, codes) if codes else version.body

    def disclose_all(self, caller: Caller, versions: Sequence[ResourceVersion]) -> list[ResourceVersion]:
        """The versions with their bodies replaced by :meth:`disclosed` (unchanged when nothing is added)."""
        if caller.is_administrator:
            return list(versions)
        out = []
        for v in versions:
            body = self.disclosed(caller, v) if v.body is not None else None
            out.append(v if body is v.body else replace(v, body=body))
        return out

    # -- judging ------------------------------------------------------------------------------------------

    async def _item(self, version: ResourceVersion) -> _Item:
        """The item with what the version says about itself — cached by (type, id, version): versions never
        change, so a warm page parses no JSON at all."""
        key = (version.resource_type, version.id, version.version_id)
        facts = self._facts.get(key)
        if facts is None:
            facts = self._intrinsic(version.resource_type, await self._body_of(version))
            self._facts[key] = facts
            if len(self._facts) > CACHE_SIZE:
                self._facts.popitem(last=False)
        return _Item(version, facts.kind, facts.patients, facts.labels, facts)

    async def _body_of(self, version: ResourceVersion) -> bytes | None:
        if version.body is not None:
            return version.body
        for vid in range(version.version_id - 1, 0, -1):  # a delete marker: judged as its last body
            past = await self.store.vread(version.resource_type, version.id, vid)
            if past is not None and past.body is not None:
                return past.body
        return None

    def _labels(self, resource: dict[str, Any]) -> tuple[Coding, ...]:
        tables = self.tables
        out: list[Coding] = []
        for c in (resource.get("meta") or {}).get("security") or []:
            if not isinstance(c, dict) or not isinstance(c.get("code"), str):
                continue
            key = (c.get("system"), c["code"])
            if tables.is_never(key) or tables.category_of_label(key) is not None:
                coding = Coding(c.get("system"), c["code"])
                if coding not in out:
                    out.append(coding)
        return tuple(out)

    def _intrinsic(self, rtype: str, body: bytes | None) -> _Facts:
        """free / record / data / audit / hidden, patients, §2 labels — from the resource alone."""
        if body is None:
            return _Facts("hidden")  # deleted before it ever had a body: nothing to show
        r = orjson.loads(body)
        if rtype == "AuditEvent":
            clients = tuple(str(ident.get("value")) for a in r.get("agent") or []
                            if isinstance(ident := (a.get("who") or {}).get("identifier") or {}, dict)
                            and ident.get("system") == CLIENT_ID_SYSTEM)
            users = tuple(str(ident.get("value")) for a in r.get("agent") or []
                          if isinstance(ident := (a.get("who") or {}).get("identifier") or {}, dict)
                          and ident.get("system") == self._user_system)
            return _Facts("audit", clients=clients, users=users)
        patients, labels = patients_of(r), self._labels(r)
        if rtype == "Consent":
            return _Facts("record", patients, labels)
        if rtype == "Patient":
            general = {k.code for k in self.tables.categories[self.tables.default_category].labels}
            return _Facts("data" if any(lab.code not in general for lab in labels) else "record", patients, labels)
        if rtype == "Task" and _fulfils_consent(r):
            owners = tuple(dict.fromkeys(o for k in ("owner", "requester") if (o := _local(r.get(k)))))
            return _Facts("task", patients, labels, owners=owners)
        if rtype == "Provenance":
            targets = tuple(dict.fromkeys(i for t, i in references(r, "target", absolute=True) if t == "Consent"))
            if targets:
                return _Facts("provenance", (), labels, targets)
        return _Facts("data" if patients else "free", patients, labels)

    async def _classify(self, items: list[_Item]) -> None:
        """Consent records that only other resources reveal: a Provenance's Consents' patients, the
        DocumentReference a Consent names as its source, the RelatedPerson that signed one."""
        doc_refs = [i.version.id for i in items if i.kind == "data" and i.version.resource_type == "DocumentReference"]
        related = [i.version.id for i in items if i.kind == "data" and i.version.resource_type == "RelatedPerson"]
        provenance_consents = [f"Consent/{t}" for i in items if i.kind == "provenance" for t in i.facts.targets]
        if provenance_consents:
            found = await self.store.read_many([("Consent", ref.split("/", 1)[1])
                                                for ref in dict.fromkeys(provenance_consents)])
            owner = {v.id: _consent_patient(v) for v in found}
            for item in items:
                if item.kind == "provenance":
                    item.kind = "record"
                    item.patients = tuple(dict.fromkeys(p for t in item.facts.targets if (p := owner.get(t))))
                    if not item.patients:
                        item.kind = "hidden"  # its Consents are gone: nobody's record to show
        for rtype, ids, param in (("DocumentReference", doc_refs, "source-reference"),
                                  ("RelatedPerson", related, "consentor")):
            if not ids:
                continue
            query = parse_search("Consent", [(param, ",".join(f"{rtype}/{i}" for i in ids)), ("_count", "1000"),
                                             ("_total", "none")], strict=True, max_count=1000)
            page = await self.store.search(query)
            owners: dict[str, list[str]] = {}
            for consent in page.matches:
                body = orjson.loads(consent.body) if consent.body else {}
                patient = _consent_patient(consent)
                for t, i in references(body, param, absolute=True):
                    if t == rtype and patient:
                        owners.setdefault(i, []).append(patient)
            for item in items:
                if item.version.resource_type == rtype and item.version.id in owners:
                    item.kind = "record"
                    item.patients = tuple(dict.fromkeys([*owners[item.version.id], *item.patients]))

    async def _judgement(self, caller: Caller, items: list[_Item]) -> _Judgement | None:
        if not any(i.kind in ("record", "data", "task") for i in items):
            return None
        assert caller.organization is not None
        recipient = await load_recipient(self.store, caller.organization, self.settings.canonical_base,
                                         self.settings.timezone)
        patients = [p for i in items if i.kind in ("record", "data", "task") for p in i.patients]
        people = await load_people(self.store, patients, recipient)
        return _Judgement(recipient, people, now_date(self.settings.timezone))

    def _allows(self, caller: Caller, item: _Item, j: _Judgement | None
                ) -> tuple[bool, tuple[Coding, ...], tuple[str, ...]]:
        if item.kind == "free":
            return True, (), ()
        if item.kind == "hidden":
            return False, (), ()
        if item.kind == "audit":  # an AuditEvent records the caller's own request: its client is an agent
            if caller.user is not None:  # a person (web page): their own requests, not every user of the page
                return caller.user in item.facts.users, (), ()
            return caller.client_id in item.facts.clients and caller.client_id != PUBLIC_CLIENT_ID, (), ()
        assert j is not None
        if item.kind == "task" and caller.organization in item.facts.owners:
            return True, (), tuple("consent-record" for _ in item.patients)
        if item.kind in ("record", "task"):
            if not item.patients:
                return j.recipient.member_now, (), ()
            ok = j.recipient.member_now or all(j.people[p].named for p in item.patients if p in j.people)
            return ok, (), tuple("consent-record" for _ in item.patients)
        if caller.purpose is None:
            return False, (), ()
        obligations: list[Coding] = []
        bases: list[str] = []
        for pid in item.patients:
            permit, codes, basis = self._decision(j.people[pid], j.recipient, caller.purpose, item.labels, j.day)
            if not permit:
                return False, (), ()
            obligations += [c for c in codes if c not in obligations]
            bases.append(basis)
        return True, tuple(obligations), tuple(bases)

    def _decision(self, person: Person, recipient: Recipient, purpose: str, labels: tuple[Coding, ...],
                  day: date) -> Verdict:
        key = (person.id, person.key, recipient.reference, recipient.key, purpose,
               frozenset((c.system, c.code) for c in labels), day)
        found = self._decisions.get(key)
        if found is not None:
            self.hits += 1
            metrics.decision_cache(hit=True)
            self._decisions.move_to_end(key)
            return found
        self.misses += 1
        metrics.decision_cache(hit=False)
        request = DecisionRequest(patient=(Identifier(None, person.id),),
                                  recipient=recipient.facts.identifiers, purpose=Coding(None, purpose),
                                  labels=labels, time=day)
        try:
            decision = decide(request, person.consents, recipient.facts, person.birth_date,
                              self.decision_settings)
            basis = decision.basis + (f" {decision.consent.reference}" if decision.consent is not None else "")
            verdict: Verdict = (decision.decision == "permit", decision.obligations, basis)
        except FHIRError:  # a purpose outside the tables: nothing is disclosed for it
            verdict = (False, (), "never")
        self._decisions[key] = verdict
        if len(self._decisions) > CACHE_SIZE:
            self._decisions.popitem(last=False)
        return verdict

    # -- obligations --------------------------------------------------------------------------------------

    @staticmethod
    def _obligation_key(caller: Caller, version: ResourceVersion) -> tuple[Any, ...]:
        return (caller.organization, caller.purpose, version.resource_type, version.id, version.version_id)

    def _remember(self, caller: Caller, item: _Item, codes: tuple[Coding, ...], bases: tuple[str, ...]) -> None:
        key = self._obligation_key(caller, item.version)
        if codes:
            self._obligations[key] = codes
            if len(self._obligations) > CACHE_SIZE:
                self._obligations.popitem(last=False)
        if item.patients and item.kind in ("record", "data", "task"):
            self._disclosures[key] = Disclosure(item.patients, item.labels if item.kind == "data" else (), bases)
            if len(self._disclosures) > CACHE_SIZE:
                self._disclosures.popitem(last=False)


def _fulfils_consent(task: dict[str, Any]) -> bool:
    """A ``fulfill`` Task whose focus is a Consent (ASCMI.md §6: a confidential-communication request's Task)."""
    codes = (task.get("code") or {}).get("coding") or []
    focus = _local(task.get("focus"))
    return (any(isinstance(c, dict) and c.get("code") == "fulfill" for c in codes)
            and focus is not None and focus.startswith("Consent/"))


def _local(reference: Any) -> str | None:
    """``Type/id`` of a Reference (absolute or relative, a version dropped)."""
    text = reference.get("reference") if isinstance(reference, dict) else None
    if not isinstance(text, str):
        return None
    parts = [p for p in text.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


def _consent_patient(version: ResourceVersion) -> str | None:
    if version.body is None:
        return None
    text = str((orjson.loads(version.body).get("patient") or {}).get("reference", ""))
    parts = [p for p in text.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return parts[-1] if len(parts) >= 2 and parts[-2] == "Patient" else None
