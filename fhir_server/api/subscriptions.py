"""Subscriptions over HTTP (ACCESS.md §D–E): create/update of Subscription, ``$status``, ``$events``,
``$get-ws-binding-token`` and the websocket endpoint ``/fhir/ws``.

``POST /fhir/Subscription`` and ``PUT /fhir/Subscription/{id}`` are routed here ahead of the generic routes:
the resource is validated, its endpoint checked and its criteria checked against the caller's scopes before
the store transaction; the write then registers the subscription in that same transaction (``outbox``).
A subscription belongs to the caller that created it: others (administrators aside) see 404.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import context, operations
from fhir_server.api.negotiation import negotiate, read_json
from fhir_server.api.responses import json_response, write_response
from fhir_server.api.validate import enforce_profiles
from fhir_server.fhir import registry
from fhir_server.fhir.outcome import BadRequest, NotFound
from fhir_server.repository import resources as repo
from fhir_server.security.caller import Caller
from fhir_server.settings import Settings
from fhir_server.store.base import Transaction
from fhir_server.store.subscriptions import SubscriptionState
from fhir_server.subscriptions import model, notify, outbox
from fhir_server.subscriptions.model import Spec
from fhir_server.subscriptions.service import SubscriptionService, owner_caller

TOKEN_SECONDS = 300
_WS_PATH = "/fhir/ws"


def service(request: Request | WebSocket) -> SubscriptionService:
    return request.app.state.subscriptions  # type: ignore[no-any-return]


def websocket_url(base: str) -> str:
    """``https://h/fhir`` → ``wss://h/fhir/ws``"""
    scheme, sep, rest = base.partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}{sep}{rest}/ws"


def _owns(caller: Caller, state: SubscriptionState) -> bool:
    return caller.is_administrator or (state.owner.get("client_id") == caller.client_id
                                       and state.owner.get("user") == caller.user)  # people share one client


async def _owned(request: Request, id: str) -> SubscriptionState:
    state = await service(request).subs.get(id)
    if state is None or not _owns(context.caller(request), state):
        raise NotFound(f"Subscription/{id} is not known to this server")
    return state


# --- create / update ----------------------------------------------------------------------------------------

async def create(request: Request) -> Response:
    neg = negotiate(request)
    srv = context.server(request)
    body = repo.check_body(await read_json(request, srv.settings.max_body_bytes), "Subscription")
    warnings = await enforce_profiles(request, body)
    base = context.base_url(request)
    reg = await service(request).prepare(context.caller(request), body, base)
    body = {k: v for k, v in body.items() if k != "error"} | {"status": reg.status}
    async with srv.store.transaction() as tx:
        with outbox.registering(reg):
            result = await repo.create(tx, body, check_refs=srv.settings.check_references, base_url=base)
    return write_response(neg, 201, result.version, base, f"created {result.version.reference}", warnings)


async def update(request: Request, id: str) -> Response:
    neg = negotiate(request)
    srv = context.server(request)
    if not registry.is_valid_id(id):
        raise BadRequest(f"{id!r} is not a valid FHIR id (1-64 of A-Z a-z 0-9 - .)", ["Subscription.id"])
    body = repo.check_body(await read_json(request, srv.settings.max_body_bytes), "Subscription", id)
    warnings = await enforce_profiles(request, body)
    caller = context.caller(request)
    existing = await service(request).subs.get(id)
    if existing is not None and not _owns(caller, existing):
        raise NotFound(f"Subscription/{id} is not known to this server")
    if_match = request.headers.get("if-match")
    expected = context.version_from_etag(if_match, "If-Match") if if_match is not None else None
    base = context.base_url(request)
    reg = await service(request).prepare(caller, body, base)
    body = {k: v for k, v in body.items() if k != "error"} | {"status": reg.status}

    async def write(tx: Transaction) -> repo.WriteResult:
        with outbox.registering(reg):
            return await repo.update(tx, "Subscription", id, body, if_match=expected,
                                     check_refs=srv.settings.check_references, base_url=base)

    result = await srv.store.run_transaction(write)
    return write_response(neg, 201 if result.created else 200, result.version, base,
                          f"{'created' if result.created else 'updated'} {result.version.reference}", warnings)


