"""The search entry points used outside the search package (placeholder until the parser lands)."""

from __future__ import annotations

from fhir_server.fhir.outcome import InvalidSearchParameter
from fhir_server.fhir.search.ast import SearchQuery

FILTER_PARAMS = frozenset({"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", "_has", "_list",
                           "_text", "_content", "_filter"})


def parse_conditional(resource_type: str, pairs: list[tuple[str, str]], limit: int) -> SearchQuery:
    ids: list[str] = []
    for key, value in pairs:
        if key != "_id":
            raise InvalidSearchParameter(f"search parameter {key!r} is not supported yet")
        ids += value.split(",")
    return SearchQuery(resource_type, tuple(ids), limit)
