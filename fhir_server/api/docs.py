"""The API described for implementers: ``GET /fhir/openapi.json`` and a browsable page at ``/fhir/swagger-ui/``.

The OpenAPI document is generated from the CapabilityStatement (:mod:`fhir_server.fhir.openapi`), so it lists
exactly what is routed. The page is Swagger UI from the ``swagger-ui-bundle`` package, served by this app: it
works with no network (no CDN). Both are public, like ``/metadata``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import swagger_ui_bundle
from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from fhir_server.api import capability, context, operations
from fhir_server.fhir import jsonio, registry
from fhir_server.fhir.openapi import BASE, Endpoint, OperationInfo, openapi_document
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


PUBLIC = frozenset({"/health", "/health/ready", "/cds-services", "/docs", "/fhir/.well-known/smart-configuration",
                    "/fhir/auth/token"})  # as fhir_server/security/permissions.py has them
MEDIA = {"/metrics": "text/plain", "/fhir/bulk-files/{job_id}/{name}": "application/fhir+ndjson",
         "/fhir/auth/authorize": "text/html"}  # the people sign-in's login page (docs/security.md)
EMPTY = {"/fhir/auth/logout": "204", "/fhir/auth/revoke": "200"}  # sign-out and RFC 7009 answer no body
SUMMARIES = {
    "/ascmi/forms": "file a signed ASCMI form (JSON, schema in profiles/ascmi-form.schema.json): Patient, "
                    "Organizations, Consent and Provenance in one transaction",
    "/ascmi/revocations": "file an ASCMI revocation (JSON, schema in profiles/ascmi-revocation.schema.json)",
    "/ascmi/expiration-events": "record the event that ends a Consent (e.g. the end of a treatment)",
    "/ascmi/consents/{id}/summary": "the plain-language summary of a Consent on file (the text of "
                                    "`fhir-server ascmi render`), through the consent gate",
    "/cds-services": "CDS Hooks discovery",
    "/cds-services/patient-consent-consult": "patient-consent-consult: may this recipient receive this "
                                             "information, for this purpose, now?",
    "/metrics": "Prometheus metrics",
}
TAGS = (("/fhir/.well-known/", "SMART"), ("/fhir/auth/", "SMART"), ("/admin/", "Administration"),
        ("/ascmi/", "ASCMI intake"), ("/cds-services", "CDS Hooks"), ("/fhir/bulk-", "Bulk Data"), ("/", "Operations"))


def extra_endpoints(app: Any) -> list[Endpoint]:
    """Every route that is not a FHIR interaction on a type (those come from the CapabilityStatement)."""
    out = []
    for route in _routes(app.routes):
        if not isinstance(route, APIRoute) or route.path == "/docs" or route.path.startswith(f"{BASE}/swagger-ui"):
            continue
        if not route.include_in_schema:  # the Care Partner page's static files (docs/app.md) are not API
            continue
        path = route.path
        if path == BASE or path == f"{BASE}/" or path.startswith((f"{BASE}/{{", f"{BASE}/_history", f"{BASE}/metadata",
                                                                  f"{BASE}/openapi.json")):
            continue
        head = path[len(BASE) + 1:].split("/", 1)[0] if path.startswith(f"{BASE}/") else ""
        if head and registry.is_resource_type(head):
            continue  # a type's own route (Subscription): described with the type
        tag = next(t for prefix, t in TAGS if path.startswith(prefix))
        doc = SUMMARIES.get(path) or (inspect.getdoc(route.endpoint) or route.endpoint.__name__.replace("_", " "))
        doc = doc.split("\n", 1)[0]
        for method in sorted(route.methods or ()):
            public = path in PUBLIC and (method == "GET" or path.endswith("/token"))
            out.append(Endpoint(path, method.lower(), tag, doc, public, MEDIA.get(path, ""),
                                oauth_errors=path.endswith("/auth/token"), empty_status=EMPTY.get(path, "")))
    return out


def _routes(routes: Any) -> list[Any]:
    """Routes with included routers flattened (FastAPI ≥ 0.16x keeps an included router as one entry, whose
    ``original_router`` holds the routes with their prefix applied; no prefix is added when including here)."""
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        out += _routes(inner.routes) if inner is not None else [route]
    return out


def operation_infos() -> list[OperationInfo]:
    return [OperationInfo(op.name, op.level, op.resource_types, op.methods, op.definition)
            for op in operations.registered()]


async def openapi_json(request: Request) -> Response:
    base = context.base_url(request)
    root = base[: -len(BASE)] if base.endswith(BASE) else base
    document = openapi_document(capability.statement(request), root, capability.software_version(),
                                operation_infos(), extra_endpoints(request.app))
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