# --- operations ---------------------------------------------------------------------------------------------

async def _inputs(request: Request) -> dict[str, list[str]]:
    """Operation inputs from the query string, or from a Parameters body on POST (primitive values)."""
    found: dict[str, list[str]] = {}
    for k, v in request.query_params.multi_items():
        found.setdefault(k, []).append(v)
    if request.method == "POST" and request.headers.get("content-length", "0") != "0":
        body = await read_json(request, context.server(request).settings.max_body_bytes)
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise BadRequest("the body of this operation must be a Parameters resource", code="structure")
        for p in body.get("parameter") or []:
            value = next((v for k, v in p.items() if k.startswith("value")), None) if isinstance(p, dict) else None
            if isinstance(p, dict) and isinstance(p.get("name"), str) and value is not None:
                found.setdefault(p["name"], []).append(str(value))
    return found


def _topic_only(state: SubscriptionState) -> Spec:
    if state.kind != "topic":
        raise BadRequest("this operation applies to topic-based subscriptions; a classic (criteria) "
                         "subscription has no status or event history", code="not-supported")
    return Spec.from_json(state.spec)


async def status(request: Request, rtype: str, id: str) -> Response:
    neg = negotiate(request)
    state = await _owned(request, id)
    spec = _topic_only(state)
    params = notify.status_parameters(context.base_url(request), id, spec.criteria, state.status, "query-status",
                                      state.last_number, error=state.error)
    return json_response(notify.status_bundle(params), 200, None, neg)


def _number(values: list[str] | None, name: str, default: int) -> int:
    if not values:
        return default
    text = values[0]
    number = context.whole_number(text)
    if number is None:
        raise BadRequest(f"{name} must be a whole number, not {text!r}", [name])
    return number


async def events(request: Request, rtype: str, id: str) -> Response:
    neg = negotiate(request)
    state = await _owned(request, id)
    spec = _topic_only(state)
    args = await _inputs(request)
    until = min(_number(args.get("eventsUntilNumber"), "eventsUntilNumber", state.last_number), state.last_number)
    since = max(_number(args.get("eventsSinceNumber"), "eventsSinceNumber", max(1, until - 99)), 1)
    if until - since >= 1000:
        raise BadRequest("ask for at most 1,000 events at once (eventsSinceNumber..eventsUntilNumber)",
                         ["eventsSinceNumber"])
    content = spec.content
    asked = args["content"][0] if args.get("content") else None
    if asked is not None:
        if asked not in model.CONTENTS:
            raise BadRequest(f"content must be one of {', '.join(model.CONTENTS)}", ["content"])
        content = min(asked, content, key=model.CONTENTS.index)  # never more than the subscription's
    svc = service(request)
    rows = await svc.subs.events(id, since, until, 1000) if since <= until else []
    visible = await svc.disclose(context.caller(request) if not context.caller(request).is_administrator
                                 else owner_caller(state.owner), rows)
    base = context.base_url(request)
    params = notify.status_parameters(base, id, spec.criteria, state.status, "query-event", state.last_number,
                                      visible, content, state.error)
    return json_response(notify.notification(base, id, params, visible, content), 200, None, neg)


async def ws_binding_token(request: Request, rtype: str, id: str | None = None) -> Response:
    neg = negotiate(request)
    ids = [id] if id is not None else (await _inputs(request)).get("id", [])
    if not ids:
        raise BadRequest("name at least one Subscription with the id parameter", ["id"], code="required")
    for sid in ids:
        state = await _owned(request, sid)
        if state.channel != "websocket":
            raise BadRequest(f"Subscription/{sid} does not use the websocket channel", code="not-supported")
    token = secrets.token_urlsafe(32)
    expires = time.time() + TOKEN_SECONDS
    await service(request).subs.set_token(ids, token, expires)
    when = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    params: list[dict[str, Any]] = [{"name": "token", "valueString": token}, {"name": "expiration",
                                                                            "valueDateTime": when}]
    params += [{"name": "subscription", "valueString": sid} for sid in ids]
    params.append({"name": "websocket-url", "valueUrl": websocket_url(context.base_url(request))})
    return json_response({"resourceType": "Parameters", "parameter": params}, 200, None, neg)


