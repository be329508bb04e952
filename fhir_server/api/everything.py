"""``GET|POST Patient/[id]/$everything`` over HTTP (the logic is in :mod:`fhir_server.repository.everything`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import context, operations
from fhir_server.api.negotiation import negotiate, read_json
from fhir_server.api.responses import json_response
from fhir_server.consent import disclosure
from fhir_server.consent.disclose import label_bundle
from fhir_server.fhir import instant, registry
from fhir_server.fhir.bundles import searchset_bundle
from fhir_server.fhir.outcome import BadRequest, NotFound
from fhir_server.fhir.search.normalize import date_bounds
from fhir_server.repository.everything import EverythingQuery, everything_page

_PARAMS = ("start", "end", "_since", "_type", "_count", "_cursor")


def _from_parameters(body: Any) -> list[tuple[str, str]]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise BadRequest("POST $everything takes a Parameters resource (or no body)", ["resourceType"])
    out = []
    for p in body.get("parameter") or []:
        value = next((v for k, v in p.items() if k.startswith("value")), None)
        if p.get("name") in _PARAMS and value is not None:
            out.append((str(p["name"]), str(value)))
    return out


def _query(pairs: list[tuple[str, str]], patient_id: str, default: int, maximum: int) -> EverythingQuery:
    values = dict(pairs)
    for name in ("start", "end"):
        if name in values and date_bounds(values[name]) is None:
            raise BadRequest(f"{name} must be a FHIR date like 2025-01-31, not {values[name]!r}", [name])
    since = None
    if "_since" in values:
        since = instant.to_instant(values["_since"])
        if since is None:
            raise BadRequest(f"_since must be a FHIR instant, not {values['_since']!r}", ["_since"])
    types = tuple(t.strip() for name, v in pairs if name == "_type" for t in v.split(",") if t.strip())
    unknown = [t for t in types if not registry.is_resource_type(t)]
    if unknown:
        raise BadRequest(f"_type names unknown resource types: {', '.join(unknown)}", ["_type"])
    count = default
    if "_count" in values:
        parsed = context.whole_number(values["_count"])
        if parsed is None or parsed == 0:
            raise BadRequest(f"_count must be a positive whole number, not {values['_count']!r}", ["_count"])
        count = min(parsed, maximum)
    return EverythingQuery(patient_id, values.get("start"), values.get("end"), since, types, count,
                           values.get("_cursor"))


async def patient_everything(request: Request, rtype: str, id: str) -> Response:
    neg = negotiate(request)
    srv, caller = context.server(request), context.caller(request)
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k in _PARAMS]
    if request.method == "POST" and int(request.headers.get("content-length") or 0) > 0:
        pairs += _from_parameters(await read_json(request, srv.settings.max_body_bytes))
    query = _query(pairs, id, srv.settings.default_count, srv.settings.max_count)
    if not await srv.gate.can_see(caller, await srv.store.read("Patient", id)):
        raise NotFound(f"Patient/{id} is not known to this server")
    versions, cursor = await everything_page(srv.store, srv.gate, caller, query)
    versions = srv.gate.disclose_all(caller, versions)
    base = context.base_url(request)
    kept = [(k, v) for k, v in pairs if k != "_cursor"]
    path = f"{base}/Patient/{id}/$everything"
    self_link = f"{path}?{urlencode(kept)}" if kept else path
    next_link = f"{path}?{urlencode([*kept, ('_cursor', cursor)])}" if cursor else None
    total = len(versions) if cursor is None and query.cursor is None else None
    bundle = searchset_bundle(versions, [], base, self_link, next_link, total)
    if not caller.is_administrator:
        label_bundle(bundle, [v.body for v in versions if v.body is not None])
    disclosure.record(srv.audit, srv.gate, caller, "operation", f"{request.method} {request.url.path}" +
                      (f"?{request.url.query}" if request.url.query else ""), versions,
                      base_url=context.base_url(request))
    return json_response(bundle, 200, None, neg)


operations.register(operations.Operation("everything", "instance", ("Patient",), ("GET", "POST"),
                                         patient_everything))
