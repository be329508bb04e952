"""Care Partner Groups: for each Care Partner, the persons whose ASCMI form in force names it — so that
``Group/[id]/$export`` is "everyone who authorised us" (issue 15).

Membership, decided from the person's stored ASCMI form Consents that are ``active`` and not past their
``provision.period.end``:

- ``Group/cp-<org id>`` (``actual``, ``type`` person, ``managingEntity`` = the Organization) holds the persons
  whose form names that Organization as its **collector** (``Consent.organization``) or as an **included
  recipient** (an ``IRCP`` actor of a nested ``permit``), unless the same form **excludes** it (an actor of a
  nested ``deny``).
- A form that shares with **all Care Partners** (a permit actor that is the network Organization) names nobody in
  particular; its person joins ``Group/ascmi-all-care-partners`` (``managingEntity`` = the network), which every
  network member may export too. Copying such persons into every member's Group would make each Group hold nearly
  everyone and go stale whenever the network changes; the gate decides per resource anyway (an excluded or
  departed Care Partner gets nothing of that person), so the shared Group costs no privacy.

Kept current by intake: after every intake transaction (form, revocation, expiration event, FAST filing or
revocation) :func:`refresh_person` recomputes that one person's memberships and updates only the Groups that
change. The update is a separate transaction after the intake's: a crash between the two leaves the person's
Groups stale until their next intake (documented in docs/bulk-export.md).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import date
from typing import Any

from fhir_server.ascmi.canonical import NETWORK_ID, NETWORK_REFERENCE
from fhir_server.fhir import jsonio
from fhir_server.fhir.search.api import parse_search
from fhir_server.repository import resources as repo
from fhir_server.store.base import ResourceVersion, Store, Transaction

log = logging.getLogger("fhir_server")
ALL_PARTNERS_GROUP = "ascmi-all-care-partners"
IRCP = "IRCP"
FORM_CODESYSTEM = "/CodeSystem/ascmi-form"


def group_id(organization_id: str) -> str:
    """``cp-<org id>``, hashed when that would pass FHIR's 64-character id limit.

    >>> group_id("clinic-1")
    'cp-clinic-1'
    >>> len(group_id("x" * 64))
    43
    """
    raw = f"cp-{organization_id}"
    return raw if len(raw) <= 64 else "cp-" + hashlib.sha1(organization_id.encode()).hexdigest()


def _org_id(reference: Any) -> str | None:
    text = (reference or {}).get("reference") if isinstance(reference, dict) else None
    if not isinstance(text, str):
        return None
    rtype, _, rid = text.rpartition("/")
    return rid if rtype.rsplit("/", 1)[-1] == "Organization" and rid else None


def _is_form(consent: dict[str, Any]) -> bool:
    """An ASCMI form (not a revocation record): ``ascmi-form#AB133`` / ``#NON-AB133`` in the policyRule."""
    for coding in (consent.get("policyRule") or {}).get("coding", []):
        if str(coding.get("system", "")).endswith(FORM_CODESYSTEM):
            return coding.get("code") != "REVOCATION"
    return False


def named(consent: dict[str, Any], today: str) -> set[str]:
    """Group ids this Consent puts its person in (empty when it is not an ASCMI form in force).

    >>> c = {"status": "active", "policyRule": {"coding": [{"system": "x/CodeSystem/ascmi-form", "code": "AB133"}]},
    ...      "organization": [{"reference": "Organization/col"}], "provision": {"type": "deny", "provision": [
    ...      {"type": "permit", "actor": [{"role": {"coding": [{"code": "IRCP"}]},
    ...                                    "reference": {"reference": "Organization/inc"}}]},
    ...      {"type": "deny", "actor": [{"reference": {"reference": "Organization/col"}}]}]}}
    >>> sorted(named(c, "2026-01-01"))
    ['cp-inc']
    """
    if consent.get("status") != "active" or not _is_form(consent):
        return set()
    end = ((consent.get("provision") or {}).get("period") or {}).get("end")
    if isinstance(end, str) and end[:10] < today:
        return set()
    names = {o for o in (_org_id(r) for r in consent.get("organization") or []) if o}
    excluded: set[str] = set()
    everyone = False
    for provision in (consent.get("provision") or {}).get("provision") or []:
        for actor in provision.get("actor") or []:
            org = _org_id(actor.get("reference"))
            if org is None:
                continue
            if provision.get("type") == "deny":
                excluded.add(org)
            elif any(c.get("code") == IRCP for c in (actor.get("role") or {}).get("coding", [])):
                if org == NETWORK_ID:
                    everyone = True
                else:
                    names.add(org)
    groups = {group_id(o) for o in names - excluded - {NETWORK_ID}}
    if everyone:
        groups.add(ALL_PARTNERS_GROUP)
    return groups


