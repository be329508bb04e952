"""``GET /fhir/metadata``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import context, operations, smart, subscriptions
from fhir_server.api.negotiation import negotiate
from fhir_server.api.responses import json_response
from fhir_server.ascmi.canonical import rebase
from fhir_server.fhir.capability import capability_statement


def _software_version() -> str:
    try:
        return version("ascmi-fhir-server")
    except PackageNotFoundError:
        return "0.0.0"


def _search_params(rtype: str) -> list[dict[str, Any]]:
    from fhir_server.api.search import capability_search_params

    return capability_search_params(rtype)


def software_version() -> str:
    return _software_version()


async def metadata(request: Request) -> Response:
    neg = negotiate(request)
    return json_response(statement(request), 200, None, neg)


def statement(request: Request) -> dict[str, Any]:
    """The CapabilityStatement as this request's base sees it (``/metadata`` and ``/openapi.json``)."""
    from fhir_server.api.routes import SYSTEM_INTERACTIONS, TYPE_INTERACTIONS

    srv = context.server(request)
    type_ops: dict[str, list[dict[str, str]]] = {}
    system_ops = []
    for op in operations.registered():
        definition = rebase(op.definition, srv.settings.canonical_base) if op.definition \
            else f"{context.base_url(request)}/OperationDefinition/{op.name}"
        ref = {"name": op.name, "definition": definition}
        if op.level == "system":
            system_ops.append(ref)
        else:
            for rtype in op.resource_types:
                type_ops.setdefault(rtype, []).append(ref)
    statement = capability_statement(context.base_url(request), TYPE_INTERACTIONS, SYSTEM_INTERACTIONS,
                                     _search_params, type_ops, system_ops, _software_version())
    subscriptions.extend_capability(statement, context.base_url(request), srv.settings)
    smart.extend_capability(statement, context.base_url(request), srv.settings)
    return statement
