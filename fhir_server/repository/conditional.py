"""Conditional interactions: find the resources a search URL names, inside the current transaction.

Used by conditional create (``If-None-Exist``), update and delete, and by conditional references in bundles.
A create under a condition is atomic (FHIR R4 http.html#ccreate): when the condition finds nothing, the
transaction claims the criteria (:meth:`Transaction.claim`) before creating, so of N concurrent requests with the
same criteria one creates and the others, run again, find it (docs/architecture.md, "Conditional create").
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

from fhir_server.fhir.outcome import BadRequest, PreconditionFailed
from fhir_server.fhir.search import api as search_api
from fhir_server.store.base import ResourceVersion, Store, Transaction

if TYPE_CHECKING:
    from fhir_server.consent.gate import Gate
    from fhir_server.security.caller import Caller


def _criteria(query_string: str) -> list[tuple[str, str]]:
    pairs = parse_qsl(query_string.lstrip("?"), keep_blank_values=True)
    return [(k, v) for k, v in pairs if not k.startswith("_") or k.split(":")[0] in search_api.FILTER_PARAMS]


def claim_key(resource_type: str, query_string: str) -> str:
    """The claim of a condition: type + criteria in a canonical order, hashed (the claim stores no identifier
    value). Two spellings of one condition that differ only in parameter order or ``_format`` share a claim;
    different criteria that happen to match the same resource do not (as in HAPI's search-URL table)."""
    canonical = f"{resource_type}?{urlencode(sorted(_criteria(query_string)))}"
    return hashlib.sha256(canonical.encode()).hexdigest()


async def find(tx: Transaction | Store, resource_type: str, query_string: str, limit: int = 2, *,
               gate: Gate | None = None, caller: Caller | None = None) -> list[ResourceVersion]:
    """Up to ``limit`` current resources matching ``query_string`` (strict parsing: an unknown
    parameter must not silently widen the match to everything). With a Care Partner ``caller``, only resources
    the ``gate`` lets it see match: a conditional interaction never matches, or reveals, a withheld one."""
    criteria = _criteria(query_string)
    if not criteria:
        raise BadRequest(f"the condition {query_string!r} has no search criteria; it would match everything",
                         code="invalid")
    query = search_api.parse_conditional(resource_type, criteria, limit)
    if gate is not None and caller is not None and not caller.is_administrator:
        from fhir_server.consent.gated_search import gated_search

        return (await gated_search(tx, gate, caller, query)).matches
    page = await tx.search(query)
    return page.matches


async def find_one_for_create(tx: Transaction, resource_type: str, query_string: str, *,
                              gate: Gate | None = None, caller: Caller | None = None) -> ResourceVersion | None:
    """If-None-Exist: the existing match (None → create, the criteria now claimed). Several matches → 412.

    A lost claim raises :class:`~fhir_server.store.base.RaceLost`: the caller runs its transaction again."""
    found = await find(tx, resource_type, query_string, gate=gate, caller=caller)
    if len(found) > 1:
        raise PreconditionFailed(f"If-None-Exist {query_string!r} matches more than one {resource_type}; "
                                 "make the criteria more selective", code="multiple-matches")
    if found:
        return found[0]
    await tx.claim(claim_key(resource_type, query_string))
    return None
