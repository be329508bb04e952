"""History interactions (http.html#history): instance, type and system, with ``_count``, ``_since``, ``_at``."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import context
from fhir_server.api.negotiation import negotiate
from fhir_server.api.responses import json_response
from fhir_server.consent import disclosure
from fhir_server.consent.disclose import label_bundle
from fhir_server.consent.gated_search import gated_history
from fhir_server.fhir import instant
from fhir_server.fhir.bundles import history_bundle
from fhir_server.fhir.outcome import BadRequest, NotFound
from fhir_server.store.base import HistoryQuery

_KNOWN = {"_count", "_since", "_at", "_cursor", "_format", "_pretty", "_total"}


def _instant_param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    parsed = instant.to_instant(value)
    if parsed is None:
        raise BadRequest(f"{name} must be a FHIR instant like 2026-01-31T12:00:00Z, not {value!r}", [name])
    return parsed


def parse_count(request: Request, default: int, maximum: int) -> int:
    raw = request.query_params.get("_count")
    if raw is None:
        return default
    count = context.whole_number(raw)
    if count is None:
        raise BadRequest(f"_count must be a whole number, not {raw!r}", ["_count"])
    return min(count, maximum)


async def _history(request: Request, rtype: str | None, id: str | None, path: str) -> Response:
    neg = negotiate(request)
    srv = context.server(request)
    if neg.strict:
        unknown = sorted(set(request.query_params) - _KNOWN)
        if unknown:
            raise BadRequest(f"unknown history parameter(s): {', '.join(unknown)}", unknown, code="not-supported")
    cursor = request.query_params.get("_cursor")  # opaque: each store checks its own tokens
    query = HistoryQuery(rtype, id, _instant_param(request, "_since"), _instant_param(request, "_at"),
                         parse_count(request, srv.settings.default_count, srv.settings.max_count), cursor)
    caller = context.caller(request)
    page = await gated_history(srv.store, srv.gate, caller, query)
    if id is not None and page.total == 0 and cursor is None and query.since is None and query.at is None:
        assert rtype is not None
        raise NotFound(f"{rtype}/{id} is not known to this server")
    base = context.base_url(request)
    params = {k: v for k, v in request.query_params.items() if k in _KNOWN and k != "_cursor"}
    self_link = f"{base}/{path}" + (f"?{urlencode(request.query_params)}" if request.query_params else "")
    next_link = None
    if page.next_cursor:
        next_link = f"{base}/{path}?{urlencode({**params, '_cursor': page.next_cursor})}"
    bundle = history_bundle(page.versions, base, self_link, next_link, page.total)
    if not caller.is_administrator:
        label_bundle(bundle, [v.body for v in page.versions if v.body is not None])
    interaction = "history-instance" if id else "history-type" if rtype else "history-system"
    disclosure.record(srv.audit, srv.gate, caller, interaction, f"GET {request.url.path}" +
                      (f"?{request.url.query}" if request.url.query else ""), page.versions,
                      base_url=context.base_url(request))
    return json_response(bundle, 200, None, neg)


async def history_instance(request: Request, rtype: str, id: str) -> Response:
    context.resource_type(rtype)
    return await _history(request, rtype, id, f"{rtype}/{id}/_history")


async def history_type(request: Request, rtype: str) -> Response:
    context.resource_type(rtype)
    return await _history(request, rtype, None, f"{rtype}/_history")


async def history_system(request: Request) -> Response:
    return await _history(request, None, None, "_history")
