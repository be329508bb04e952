"""Search interactions: ``GET [type]?…``, ``POST [type]/_search`` and system search ``GET [base]?_type=…``."""

from __future__ import annotations

from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import context
from fhir_server.api.negotiation import negotiate, read_body
from fhir_server.api.responses import json_response
from fhir_server.consent import disclosure
from fhir_server.fhir.outcome import UnsupportedMediaType
from fhir_server.fhir.search import definitions
from fhir_server.fhir.search.parse import MODIFIERS
from fhir_server.repository.search import search_bundle
from fhir_server.store.base import ResourceVersion


@cache
def capability_search_params(rtype: str) -> list[dict[str, Any]]:
    """Every parameter the engine supports for ``rtype``, as CapabilityStatement.rest.resource.searchParam."""
    out = []
    for code, param in sorted(definitions.params_for(rtype).items()):
        entry: dict[str, Any] = {"name": code, "type": param.type}
        modifiers = sorted(MODIFIERS.get(param.type, ()))
        if param.type == "reference":
            modifiers.append("[type]")
        if modifiers:
            entry["documentation"] = "modifiers: " + ", ".join(f":{m}" for m in modifiers)
        out.append(entry)
    return out


async def _run(request: Request, rtype: str | None, query: str) -> Response:
    neg = negotiate(request)
    srv = context.server(request)
    caller = context.caller(request)
    returned: list[ResourceVersion] = []
    bundle = await search_bundle(srv.store, rtype, query, context.base_url(request), srv.settings, neg.strict,
                                 gate=srv.gate, caller=caller, returned=returned)
    disclosure.record(srv.audit, srv.gate, caller, "search-type" if rtype else "search-system",
                      f"{request.method} {request.url.path}?{query}", returned,
                      base_url=context.base_url(request))
    return json_response(bundle, 200, None, neg)


async def search_type(request: Request, rtype: str) -> Response:
    context.resource_type(rtype)
    return await _run(request, rtype, request.url.query)


async def search_system(request: Request) -> Response:
    return await _run(request, None, request.url.query)


async def search_type_post(request: Request, rtype: str) -> Response:
    """``POST [type]/_search`` with an x-www-form-urlencoded body: the same as GET with those parameters."""
    context.resource_type(rtype)
    srv = context.server(request)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/x-www-form-urlencoded", ""):
        raise UnsupportedMediaType("POST _search takes an application/x-www-form-urlencoded body")
    body = (await read_body(request, srv.settings.max_body_bytes)).decode("utf-8", "replace")
    return await _run(request, rtype, "&".join(q for q in (request.url.query, body) if q))