async def _search_all(store: Store, rtype: str, pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    query = parse_search(rtype, [*pairs, ("_count", "1000"), ("_total", "none")], strict=True, max_count=1000)
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await store.search(query.with_cursor(cursor))
        out += [jsonio.loads(v.body) for v in page.matches if v.body is not None]
        cursor = page.next_cursor
        if cursor is None:
            return out


async def after_intake(store: Store, consent: ResourceVersion, today: date) -> None:
    """The intake hook: refresh the Groups of the Consent's person. The intake itself has committed, so a
    failure here is logged (the Groups catch up at the person's next intake), never the client's error."""
    body = jsonio.loads(consent.body) if consent.body is not None else {}
    rtype, _, pid = str((body.get("patient") or {}).get("reference") or "").rpartition("/")
    if rtype.rsplit("/", 1)[-1] != "Patient" or not pid:
        return
    try:
        await refresh_person(store, pid, today)
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("Care Partner Groups of Patient/%s were not updated after intake", pid)


async def refresh_person(store: Store, patient_id: str, today: date) -> None:
    """Bring the Care Partner Groups up to date for one person (after an intake wrote their Consents)."""
    consents = await _search_all(store, "Consent", [("patient", f"Patient/{patient_id}")])
    wanted: set[str] = set()
    for consent in consents:
        wanted |= named(consent, today.isoformat())
    current = {g["id"] for g in await _search_all(store, "Group", [("member", f"Patient/{patient_id}")])
               if g["id"] == ALL_PARTNERS_GROUP or str(g["id"]).startswith("cp-")}
    for gid in sorted(wanted - current):
        await _change(store, gid, patient_id, add=True)
    for gid in sorted(current - wanted):
        await _change(store, gid, patient_id, add=False)


def _new_group(gid: str) -> dict[str, Any]:
    everyone = gid == ALL_PARTNERS_GROUP
    manager = NETWORK_REFERENCE if everyone else None
    name = ("Persons whose ASCMI form shares with all Care Partners" if everyone
            else "Persons whose ASCMI form names this Care Partner (collector or included recipient)")
    group: dict[str, Any] = {"resourceType": "Group", "id": gid, "type": "person", "actual": True, "name": name,
                             "member": []}
    if manager:
        group["managingEntity"] = {"reference": manager}
    return group


async def _change(store: Store, gid: str, patient_id: str, *, add: bool) -> None:
    async def write(tx: Transaction) -> None:
        found = await tx.current("Group", gid)
        group = jsonio.loads(found.body) if found is not None and found.body is not None else _new_group(gid)
        if gid != ALL_PARTNERS_GROUP and "managingEntity" not in group:
            org = await _organization_for(tx, gid)
            if org:
                group["managingEntity"] = {"reference": org}
        reference = f"Patient/{patient_id}"
        members = [m for m in group.get("member") or [] if (m.get("entity") or {}).get("reference") != reference]
        if add:
            members.append({"entity": {"reference": reference}})
        if len(members) == len(group.get("member") or []) and found is not None:
            return  # nothing to change (a concurrent refresh got there first)
        group["member"] = sorted(members, key=lambda m: m["entity"]["reference"])
        group["quantity"] = len(group["member"])
        group.pop("meta", None)
        await repo.update(tx, "Group", gid, group, check_refs=False)

    await store.run_transaction(write)


async def _organization_for(tx: Transaction, gid: str) -> str | None:
    org_id = gid.removeprefix("cp-")
    found = await tx.current("Organization", org_id)
    return f"Organization/{org_id}" if found is not None and not found.deleted else None
