"""Token ``:in`` / ``:not-in`` / ``:below`` / ``:above`` on MongoDB: the pure expansion of
:mod:`fhir_server.fhir.search.terminology`, fed by an async ``fetch(resource_type, url)`` from the store."""

from __future__ import annotations

from fhir_server.fhir.search.ast import Filter
from fhir_server.fhir.search.terminology import AsyncFetch, Pair, resolve
from fhir_server.fhir.search.terminology import code_pairs as pure_code_pairs


async def code_pairs(fetch: AsyncFetch, f: Filter) -> list[Pair]:
    """The (system, code) pairs a token filter with a terminology modifier stands for."""
    return await resolve(fetch, lambda sync_fetch: pure_code_pairs(sync_fetch, f))
