"""FAST Consent (HL7 Scalable Consent Management IG) operations: ``Consent/$fileConsent`` and
``Consent/$revokeConsent``.

Both answer with the IG's ``return`` OperationOutcome; ``Location`` names the Consent version written
(``$fileConsent``: 201 and the new Consent; ``$revokeConsent``: 200 and the revoked Consent's new, inactive
version).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import context, operations
from fhir_server.api.negotiation import negotiate, read_json
from fhir_server.api.responses import json_response, version_headers
from fhir_server.ascmi import fast
from fhir_server.ascmi.intake import Intake, IntakeResult
from fhir_server.fhir.outcome import information


def _intake(request: Request) -> Intake:
    srv = context.server(request)
    return Intake(srv.store, srv.settings, context.base_url(request))


def _answer(request: Request, result: IntakeResult, status: int, message: str) -> Response:
    base = context.base_url(request)
    headers = version_headers(result.consent, base)
    headers["Content-Location"] = headers["Location"]
    return json_response(information(f"{message} {headers['Location']}"), status, headers, negotiate(request))


async def file_consent(request: Request, rtype: str) -> Response:
    """Parameters with ``consent`` (+ optional ``document``), or the Consent itself."""
    body = await read_json(request, context.server(request).settings.max_body_bytes)
    result = await _intake(request).file_consent(fast.parse_file(body), "minimal")
    return _answer(request, result, 201, "filed")


async def revoke_consent(request: Request, rtype: str) -> Response:
    """Parameters with ``consent`` and ``patient`` references (+ optional ``document``)."""
    body = await read_json(request, context.server(request).settings.max_body_bytes)
    reference, patient, document = fast.parse_revoke(body)
    result = await _intake(request).revoke_consent(reference, patient, document)
    return _answer(request, result, 200, "revoked; the Consent's new version is")


_IG = "http://hl7.org/fhir/us/consent-management/OperationDefinition"
operations.register(operations.Operation("fileConsent", "type", ("Consent",), ("POST",), file_consent,
                                         f"{_IG}/file-consent"))
operations.register(operations.Operation("revokeConsent", "type", ("Consent",), ("POST",), revoke_consent,
                                         f"{_IG}/revoke-consent"))
