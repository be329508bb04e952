"""The FHIR route table (http.html): one place that maps URLs and verbs to interactions.

``TYPE_INTERACTIONS``/``SYSTEM_INTERACTIONS`` list what is routed; the CapabilityStatement is built from them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import (
    bundle,
    capability,
    conditional,
    consent,
    everything,
    fast,
    history,
    operations,
    rest,
    terminology,
    validate,
)
from fhir_server.fhir.outcome import MethodNotAllowed, NotFound

TYPE_INTERACTIONS = ["read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create",
                     "search-type"]
SYSTEM_INTERACTIONS = ["transaction", "batch", "history-system", "search-system"]


async def _type_post(request: Request, rtype: str) -> Response:
    if rtype.startswith("$"):
        return await operations.dispatch(request, "system", rtype)
    return await rest.create(request, rtype)


async def _system_get_op(request: Request, rtype: str) -> Response:
    if rtype.startswith("$"):
        return await operations.dispatch(request, "system", rtype)
    from fhir_server.api import search

    return await search.search_type(request, rtype)


async def _system_search(request: Request) -> Response:
    from fhir_server.api import search

    return await search.search_system(request)


async def _type_search_post(request: Request, rtype: str) -> Response:
    from fhir_server.api import search

    return await search.search_type_post(request, rtype)


async def _instance_get(request: Request, rtype: str, id: str) -> Response:
    if id.startswith("$"):
        return await operations.dispatch(request, "type", id, rtype)
    return await rest.read(request, rtype, id)


async def _instance_post(request: Request, rtype: str, id: str) -> Response:
    if id.startswith("$"):
        return await operations.dispatch(request, "type", id, rtype)
    raise MethodNotAllowed(f"POST is not supported on {rtype}/{id}; use PUT to update")


async def _instance_op(request: Request, rtype: str, id: str, op: str) -> Response:
    if not op.startswith("$"):
        raise NotFound(f"no FHIR endpoint at {rtype}/{id}/{op}")
    return await operations.dispatch(request, "instance", op, rtype, id)


OPERATION_MODULES = (validate, consent, fast, terminology, everything)  # importing them registers their operations


def router() -> APIRouter:
    r = APIRouter(prefix="/fhir")
    add: Any = r.add_api_route
    add("/metadata", capability.metadata, methods=["GET"])
    add("", bundle.transaction_or_batch, methods=["POST"])
    add("", _system_search, methods=["GET"])
    add("/", bundle.transaction_or_batch, methods=["POST"])
    add("/_history", history.history_system, methods=["GET"])
    add("/{rtype}/_history", history.history_type, methods=["GET"])
    add("/{rtype}/{id}/_history", history.history_instance, methods=["GET"])
    add("/{rtype}/{id}/_history/{vid}", rest.vread, methods=["GET"])
    add("/{rtype}", _system_get_op, methods=["GET"])
    add("/{rtype}", _type_post, methods=["POST"])
    add("/{rtype}", conditional.conditional_update, methods=["PUT"])
    add("/{rtype}", conditional.conditional_delete, methods=["DELETE"])
    add("/{rtype}", conditional.conditional_patch, methods=["PATCH"])
    add("/{rtype}/_search", _type_search_post, methods=["POST"])
    add("/{rtype}/{id}", _instance_get, methods=["GET"])
    add("/{rtype}/{id}", rest.update, methods=["PUT"])
    add("/{rtype}/{id}", rest.delete, methods=["DELETE"])
    add("/{rtype}/{id}", _instance_post, methods=["POST"])
    add("/{rtype}/{id}", conditional.patch_instance, methods=["PATCH"])
    add("/{rtype}/{id}/{op}", _instance_op, methods=["GET", "POST"])
    return r
