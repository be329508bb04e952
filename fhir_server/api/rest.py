"""Instance and type interactions of http.html: read, vread, create, update, delete.

Handlers are thin: negotiate, parse, call the repository inside a store transaction, answer.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import context
from fhir_server.api.negotiation import Negotiated, negotiate, read_json
from fhir_server.api.responses import json_response, version_headers, write_response
from fhir_server.api.validate import enforce_profiles
from fhir_server.consent import disclosure
from fhir_server.fhir import instant, jsonio, registry
from fhir_server.fhir.outcome import BadRequest, Gone, NotFound, information
from fhir_server.fhir.summary import check_summary, subset
from fhir_server.repository import resources as repo
from fhir_server.repository.conditional import find_one_for_create
from fhir_server.store.base import ResourceVersion, Transaction


def _not_modified(request: Request, version_id: int, last_updated: str) -> bool:
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip() for t in inm.split(",")}
        return "*" in tags or f'W/"{version_id}"' in tags or f'"{version_id}"' in tags
    ims = request.headers.get("if-modified-since")
    if ims is not None:
        since = instant.parse_http_date(ims)
        if since is not None:
            modified = instant.parse_datetime(last_updated)
            assert modified is not None
            return modified.replace(microsecond=0) <= since
    return False


def _serve(request: Request, neg: Negotiated, body: bytes, headers: dict[str, str]) -> Response:
    """The stored bytes as they are, or the ``_summary``/``_elements`` subset the client asked for."""
    summary = request.query_params.get("_summary")
    elements = request.query_params.get("_elements")
    if summary is not None:
        check_summary(summary)
        if summary == "count":
            raise BadRequest("_summary=count applies to searches; a read returns one resource", ["_summary"])
    if summary not in (None, "false") or elements:
        chosen = [e.strip() for e in elements.split(",") if e.strip()] if elements else None
        return json_response(subset(jsonio.loads(body), summary, chosen), 200, headers, neg)
    return json_response(body, 200, headers, neg)


async def read(request: Request, rtype: str, id: str) -> Response:
    context.resource_type(rtype)
    neg = negotiate(request)
    srv, caller = context.server(request), context.caller(request)
    found = await srv.store.read(rtype, id)
    if found is not None and not await srv.gate.can_see(caller, found):
        found = None  # withheld: the same 404 as a resource that never existed
    version = repo.require_live(found, rtype, id)
    headers = version_headers(version)
    if _not_modified(request, version.version_id, version.last_updated):
        return Response(status_code=304, headers=headers)
    disclosure.record(srv.audit, srv.gate, caller, "read", f"GET {request.url.path}", [version],
                      base_url=context.base_url(request))
    return _serve(request, neg, srv.gate.disclosed(caller, version), headers)


async def vread(request: Request, rtype: str, id: str, vid: str) -> Response:
    context.resource_type(rtype)
    neg = negotiate(request)
    version_id = context.whole_number(vid)
    if version_id is None:
        raise NotFound(f"{rtype}/{id} has no version {vid!r}: version ids are whole numbers")
    srv, caller = context.server(request), context.caller(request)
    version = await srv.store.vread(rtype, id, version_id)
    if version is not None and not caller.is_administrator and not await srv.gate.visible_versions(caller,
                                                                                                     [version]):
        version = None  # withheld: the same 404 as a version that does not exist
    if version is None:
        raise NotFound(f"{rtype}/{id} has no version {vid}")
    headers = version_headers(version)
    if version.deleted:
        raise Gone(f"version {vid} of {rtype}/{id} is a deletion")
    disclosure.record(srv.audit, srv.gate, caller, "vread", f"GET {request.url.path}", [version],
                      base_url=context.base_url(request))
    return _serve(request, neg, srv.gate.disclosed(caller, version), headers)


async def create(request: Request, rtype: str) -> Response:
    context.resource_type(rtype)
    neg = negotiate(request)
    srv = context.server(request)
    body = repo.check_body(await read_json(request, srv.settings.max_body_bytes), rtype)
    warnings = await enforce_profiles(request, body)
    base = context.base_url(request)
    caller = context.caller(request)
    if_none_exist = request.headers.get("if-none-exist")

    async def write(tx: Transaction) -> ResourceVersion | repo.WriteResult:
        """The match (200) or the new resource (201); run again when a concurrent create claimed the
        same condition first (MongoDB), so that the loser answers with the winner's resource."""
        if if_none_exist is not None:
            existing = await find_one_for_create(tx, rtype, if_none_exist, gate=srv.gate, caller=caller)
            if existing is not None:
                return existing
        return await repo.create(tx, body, check_refs=srv.settings.check_references, base_url=base,
                                 visible=srv.gate.shows(caller))

    result = await srv.store.run_transaction(write)
    if isinstance(result, ResourceVersion):
        return write_response(neg, 200, result, base, f"{result.reference} already matches")
    return write_response(neg, 201, result.version, base, f"created {result.version.reference}", warnings)


async def update(request: Request, rtype: str, id: str) -> Response:
    context.resource_type(rtype)
    neg = negotiate(request)
    srv = context.server(request)
    if not registry.is_valid_id(id):
        raise BadRequest(f"{id!r} is not a valid FHIR id (1-64 of A-Z a-z 0-9 - .)", [f"{rtype}.id"])
    body = repo.check_body(await read_json(request, srv.settings.max_body_bytes), rtype, id)
    warnings = await enforce_profiles(request, body)
    if_match = request.headers.get("if-match")
    expected = context.version_from_etag(if_match, "If-Match") if if_match is not None else None
    base = context.base_url(request)
    await srv.gate.guard_write(context.caller(request), await srv.store.read(rtype, id), rtype, id)

    async def write(tx: Transaction) -> repo.WriteResult:
        return await repo.update(tx, rtype, id, body, if_match=expected,
                                 check_refs=srv.settings.check_references, base_url=base,
                                 visible=srv.gate.shows(context.caller(request)))

    result = await srv.store.run_transaction(write)
    status = 201 if result.created else 200
    return write_response(neg, status, result.version, base,
                          f"{'created' if result.created else 'updated'} {result.version.reference}", warnings)


async def delete(request: Request, rtype: str, id: str) -> Response:
    context.resource_type(rtype)
    neg = negotiate(request)
    srv = context.server(request)
    if_match = request.headers.get("if-match")
    expected = context.version_from_etag(if_match, "If-Match") if if_match is not None else None
    await srv.gate.guard_write(context.caller(request), await srv.store.read(rtype, id), rtype, id, delete=True)

    async def write(tx: Transaction) -> ResourceVersion | None:
        return await repo.delete(tx, rtype, id, if_match=expected)

    version = await srv.store.run_transaction(write)
    headers = {"ETag": f'W/"{version.version_id}"'} if version else {}
    text = f"deleted {rtype}/{id}" if version else f"{rtype}/{id} was already deleted or never existed"
    return json_response(information(text), 200, headers, neg)
