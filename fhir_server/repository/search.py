"""Search as an interaction: parse the query, run it on a store (or inside a transaction), build the Bundle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from fhir_server.fhir.bundles import searchset_bundle
from fhir_server.fhir.outcome import operation_outcome
from fhir_server.fhir.search.api import parse_search
from fhir_server.settings import Settings
from fhir_server.store.base import ResourceVersion, Store, Transaction

if TYPE_CHECKING:
    from fhir_server.consent.gate import Gate
    from fhir_server.security.caller import Caller

_IGNORED = {"_format", "_pretty"}


def query_pairs(query_string: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in parse_qsl(query_string, keep_blank_values=True) if k not in _IGNORED]


async def search_bundle(source: Store | Transaction, rtype: str | None, query_string: str, base: str,
                        settings: Settings, strict: bool = False, *, gate: Gate | None = None,
                        caller: Caller | None = None, returned: list[ResourceVersion] | None = None
                        ) -> dict[str, Any]:
    """A searchset Bundle for ``[base]/[rtype]?query_string`` (``rtype`` None: system search with ``_type``).

    With a Care Partner ``caller`` the search goes through the ``gate`` (:mod:`fhir_server.consent.gated_search`)
    and the entries are the disclosed copies, the Bundle labelled with their confidentiality high-water mark."""
    query = parse_search(rtype, query_pairs(query_string), strict=strict, default_count=settings.default_count,
                         max_count=settings.max_count)
    partner = gate is not None and caller is not None and not caller.is_administrator
    if partner:
        from fhir_server.consent.gated_search import gated_search

        assert gate is not None and caller is not None
        page = await gated_search(source, gate, caller, query)
        page.matches = gate.disclose_all(caller, page.matches)
        page.includes = gate.disclose_all(caller, page.includes)
    else:
        page = await source.search(query)
    if returned is not None:
        returned += [*page.matches, *page.includes]
    path = f"{base}/{rtype}" if rtype else base
    head = query.self_link_query()
    self_link = f"{path}?{head}" if head else path
    next_link = f"{path}?{query.next_link_query(page.next_cursor)}" if page.next_cursor else None
    warnings = [*query.warnings, *page.warnings]
    issues = operation_outcome(warnings) if warnings else None
    bundle = searchset_bundle(page.matches, page.includes, base, self_link, next_link, page.total,
                              summary=query.summary, elements=list(query.elements) or None, issues=issues)
    if partner:
        from fhir_server.consent.disclose import label_bundle

        label_bundle(bundle, [v.body for v in (*page.matches, *page.includes) if v.body is not None])
    return bundle
