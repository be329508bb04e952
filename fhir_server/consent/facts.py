"""What the gate reads from the store to decide: the caller's Organization with its network affiliations, and
each patient's Patient resource and Consents — together with the *versions* of all of them.

The versions are the decision cache's key (:mod:`fhir_server.consent.gate`): a new form, a revocation, a
supersession or a membership change writes a new version, so the very next request — on any worker, since the
versions come from the shared store — computes a new key and a new decision. Nothing here is invalidated in
process.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from fhir_server.consent.clock import now_date
from fhir_server.consent.compiled import ref_key
from fhir_server.consent.evaluate import Party
from fhir_server.consent.model import ConsentVersion, Identifier, RecipientFacts
from fhir_server.consent.recipient import recipient_facts
from fhir_server.consent.tables import load_tables
from fhir_server.fhir.search.ast import Filter, ReferenceValue, SearchQuery
from fhir_server.store.base import ResourceVersion, Store, Transaction

CHUNK = 200  # patient references per Consent search
MAX_CONSENTS = 1000  # per search page; a person has a handful


@dataclass(frozen=True, slots=True)
class Recipient:
    """The caller's Organization as decisions see it."""

    reference: str  # Organization/<id>
    facts: RecipientFacts
    key: tuple[Any, ...]  # versions of the Organization and of its affiliations
    member_now: bool  # an active network member today

    @property
    def identifiers(self) -> frozenset[tuple[str | None, str]]:
        return frozenset((i.system, i.value) for i in self.facts.identifiers)


@dataclass(frozen=True, slots=True)
class Person:
    """One patient: birth date, Consents (every status) and whether the recipient is named in one of them."""

    id: str
    exists: bool
    birth_date: str | None
    key: tuple[Any, ...]  # versions of the Patient and of each of their Consents
    consents: tuple[ConsentVersion, ...]
    named: bool


async def _all(source: Store | Transaction, rtype: str, param: str, targets: list[tuple[str, str]], limit: int
               ) -> list[ResourceVersion]:
    """Every resource of ``rtype`` whose reference ``param`` points at one of ``targets`` (the AST is built
    directly: this runs on every gated request)."""
    values = tuple(ReferenceValue(t, i) for t, i in targets)
    query = SearchQuery(rtype, count=limit, filters=(Filter(param, "reference", values, resource_type=rtype),),
                        total="none")
    out: list[ResourceVersion] = []
    while True:
        page = await source.search(query)
        out += page.matches
        if not page.next_cursor:
            return out
        query = query.with_cursor(page.next_cursor)


async def load_recipient(store: Store, organization: str, canonical_base: str, tz: str) -> Recipient:
    """The caller's Organization (``Organization/<id>``) and its affiliations; unknown → facts with no
    identifiers (such a caller matches nothing but actors naming its reference)."""
    oid = organization.split("/", 1)[-1]
    org = await store.read("Organization", oid)
    organizations: list[dict[str, Any]] = []
    affiliations: list[ResourceVersion] = []
    idents: list[Identifier] = []
    if org is not None and not org.deleted and org.body is not None:
        body = orjson.loads(org.body)
        organizations.append(body)
        idents = [Identifier(i.get("system"), str(i["value"])) for i in body.get("identifier") or []
                  if i.get("value") is not None]
        affiliations = await _all(store, "OrganizationAffiliation", "participating-organization",
                                  [("Organization", oid)], 100)
    facts = recipient_facts(idents, organizations, [orjson.loads(a.body) for a in affiliations if a.body],
                            canonical_base, tz)
    if org is None or org.deleted:
        facts = RecipientFacts(identifiers=(), known=False, organization_ids=())
    key = (org.version_id if org else None, tuple(sorted((a.id, a.version_id) for a in affiliations)))
    network = f"Organization/{load_tables(canonical_base).network_id}"
    member = network in Party.of(facts, now_date(tz)).refs
    return Recipient(f"Organization/{oid}", facts, key, member)


def _refs(node: Any) -> Iterable[dict[str, Any]]:
    """Every Reference-shaped dict under ``node`` (actors at any depth, organization, …)."""
    if isinstance(node, dict):
        if "reference" in node or "identifier" in node:
            yield node
        for value in node.values():
            if isinstance(value, (dict, list)):
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


_NAMED: dict[tuple[Any, ...], bool] = {}


def names_cached(version: ResourceVersion, recipient: Recipient) -> bool:
    """:func:`names` per (Consent version, recipient version): both are immutable, so is the answer."""
    key = (version.id, version.version_id, recipient.reference, recipient.key)
    found = _NAMED.get(key)
    if found is None:
        if len(_NAMED) > 100_000:
            _NAMED.clear()
        found = _NAMED[key] = version.body is not None and names(orjson.loads(version.body), recipient)
    return found


def names(consent: dict[str, Any], recipient: Recipient) -> bool:
    """Is the recipient named in a Consent: collector (``organization``), an included or excluded recipient or an
    intermediary (a provision actor) — by reference or by identifier?"""
    idents = recipient.identifiers
    for node in [*(consent.get("organization") or []), *_refs(consent.get("provision") or {})]:
        if not isinstance(node, dict):
            continue
        text = node.get("reference")
        if isinstance(text, str) and ref_key(text) == recipient.reference:
            return True
        ident = node.get("identifier")
        if isinstance(ident, dict) and (ident.get("system"), str(ident.get("value"))) in idents:
            return True
    return False


_SMALL: dict[tuple[str, str, int], str | None] = {}  # (kind, id, version) → patient of a Consent / birth date


def _memo(kind: str, version: ResourceVersion, compute: Any) -> str | None:
    key = (kind, version.id, version.version_id)
    if key not in _SMALL:
        if len(_SMALL) > 200_000:
            _SMALL.clear()
        _SMALL[key] = compute(orjson.loads(version.body)) if version.body else None
    return _SMALL[key]


def _owner(consent: ResourceVersion) -> str | None:
    """The id of the Patient a Consent version is about."""
    def compute(body: dict[str, Any]) -> str | None:
        target = ref_key(str((body.get("patient") or {}).get("reference", "")))
        return target[8:] if target and target.startswith("Patient/") else None

    return _memo("owner", consent, compute)


def _birth_date(patient: ResourceVersion | None) -> str | None:
    if patient is None:
        return None
    return _memo("birth", patient, lambda body: body.get("birthDate"))


async def load_people(store: Store, patient_ids: Sequence[str], recipient: Recipient | None) -> dict[str, Person]:
    """Each patient's facts: one ``read_many`` for the Patients and one Consent search per :data:`CHUNK`."""
    ids = list(dict.fromkeys(patient_ids))
    if not ids:
        return {}
    patients = {v.id: v for v in await store.read_many([("Patient", i) for i in ids])}
    consents: dict[str, list[ResourceVersion]] = {i: [] for i in ids}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        found = await _all(store, "Consent", "patient", [("Patient", i) for i in chunk], MAX_CONSENTS)
        for v in found:
            owner = _owner(v)
            if owner in consents:
                consents[owner].append(v)
    out: dict[str, Person] = {}
    for pid in ids:
        patient = patients.get(pid)
        birth = _birth_date(patient)
        mine = sorted(consents[pid], key=lambda v: v.id)
        named = recipient is not None and any(names_cached(v, recipient) for v in mine)
        key = (patient.version_id if patient else None, tuple((v.id, v.version_id) for v in mine))
        versions = tuple(ConsentVersion.from_json(v.body, v.last_updated, id=v.id, version_id=str(v.version_id))
                         for v in mine if v.body is not None)
        out[pid] = Person(pid, patient is not None, birth, key, versions, named)
    return out
