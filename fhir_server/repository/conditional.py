"""Conditional interactions: find the resources a search URL names, inside the current transaction.

Used by conditional create (``If-None-Exist``), update and delete, and by conditional references in bundles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from fhir_server.fhir.outcome import BadRequest, PreconditionFailed
from fhir_server.fhir.search import api as search_api
from fhir_server.store.base import ResourceVersion, Store, Transaction

if TYPE_CHECKING:
    from fhir_server.consent.gate import Gate
    from fhir_server.security.caller import Caller


async def find(tx: Transaction | Store, resource_type: str, query_string: str, limit: int = 2, *,
               gate: Gate | None = None, caller: Caller | None = None) -> list[ResourceVersion]:
    """Up to ``limit`` current resources matching ``query_string`` (strict parsing: an unknown
    parameter must not silently widen the match to everything). With a Care Partner ``caller``, only resources
    the ``gate`` lets it see match: a conditional interaction never matches, or reveals, a withheld one."""
    pairs = parse_qsl(query_string.lstrip("?"), keep_blank_values=True)
    criteria = [(k, v) for k, v in pairs if not k.startswith("_") or k.split(":")[0] in search_api.FILTER_PARAMS]
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
    """If-None-Exist: the existing match (None → create). Several matches → 412."""
    found = await find(tx, resource_type, query_string, gate=gate, caller=caller)
    if len(found) > 1:
        raise PreconditionFailed(f"If-None-Exist {query_string!r} matches more than one {resource_type}; "
                                 "make the criteria more selective", code="multiple-matches")
    return found[0] if found else None
