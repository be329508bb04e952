"""The authentication edge (ACCESS.md §A): every request but the public ones carries a bearer token; the
caller it proves is put on ``request.state.caller`` and its scopes are checked against the route *before* the
handler looks anything up (:mod:`fhir_server.security.permissions`).

Failures answer 401 (``WWW-Authenticate: Bearer``, OperationOutcome ``login``) or 403 (``forbidden``). Every
401/403 — from here or from a handler further in (transaction entries, Care Partner write limits) — leaves a
BALP AuditEvent with outcome ``4``, written behind the answer.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_server.api import context
from fhir_server.api.errors import error_response
from fhir_server.fhir import registry
from fhir_server.fhir.outcome import FHIRError
from fhir_server.security import permissions
from fhir_server.security.audit import OUTCOME_REFUSED, balp_event
from fhir_server.security.caller import Caller
from fhir_server.security.service import Security

log = logging.getLogger("fhir_server.security")
CDS_SERVICE = "/cds-services/patient-consent-consult"
_PATIENT_PARAMS = ("patient", "subject", "patient:Patient", "subject:Patient")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _reference(rtype: str, id: str | None) -> str | None:
    """``Type/id`` when both are well formed (what a client sent must not make the AuditEvent invalid)."""
    if id is None or not _ID.fullmatch(id) or not registry.is_resource_type(rtype):
        return None
    return f"{rtype}/{id}"


class Authentication:
    """Pure ASGI middleware (no body buffering): costs one dictionary lookup per request once a token is known."""

    def __init__(self, app: ASGIApp, security: Security) -> None:
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        need = permissions.required(scope["method"], scope["path"], scope.get("query_string", b""))
        if need.public:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        caller: Caller | None = None
        try:
            audience = _cds_audience(request) if scope["path"] == CDS_SERVICE else None
            caller = await self.security.authenticate(request.headers.get("authorization"), audience)
            permissions.check(caller, need)
        except FHIRError as exc:
            _audit_refusal(request, caller, need)
            await error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller
        status = 0

        async def watching_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watching_send)
        if status in (401, 403):
            _audit_refusal(request, caller, need)


def _cds_audience(request: Request) -> str:
    """The CDS service URL as the client called it (behind the public base when one is configured)."""
    base = context.base_url(request).removesuffix("/fhir")
    return base + CDS_SERVICE


def _patients(need: permissions.Need, query: bytes) -> list[str]:
    found = []
    if need.types == ("Patient",):
        found.append(_reference("Patient", need.id))
    for key, value in parse_qsl(query.decode("latin-1")):
        if key in _PATIENT_PARAMS:
            for v in value.split(","):
                ref = v.strip()
                if ref.startswith("Patient/"):
                    found.append(_reference("Patient", ref[8:]))
                elif key.startswith("patient"):
                    found.append(_reference("Patient", ref))
    return [f for f in found if f is not None]


def _audit_refusal(request: Request, caller: Caller | None, need: permissions.Need) -> None:
    srv = context.server(request)
    if srv.audit is None:
        return
    query = request.scope.get("query_string", b"")
    line = f"{request.method} {request.url.path}" + (f"?{query.decode('latin-1')}" if query else "")
    resources = [r for t in need.types if t != "Patient" and (r := _reference(t, need.id)) is not None]
    try:
        event = balp_event(caller, interaction=need.interaction, outcome=OUTCOME_REFUSED,
                           patients=_patients(need, query), query=line, base_url=context.base_url(request),
                           resources=resources, description="refused: not authenticated" if caller is None
                           else "refused: not permitted", canonical_base=srv.settings.canonical_base)
        srv.audit.submit(event)
    except Exception:  # noqa: BLE001 - an audit problem must not turn a refusal into a 500
        log.exception("could not queue the AuditEvent of a refused request")
