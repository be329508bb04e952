"""Search interactions (placeholder until the search engine lands: ``_id`` and paging only)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import context
from fhir_server.api.history import parse_count
from fhir_server.api.negotiation import negotiate
from fhir_server.api.responses import json_response
from fhir_server.fhir.bundles import searchset_bundle
from fhir_server.fhir.search.ast import SearchQuery


def capability_search_params(rtype: str) -> list[dict[str, Any]]:
    return [{"name": "_id", "type": "token"}]


async def search_type(request: Request, rtype: str) -> Response:
    context.resource_type(rtype)
    neg = negotiate(request)
    srv = context.server(request)
    ids = tuple(i for v in request.query_params.getlist("_id") for i in v.split(",") if i)
    count = parse_count(request, srv.settings.default_count, srv.settings.max_count)
    query = SearchQuery(rtype, ids, count, request.query_params.get("_cursor"))
    page = await srv.store.search(query)
    base = context.base_url(request)
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "_cursor"]
    self_link = f"{base}/{rtype}" + (f"?{urlencode(params)}" if params else "")
    next_link = f"{base}/{rtype}?{urlencode([*params, ('_cursor', page.next_cursor)])}" if page.next_cursor else None
    return json_response(searchset_bundle(page.matches, page.includes, base, self_link, next_link, page.total),
                         200, None, neg)