async def ws_binding_token_type(request: Request, rtype: str) -> Response:
    return await ws_binding_token(request, rtype)


for _op in (
    operations.Operation("status", "instance", ("Subscription",), ("GET", "POST"), status,
                         "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status"),
    operations.Operation("events", "instance", ("Subscription",), ("GET", "POST"), events,
                         "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-events"),
    operations.Operation("get-ws-binding-token", "instance", ("Subscription",), ("GET", "POST"), ws_binding_token,
                         "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/"
                         "backport-subscription-get-ws-binding-token"),
    operations.Operation("get-ws-binding-token", "type", ("Subscription",), ("GET", "POST"), ws_binding_token_type,
                         "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/"
                         "backport-subscription-get-ws-binding-token"),
):
    operations.register(_op)


# --- websocket ----------------------------------------------------------------------------------------------

async def websocket(ws: WebSocket) -> None:
    """Classic ``bind <id>`` → ``bound <id>`` (then ``ping <id>`` per event); backport ``bind-with-token <t>``
    → a handshake Bundle per subscription (then notification Bundles)."""
    await ws.accept()
    svc = service(ws)
    send = ws.send_text
    try:
        while True:
            command, _, argument = (await ws.receive_text()).strip().partition(" ")
            argument = argument.strip()
            if command == "bind":
                state = await svc.subs.get(argument)
                if state is None or state.channel != "websocket":
                    await send(f"error {argument} no websocket Subscription with this id")
                    continue
                svc.hub.bind(argument, send)
                await send(f"bound {argument}")
                svc.worker.wake()
            elif command == "bind-with-token":
                states = [s for s in await svc.subs.by_token(argument) if s.ws_token_expires > time.time()]
                if not states:
                    await send("error unknown or expired token")
                    continue
                for s in states:
                    svc.hub.bind(s.id, send)
                    spec = Spec.from_json(s.spec)
                    if s.kind == "topic":
                        base = spec.extra.get("base") or svc.default_base
                        params = notify.status_parameters(base, s.id, spec.criteria, s.status, "handshake",
                                                          s.last_number)
                        await send(notify.notification(base, s.id, params).decode())
                    else:
                        await send(f"bound {s.id}")
                svc.worker.wake()
            elif command == "ping":
                await send(f"pong {argument}".strip())
            else:
                await send(f"error {command} unknown command (bind, bind-with-token, ping)")
    except WebSocketDisconnect:
        pass
    finally:
        svc.hub.unbind_all(send)


# --- capability ---------------------------------------------------------------------------------------------

def extend_capability(statement: dict[str, Any], base: str, settings: Settings) -> None:
    """Advertise the websocket endpoint and the two topics (Backport IG)."""
    rest = statement["rest"][0]
    rest.setdefault("extension", []).append({"url": model.EXT_WEBSOCKET, "valueUri": websocket_url(base)})
    for entry in rest.get("resource", []):
        if entry.get("type") == "Subscription":
            entry["extension"] = [{"url": model.EXT_TOPIC_CANONICAL,
                                   "valueCanonical": model.topic_url(settings.canonical_base, t)}
                                  for t in model.TOPICS]
            entry["supportedProfile"] = [model.PROFILE_SUBSCRIPTION]


def router() -> APIRouter:
    r = APIRouter(prefix="/fhir")
    r.add_api_route("/Subscription", create, methods=["POST"])
    r.add_api_route("/Subscription/{id}", update, methods=["PUT"])
    r.add_api_websocket_route("/ws", websocket)
    return r
