"""Search interactions: ``GET [type]?…``, ``POST [type]/_search`` (placeholder until the search engine lands)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import context
from fhir_server.api.negotiation import negotiate
from fhir_server.api.responses import json_response
from fhir_server.repository.search import search_bundle


def capability_search_params(rtype: str) -> list[dict[str, Any]]:
    return [{"name": "_id", "type": "token"}]


async def search_type(request: Request, rtype: str) -> Response:
    context.resource_type(rtype)
    neg = negotiate(request)
    srv = context.server(request)
    bundle = await search_bundle(srv.store, rtype, request.url.query, context.base_url(request), srv.settings,
                                 neg.strict)
    return json_response(bundle, 200, None, neg)


async def search_type_post(request: Request, rtype: str) -> Response:
    """``POST [type]/_search`` with an x-www-form-urlencoded body: the same as GET with those parameters."""
    context.resource_type(rtype)
    neg = negotiate(request)
    srv = context.server(request)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/x-www-form-urlencoded", ""):
        from fhir_server.fhir.outcome import UnsupportedMediaType

        raise UnsupportedMediaType("POST _search takes an application/x-www-form-urlencoded body")
    from fhir_server.api.negotiation import read_body

    body = (await read_body(request, srv.settings.max_body_bytes)).decode("utf-8", "replace")
    query = "&".join(q for q in (request.url.query, body) if q)
    bundle = await search_bundle(srv.store, rtype, query, context.base_url(request), srv.settings, neg.strict)
    return json_response(bundle, 200, None, neg)
