"""``GET /fhir/ImplementationGuide/{id}/package.tgz``: the FHIR NPM package of the ImplementationGuide the server
holds (``ascmi.fhir.consent``), built from the same files as the stored conformance resources, under the
configured canonical base. Built once per process (it changes only with the files), and public like
``/metadata``: it holds no patient data."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import context
from fhir_server.conformance import package
from fhir_server.fhir.outcome import NotFound


async def download(request: Request, id: str) -> Response:
    if id != package.PACKAGE_ID:
        raise NotFound(f"no package for ImplementationGuide/{id}; this server publishes {package.PACKAGE_ID}")
    base = context.server(request).settings.canonical_base
    cache: dict[str, tuple[str, bytes]] | None = getattr(request.app.state, "fhir_packages", None)
    if cache is None:
        cache = request.app.state.fhir_packages = {}
    if base not in cache:
        cache[base] = await asyncio.to_thread(lambda: (package.file_name(base), package.build(base)))
    name, data = cache[base]
    return Response(data, 200, {"Content-Disposition": f'attachment; filename="{name}"'},
                    media_type="application/gzip")


def router() -> APIRouter:
    """Registered before the FHIR routes, which would read ``package.tgz`` as an operation name."""
    r = APIRouter()
    r.add_api_route("/fhir/ImplementationGuide/{id}/package.tgz", download, methods=["GET"])
    return r
