"""The search entry points used outside the search package.

- :func:`parse_search` (re-exported): a search request's URL-decoded query pairs → :class:`SearchQuery`.
- :func:`parse_conditional`: the criteria of a conditional interaction (``If-None-Exist``, conditional
  update/delete) — always strict, so an unknown parameter never widens the match to everything.
"""

from __future__ import annotations

from dataclasses import replace

from fhir_server.fhir.search.ast import SearchQuery
from fhir_server.fhir.search.parse import parse_search

__all__ = ["FILTER_PARAMS", "parse_conditional", "parse_search"]

FILTER_PARAMS = frozenset({"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", "_has", "_list",
                           "_text", "_content", "_filter"})


def parse_conditional(resource_type: str, pairs: list[tuple[str, str]], limit: int) -> SearchQuery:
    """Strict parse of the criteria; ``limit`` matches are enough to decide (0, 1 or several)."""
    query = parse_search(resource_type, pairs, strict=True)
    return replace(query, count=limit, total="none", includes=(), revincludes=(), sort=())
