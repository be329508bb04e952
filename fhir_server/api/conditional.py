"""PATCH and the conditional interactions on a type URL: ``PUT/DELETE/PATCH [type]?criteria``.

Conditional update: no match → create (with the client's id if it gave one), one match → update it, several
→ 412. Like conditional create, the create is atomic: concurrent identical requests create one resource, and
the others update it. Conditional delete: every match is deleted (``conditionalDelete: multiple``). Conditional
patch: exactly one match.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import context
from fhir_server.api.negotiation import negotiate, read_json
from fhir_server.api.responses import json_response, write_response
from fhir_server.api.validate import enforce_profiles
from fhir_server.fhir import jsonio
from fhir_server.fhir.outcome import BadRequest, Conflict, NotFound, PreconditionFailed, information
from fhir_server.repository import conditional, patch
from fhir_server.repository import resources as repo
from fhir_server.store.base import Transaction

_PATCH_TYPES = {"application/json-patch+json"}


def _criteria(request: Request) -> str:
    query = "&".join(p for p in request.url.query.split("&") if p and not p.startswith(("_format=", "_pretty=")))
    if not query:
        raise BadRequest("a conditional interaction on a type URL needs search criteria (e.g. ?identifier=sys|val)")
    return query


def _if_match(request: Request) -> int | None:
    value = request.headers.get("if-match")
    return context.version_from_etag(value, "If-Match") if value is not None else None


async def _refuse_overwrite(tx: Transaction, rtype: str, id: str) -> None:
    """No match, but the body names a resource that exists: it did not match, so it must not be replaced."""
    current = await tx.current(rtype, id)
    if current is not None and not current.deleted:
        raise Conflict(f"{rtype}?criteria matched nothing, yet the body's id names the existing {rtype}/{id}; "
                       f"use PUT {rtype}/{id} to update it")


async def conditional_update(request: Request, rtype: str) -> Response:
    context.resource_type(rtype)
    neg = negotiate(request)
    srv = context.server(request)
    criteria = _criteria(request)
    body = repo.check_body(await read_json(request, srv.settings.max_body_bytes), rtype)
    warnings = await enforce_profiles(request, body)
    base = context.base_url(request)
    caller = context.caller(request)

    async def write(tx: Transaction) -> repo.WriteResult:
        """Run again when a concurrent request claimed the same criteria first (MongoDB): the loser then
        updates the winner's resource instead of creating a second one."""
        found = await conditional.find(tx, rtype, criteria, gate=srv.gate, caller=caller)
        if len(found) > 1:
            raise PreconditionFailed(f"{rtype}?{criteria} matches more than one resource", code="multiple-matches")
        if found:
            target = found[0].id
            if body.get("id") not in (None, target):
                raise BadRequest(f"the resource id {body['id']!r} differs from the matched {rtype}/{target}",
                                 [f"{rtype}.id"])
        else:
            target = body.get("id") or repo.new_id()
            await srv.gate.guard_write(caller, await tx.current(rtype, target), rtype, target,
                                       assigned="id" not in body)
            await _refuse_overwrite(tx, rtype, target)
            await tx.claim(conditional.claim_key(rtype, criteria))
        return await repo.update(tx, rtype, target, {**body, "id": target}, if_match=_if_match(request),
                                 check_refs=srv.settings.check_references, base_url=base,
                                 visible=srv.gate.shows(caller))

    result = await srv.store.run_transaction(write)
    return write_response(neg, 201 if result.created else 200, result.version, base,
                          f"{'created' if result.created else 'updated'} {result.version.reference}", warnings)


async def conditional_delete(request: Request, rtype: str) -> Response:
    context.resource_type(rtype)
    neg = negotiate(request)
    srv = context.server(request)
    criteria = _criteria(request)
    async with srv.store.transaction() as tx:
        found = await conditional.find(tx, rtype, criteria, limit=srv.settings.max_count, gate=srv.gate,
                                       caller=context.caller(request))
        for match in found:
            await repo.delete(tx, rtype, match.id)
    return json_response(information(f"deleted {len(found)} {rtype} resource(s) matching {criteria}"), 200, None, neg)


async def _patch(request: Request, rtype: str, id: str | None) -> Response:
    context.resource_type(rtype)
    neg = negotiate(request)
    srv = context.server(request)
    operations = await read_json(request, srv.settings.max_body_bytes, _PATCH_TYPES)
    base = context.base_url(request)
    caller = context.caller(request)
    if id is not None:
        await srv.gate.guard_write(caller, await srv.store.read(rtype, id), rtype, id, delete=True)
    async with srv.store.transaction() as tx:
        if id is None:
            found = await conditional.find(tx, rtype, _criteria(request), gate=srv.gate, caller=caller)
            if len(found) != 1:
                if not found:
                    raise NotFound(f"{rtype}?{_criteria(request)} matches no resource to patch")
                raise PreconditionFailed(f"{rtype}?{_criteria(request)} matches more than one resource",
                                         code="multiple-matches")
            id = found[0].id
        current = repo.require_live(await tx.current(rtype, id), rtype, id)
        assert current.body is not None
        patched = patch.apply(jsonio.loads(current.body), operations)
        repo.check_body(patched, rtype, id)
        result = await repo.update(tx, rtype, id, patched, if_match=_if_match(request), method="PATCH",
                                   check_refs=srv.settings.check_references, base_url=base,
                                   visible=srv.gate.shows(caller))
    return write_response(neg, 200, result.version, base, f"patched {result.version.reference}")


async def patch_instance(request: Request, rtype: str, id: str) -> Response:
    return await _patch(request, rtype, id)


async def conditional_patch(request: Request, rtype: str) -> Response:
    return await _patch(request, rtype, None)
