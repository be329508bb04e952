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
from fhir_server.fhir import jsonio
from fhir_server.fhir.outcome import NotFound, information
from fhir_server.security import ownership


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
    filing = fast.parse_file(body)
    refs, idents = ownership.consent_organizations(filing.consent)
    await ownership.require_own(context.server(request).store, context.caller(request), named=idents,
                                references=refs, what="the Consent's organization (its collector)")
    result = await _intake(request).file_consent(filing, "minimal")
    return _answer(request, result, 201, "filed")


async def revoke_consent(request: Request, rtype: str) -> Response:
    """Parameters with ``consent`` and ``patient`` references (+ optional ``document``)."""
    body = await read_json(request, context.server(request).settings.max_body_bytes)
    reference, patient, document = fast.parse_revoke(body)
    caller = context.caller(request)
    if not caller.is_administrator:
        store = context.server(request).store
        found = await store.read("Consent", reference.partition("/")[2])
        if found is None or found.deleted or found.body is None:
            raise NotFound(f"{reference} is not on file", ["Parameters.parameter.where(name='consent')"])
        refs, idents = ownership.consent_organizations(jsonio.loads(found.body))
        await ownership.require_own(store, caller, named=idents, references=refs,
                                    what="the collector of the Consent being revoked")
    result = await _intake(request).revoke_consent(reference, patient, document)
    return _answer(request, result, 200, "revoked; the Consent's new version is")


_IG = "http://hl7.org/fhir/us/consent-management/OperationDefinition"
operations.register(operations.Operation("fileConsent", "type", ("Consent",), ("POST",), file_consent,
                                         f"{_IG}/file-consent"))
operations.register(operations.Operation("revokeConsent", "type", ("Consent",), ("POST",), revoke_consent,
                                         f"{_IG}/revoke-consent"))
