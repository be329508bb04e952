"""The API described for implementers: ``GET /fhir/openapi.json`` and a browsable page at ``/fhir/swagger-ui/``.

The OpenAPI document is generated from the CapabilityStatement (:mod:`fhir_server.fhir.openapi`), so it lists
exactly what is routed. The page is Swagger UI from the ``swagger-ui-bundle`` package, served by this app: it
works with no network (no CDN). Both are public, like ``/metadata``.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from fhir_server.api import capability, context, operations
from fhir_server.fhir import jsonio
from fhir_server.fhir.openapi import BASE, OperationInfo, openapi_document
from fhir_server.fhir.outcome import NotFound

ASSETS = Path(swagger_ui_bundle.swagger_ui_path)
SERVED = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui-standalone-preset.js": "text/javascript",
          "swagger-ui.css": "text/css", "favicon-32x32.png": "image/png", "favicon-16x16.png": "image/png",
          "oauth2-redirect.html": "text/html"}

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ASCMI FHIR server: API</title>
<link rel="icon" type="image/png" href="favicon-32x32.png"><link rel="stylesheet" href="swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="swagger-ui-bundle.js"></script><script src="swagger-ui-standalone-preset.js"></script>
<script>
window.ui = SwaggerUIBundle({url: "../openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  docExpansion: "none", filter: true, validatorUrl: null, oauth2RedirectUrl: new URL("oauth2-redirect.html",
  window.location.href).href, presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout"});
</script></body></html>
"""


def operation_infos() -> list[OperationInfo]:
    return [OperationInfo(op.name, op.level, op.resource_types, op.methods, op.definition)
            for op in operations.registered()]


async def openapi_json(request: Request) -> Response:
    base = context.base_url(request)
    root = base[: -len(BASE)] if base.endswith(BASE) else base
    document = openapi_document(capability.statement(request), root, capability.software_version(),
                                operation_infos())
    return Response(jsonio.dumps(document), 200, media_type="application/json")


async def swagger_page(request: Request) -> Response:
    return HTMLResponse(PAGE)


async def swagger_redirect(request: Request) -> Response:
    return RedirectResponse(f"{request.scope.get('root_path', '')}{BASE}/swagger-ui/", status_code=307)


async def swagger_asset(request: Request, name: str) -> Response:
    if name not in SERVED:
        raise NotFound(f"no file {name!r} in the API page")
    return FileResponse(ASSETS / name, media_type=SERVED[name])


def router() -> APIRouter:
    """Registered before the FHIR routes, which would read ``/fhir/openapi.json`` as a type."""
    r = APIRouter()
    r.add_api_route(f"{BASE}/openapi.json", openapi_json, methods=["GET"])
    r.add_api_route(f"{BASE}/swagger-ui/", swagger_page, methods=["GET"])
    r.add_api_route(f"{BASE}/swagger-ui", swagger_redirect, methods=["GET"])
    r.add_api_route("/docs", swagger_redirect, methods=["GET"])
    r.add_api_route(BASE + "/swagger-ui/{name}", swagger_asset, methods=["GET"])
    return r
