"""Search as an interaction: parse the query, run it on a store (or inside a transaction), build the Bundle."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from fhir_server.fhir.bundles import searchset_bundle
from fhir_server.fhir.search.ast import SearchQuery
from fhir_server.settings import Settings
from fhir_server.store.base import Store, Transaction


async def search_bundle(source: Store | Transaction, rtype: str, query_string: str, base: str,
                        settings: Settings, strict: bool = False) -> dict[str, Any]:
    pairs = parse_qsl(query_string, keep_blank_values=True)
    ids = tuple(i for k, v in pairs if k == "_id" for i in v.split(",") if i)
    count = settings.default_count
    for k, v in pairs:
        if k == "_count" and v.isdigit():
            count = min(int(v), settings.max_count)
    cursor = next((v for k, v in pairs if k == "_cursor"), None)
    page = await source.search(SearchQuery(rtype, ids, count, cursor))
    params = [(k, v) for k, v in pairs if k != "_cursor"]
    self_link = f"{base}/{rtype}" + (f"?{urlencode(params)}" if params else "")
    next_link = f"{base}/{rtype}?{urlencode([*params, ('_cursor', page.next_cursor)])}" if page.next_cursor else None
    return searchset_bundle(page.matches, page.includes, base, self_link, next_link, page.total)
