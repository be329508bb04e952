"""ASCMI intake over HTTP: ``POST /ascmi/forms`` and ``POST /ascmi/revocations`` (ASCMI.md §1), and
``POST /ascmi/expiration-events`` (§5), and ``GET /ascmi/consents/{id}/summary``: the plain-language text of
``fhir-server ascmi render`` for a Consent on file, read through the gate like any read (docs/app.md).

The body is the form or revocation JSON itself; the answer is 201 with ``Location`` naming the Consent version
it produced and the transaction-response Bundle. An expiration event answers 200 with the Consent's new version.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import context
from fhir_server.api.negotiation import negotiate, read_json
from fhir_server.api.responses import json_response, version_headers
from fhir_server.ascmi.intake import Intake, IntakeResult
from fhir_server.ascmi.render import render_consent
from fhir_server.ascmi.terminology import load_terminology
from fhir_server.consent import disclosure
from fhir_server.fhir import jsonio
from fhir_server.repository import resources as repo
from fhir_server.security import ownership

_JSON = {"application/json", "application/fhir+json", ""}


def _intake(request: Request) -> Intake:
    srv = context.server(request)
    return Intake(srv.store, srv.settings, context.base_url(request))


def _created(request: Request, result: IntakeResult) -> Response:
    neg = negotiate(request)
    headers = version_headers(result.consent, context.base_url(request))
    return json_response(result.response, 201 if result.created else 200, headers, neg)


async def file_form(request: Request) -> Response:
    neg = negotiate(request)
    form = await read_json(request, context.server(request).settings.max_body_bytes, _JSON)
    collector = form.get("collector") if isinstance(form, dict) else None
    if isinstance(collector, dict):  # a form without one fails the schema (400) in the intake
        await ownership.require_own(context.server(request).store, context.caller(request),
                                    named=ownership.identifiers(collector.get("identifiers")),
                                    what="the form's collector")
    return _created(request, await _intake(request).file_form(form, neg.prefer_return))


async def file_revocation(request: Request) -> Response:
    neg = negotiate(request)
    body = await read_json(request, context.server(request).settings.max_body_bytes, _JSON)
    received = body.get("receivedBy") if isinstance(body, dict) else None
    await ownership.require_own(context.server(request).store, context.caller(request),
                                named=ownership.identifiers(received.get("identifiers"))
                                if isinstance(received, dict) else (), what="the revocation's receivedBy")
    return _created(request, await _intake(request).file_revocation(body, neg.prefer_return))


async def record_expiration_event(request: Request) -> Response:
    neg = negotiate(request)
    body = await read_json(request, context.server(request).settings.max_body_bytes, _JSON)
    intake = _intake(request)
    caller = context.caller(request)
    if not caller.is_administrator and isinstance(body, dict) and ("consent" in body or "formId" in body):
        consent = await intake.consent_named(body)  # 404 when the event names no Consent on file
        refs, idents = ownership.consent_organizations(consent)
        await ownership.require_own(context.server(request).store, caller, named=idents, references=refs,
                                    what="the collector of the Consent an expiration event ends")
    version = await intake.record_expiration_event(body)
    return json_response(version.body, 200, version_headers(version, context.base_url(request)), neg)


async def consent_summary(request: Request, id: str) -> Response:
    """The Consent's plain-language summary. The text is render's English (its sentences are built from the
    CodeSystems' English displays, not from templates a catalogue could translate), so ``language`` is always
    ``en``; the page translates its own headings around it. A Consent the caller may not see is the same 404 as
    one that does not exist."""
    srv, caller = context.server(request), context.caller(request)
    found = await srv.store.read("Consent", id)
    if found is not None and not await srv.gate.can_see(caller, found):
        found = None
    version = repo.require_live(found, "Consent", id)
    disclosure.record(srv.audit, srv.gate, caller, "read", f"GET {request.url.path}", [version],
                      base_url=context.base_url(request))
    consent = jsonio.loads(srv.gate.disclosed(caller, version))
    text = render_consent(consent, terminology=load_terminology(srv.settings.canonical_base))
    body = {"consent": f"Consent/{version.id}/_history/{version.version_id}", "language": "en", "text": text}
    return json_response(jsonio.dumps(body), 200, version_headers(version), None)


def router() -> APIRouter:
    r = APIRouter(prefix="/ascmi")
    r.add_api_route("/forms", file_form, methods=["POST"])
    r.add_api_route("/revocations", file_revocation, methods=["POST"])
    r.add_api_route("/expiration-events", record_expiration_event, methods=["POST"])
    r.add_api_route("/consents/{id}/summary", consent_summary, methods=["GET"])
    return r
