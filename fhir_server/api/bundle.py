"""``POST /fhir`` with a transaction or batch Bundle (http.html#transaction)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import context
from fhir_server.api.negotiation import negotiate, read_json
from fhir_server.api.responses import json_response
from fhir_server.fhir.outcome import BadRequest
from fhir_server.repository.bundle import BundleProcessor
from fhir_server.security import permissions


async def transaction_or_batch(request: Request) -> Response:
    neg = negotiate(request)
    srv = context.server(request)
    bundle = await read_json(request, srv.settings.max_body_bytes)
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BadRequest("POST to the base accepts a Bundle of type transaction or batch", ["resourceType"])
    permissions.check_bundle(context.caller(request), bundle)  # every entry's scope, before any entry runs
    kind = bundle.get("type")
    processor = BundleProcessor(srv.store, srv.settings, context.base_url(request), gate=srv.gate,
                                caller=context.caller(request))
    if kind == "transaction":
        result = await processor.transaction(bundle, neg.prefer_return)
    elif kind == "batch":
        result = await processor.batch(bundle, neg.prefer_return)
    else:
        raise BadRequest(f"a Bundle of type {kind!r} cannot be processed at the base: only transaction and batch "
                         "can (store documents, collections and messages with POST /fhir/Bundle)",
                         ["Bundle.type"], code="code-invalid")
    return json_response(result, 200, None, neg)
