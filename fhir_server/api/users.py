"""The administrators' API for people who sign in to the web page (the same records as ``fhir-server users``):

- ``GET  /admin/users`` — every user (never a password hash);
- ``POST /admin/users`` — ``{"username", "password", "organization": "Organization/1" | null, "display",
  "scopes": [...], "purposes": [...]}`` → 201 (``organization`` null: an administrator);
- ``GET  /admin/users/{username}``; ``POST /admin/users/{username}/disable|enable``;
- ``POST /admin/users/{username}/password`` — ``{"password": "..."}``.

Only administrators reach these (``/admin/*`` in :mod:`fhir_server.security.permissions`).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from functools import partial
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.negotiation import read_json, string_list
from fhir_server.api.responses import json_response
from fhir_server.fhir.outcome import BadRequest, Conflict, NotFound
from fhir_server.security.service import Security
from fhir_server.security.users import User, UserError, new_user, normalise_username

_JSON = {"application/json", "application/fhir+json", ""}


def _security(request: Request) -> Security:
    return request.app.state.security  # type: ignore[no-any-return]


async def _body(request: Request) -> dict[str, Any]:
    body = await read_json(request, 64 * 1024, _JSON)
    if not isinstance(body, dict):
        raise BadRequest('send a JSON object, e.g. {"username": "ana", "password": "...", '
                         '"organization": "Organization/1"}')
    return body


def _text(body: dict[str, Any], name: str, default: str | None = "") -> str | None:
    value = body.get(name, default)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{name} must be a string", [name])
    return value


async def _user(request: Request, username: str) -> User:
    found = await _security(request).user(normalise_username(username), fresh=True)
    if found is None:
        raise NotFound(f"no user {username!r}")
    return found


async def list_users(request: Request) -> Response:
    docs = await _security(request).registry.list_users()
    return json_response([User.from_json(d).public() for d in docs], 200)


async def add_user(request: Request) -> Response:
    body = await _body(request)
    sec = _security(request)
    try:
        user = await asyncio.to_thread(  # scrypt: off the event loop
            partial(new_user, _text(body, "username") or "", _text(body, "password") or "",
                    organization=_text(body, "organization", None), display=_text(body, "display") or "",
                    scope_list=string_list(body, "scopes"), purposes=string_list(body, "purposes"),
                    known_purposes=sec.purposes))
    except UserError as exc:
        raise BadRequest(str(exc)) from None
    if not await sec.add_user(user):
        raise Conflict(f"a user {user.username!r} exists already")
    return json_response(user.public(), 201, {"Location": f"/admin/users/{user.username}"})


async def read_user(request: Request, username: str) -> Response:
    return json_response((await _user(request, username)).public(), 200)


async def _set_active(request: Request, username: str, active: bool) -> Response:
    user = replace(await _user(request, username), active=active)
    await _security(request).replace_user(user)
    return json_response(user.public(), 200)


async def disable_user(request: Request, username: str) -> Response:
    return await _set_active(request, username, False)


async def enable_user(request: Request, username: str) -> Response:
    return await _set_active(request, username, True)


async def set_password(request: Request, username: str) -> Response:
    body = await _body(request)
    user = await _user(request, username)
    try:
        user = await asyncio.to_thread(user.with_password, _text(body, "password") or "")
    except UserError as exc:
        raise BadRequest(str(exc), ["password"]) from None
    await _security(request).replace_user(user)
    return json_response(user.public(), 200)


def router() -> APIRouter:
    r = APIRouter()
    r.add_api_route("/admin/users", list_users, methods=["GET"])
    r.add_api_route("/admin/users", add_user, methods=["POST"])
    r.add_api_route("/admin/users/{username}", read_user, methods=["GET"])
    r.add_api_route("/admin/users/{username}/disable", disable_user, methods=["POST"])
    r.add_api_route("/admin/users/{username}/enable", enable_user, methods=["POST"])
    r.add_api_route("/admin/users/{username}/password", set_password, methods=["POST"])
    return r
