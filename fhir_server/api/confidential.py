"""Confidential communications over HTTP (ASCMI.md §6): ``POST /ascmi/confidential-communications`` (201 with
``Location`` of the Consent; 200 for a retried requestId), ``POST /ascmi/confidential-communications/withdrawals``
(200 with the request's new version), and ``POST /fhir/Patient/$communication-contact``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import context, operations
from fhir_server.api.negotiation import negotiate, read_json
from fhir_server.api.responses import json_response, version_headers
from fhir_server.ascmi.confidential import lookup, requests
from fhir_server.ascmi.confidential.intake import ConfidentialIntake
from fhir_server.ascmi.confidential.vocab import load_vocabulary
from fhir_server.ascmi.stored import from_version
from fhir_server.consent import disclosure
from fhir_server.fhir.outcome import FHIRError

_JSON = {"application/json", "application/fhir+json", ""}


def _intake(request: Request) -> ConfidentialIntake:
    srv = context.server(request)
    caller = context.caller(request)
    return ConfidentialIntake(srv.store, srv.settings, context.base_url(request), caller.organization)


async def file_request(request: Request) -> Response:
    neg = negotiate(request)
    body = await read_json(request, context.server(request).settings.max_body_bytes, _JSON)
    result = await _intake(request).file_request(body, neg.prefer_return)
    headers = version_headers(result.consent, context.base_url(request))
    return json_response(result.response, 201 if result.created else 200, headers, neg)


async def withdraw(request: Request) -> Response:
    neg = negotiate(request)
    body = await read_json(request, context.server(request).settings.max_body_bytes, _JSON)
    version = await _intake(request).withdraw(body)
    return json_response(version.body, 200, version_headers(version, context.base_url(request)), neg)


async def communication_contact(request: Request, rtype: str) -> Response:
    """The contact to send to; the Patient goes through the consent gate (hidden = unknown)."""
    neg = negotiate(request)
    srv = context.server(request)
    vocabulary = load_vocabulary(srv.settings.canonical_base)
    question = lookup.parse_question(await read_json(request, srv.settings.max_body_bytes), vocabulary)
    found = await lookup.find_patient(srv.store, question.patient)
    visible = await srv.gate.visible(context.caller(request), [found]) if found is not None else []
    if not visible:
        named = ", ".join(f"{i.get('system', '')}|{i['value']}" for i in question.patient)
        raise FHIRError(422, "not-found", f"no Patient with identifier {named} is on file",
                               ("Parameters.parameter.where(name='patient')",))
    patient = from_version(visible[0])
    day = lookup.day_of(question, srv.settings.timezone)
    on_file = await lookup.requests_of(srv.store, patient.id, vocabulary)
    in_force = requests.in_force(on_file, day)
    result = lookup.answer(dict(patient.resource), in_force, question, day, vocabulary=vocabulary)
    # The member's contact is patient data: the answer is a disclosure in the accounting (ACCESS.md §B audit).
    disclosure.record(srv.audit, srv.gate, context.caller(request), "operation", request.url.path, visible)
    return json_response(lookup.to_parameters(result, context.base_url(request)), 200, None, neg)


operations.register(operations.Operation(
    "communication-contact", "type", ("Patient",), ("POST",), communication_contact,
    "https://ascmi.example.org/fhir/OperationDefinition/communication-contact"))


def router() -> APIRouter:
    r = APIRouter(prefix="/ascmi/confidential-communications")
    r.add_api_route("", file_request, methods=["POST"])
    r.add_api_route("/withdrawals", withdraw, methods=["POST"])
    return r
