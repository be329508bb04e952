"""Consent services over HTTP: ``Consent/$decide``, ``Consent/$recordDisclosure`` and the CDS Hooks service
``patient-consent-consult`` (ASCMI.md §4–5)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import context, operations
from fhir_server.api.negotiation import negotiate, read_json
from fhir_server.api.responses import json_response, version_headers
from fhir_server.consent import cds
from fhir_server.consent.parameters import parse_parameters, to_parameters
from fhir_server.consent.service import DecisionService
from fhir_server.fhir.outcome import BadRequest
from fhir_server.repository import resources as repo

_JSON = {"application/json", "application/fhir+json", ""}


def _service(request: Request) -> DecisionService:
    srv = context.server(request)
    return DecisionService(srv.store, srv.settings, context.base_url(request), srv.audit)


async def decide(request: Request, rtype: str) -> Response:
    neg = negotiate(request)
    srv = context.server(request)
    body = await read_json(request, srv.settings.max_body_bytes)
    decision_request = parse_parameters(body, srv.settings.canonical_base)
    decision = await _service(request).decide(decision_request)
    return json_response(to_parameters(decision, context.base_url(request)), 200, None, neg)


async def record_disclosure(request: Request, rtype: str) -> Response:
    """A disclosure decided elsewhere: store the AuditEvent it describes (FAST ``$recordDisclosure``).

    Accepts the AuditEvent itself or Parameters with a ``disclosure`` (or ``auditEvent``) resource.
    """
    neg = negotiate(request)
    srv = context.server(request)
    body = await read_json(request, srv.settings.max_body_bytes)
    event: Any = body
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        event = next((p.get("resource") for p in body.get("parameter") or []
                      if isinstance(p, dict) and p.get("name") in ("disclosure", "auditEvent")), None)
    if not isinstance(event, dict) or event.get("resourceType") != "AuditEvent":
        raise BadRequest("$recordDisclosure takes an AuditEvent (or Parameters with a 'disclosure' AuditEvent)",
                         ["disclosure"], code="required")
    repo.check_body(event, "AuditEvent")
    base = context.base_url(request)
    async with srv.store.transaction() as tx:
        result = await repo.create(tx, event, check_refs=srv.settings.check_references, base_url=base)
    return json_response(result.version.body, 201, version_headers(result.version, base), neg)


async def cds_discovery(request: Request) -> Response:
    return json_response(cds.discovery(), 200, None, None)


async def cds_consult(request: Request) -> Response:
    srv = context.server(request)
    body = await read_json(request, srv.settings.max_body_bytes, _JSON)
    consult = cds.parse_cds_request(body, srv.settings.canonical_base)
    service = _service(request)
    decisions = [await service.decide(r) for r in consult.requests]
    base = context.base_url(request)
    return json_response(cds.to_cds_response(decisions, base, srv.settings.canonical_base), 200, None, None)


operations.register(operations.Operation("decide", "type", ("Consent",), ("POST",), decide,
                                         "https://ascmi.example.org/fhir/OperationDefinition/decide"))
operations.register(operations.Operation("recordDisclosure", "type", ("Consent",), ("POST",), record_disclosure))


def cds_router() -> APIRouter:
    r = APIRouter(prefix="/cds-services")
    r.add_api_route("", cds_discovery, methods=["GET"])
    r.add_api_route("/patient-consent-consult", cds_consult, methods=["POST"])
    return r
