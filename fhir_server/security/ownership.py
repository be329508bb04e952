"""Care Partner write limits (ACCESS.md §B, writes): a Care Partner client acting for Organization O files
intake, revocations, expiration events and FAST operations only as O.

O is matched by reference (``Organization/<id>``) or by any identifier (system and value) the stored
Organization O carries, so a form naming O by its NPI matches the registered ``Organization/<id>``. The plain
FHIR limits (no create/update/patch/delete of Consent, Organization, OrganizationAffiliation) are route-level and
live in :mod:`fhir_server.security.permissions`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from fhir_server.fhir import jsonio
from fhir_server.security.caller import Caller
from fhir_server.security.errors import Forbidden
from fhir_server.store.base import Store

Ident = tuple[str, str]
_ORG_REF = re.compile(r"(?:^|/)Organization/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def identifiers(items: Any) -> set[Ident]:
    """``[{"system": s, "value": v}, …]`` (or a Reference's one ``identifier``) → ``{(s, v)}``."""
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        return set()
    return {(str(i.get("system", "")), str(i.get("value"))) for i in items
            if isinstance(i, dict) and i.get("value") is not None}


async def organization_identifiers(store: Store, reference: str) -> set[Ident]:
    rtype, _, oid = reference.partition("/")
    if rtype != "Organization" or not oid:
        return set()
    version = await store.read("Organization", oid)
    if version is None or version.deleted or version.body is None:
        return set()
    return identifiers(jsonio.loads(version.body).get("identifier"))


async def require_own(store: Store, caller: Caller, *, named: Iterable[Ident] = (), references: Iterable[str] = (),
                      what: str) -> None:
    """403 unless the Organization named (by ``named`` identifiers or by ``references``) is the caller's own."""
    if caller.is_administrator:
        return
    own = caller.organization
    refs = [r for r in references if isinstance(r, str)]
    if own in refs:
        return
    mine = await organization_identifiers(store, str(own))
    theirs = set(named)
    for ref in refs:
        theirs |= await organization_identifiers(store, ref)
    if mine & theirs:
        return
    raise Forbidden(f"{what} must be this client's own Organization ({own}, matched by reference or by one of "
                    "its identifiers): a Care Partner files only for itself")


def consent_organizations(consent: dict[str, Any]) -> tuple[list[str], set[Ident]]:
    """A Consent's ``organization`` (the collector) as references and identifiers."""
    refs: list[str] = []
    idents: set[Ident] = set()
    for org in consent.get("organization") or []:
        if isinstance(org, dict):
            match = _ORG_REF.search(str(org.get("reference", "")))
            if match:
                refs.append(f"Organization/{match[1]}")
            idents |= identifiers(org.get("identifier"))
    return refs, idents
