"""OpenAPI 3.0 description of the server, generated from its CapabilityStatement (pure: no I/O).

Everything FHIR comes from the statement: one tag and a handful of paths per resource type with the
interactions it lists, the type's search parameters (name, FHIR type, modifiers) on its search, its
operations, the system interactions, and the security the statement declares (SMART Backend Services:
OAuth2 client credentials with the token URL of the ``oauth-uris`` extension; a plain bearer scheme otherwise).
The routes that are not FHIR interactions (ASCMI intake, CDS Hooks, health, bulk status) are passed in as
:class:`Endpoint` (the API layer lists them from the app's routes).

Size is kept down by sharing: one schema per resource type (a thin ``allOf`` over ``Resource``), shared
parameters (``id``, ``_count``…) and responses (``Error``, ``Bundle``); nothing is inlined per interaction.
Version 3.0.3 because the bundled Swagger UI (4.x) reads 3.0.

>>> doc = openapi_document({"rest": [{"mode": "server", "resource": [{"type": "Patient",
...     "interaction": [{"code": "read"}], "searchParam": [{"name": "gender", "type": "token"}]}]}]},
...     "http://localhost:8080", "0.1.0")
>>> sorted(doc["paths"]["/fhir/Patient/{id}"])
['get']
>>> doc["paths"]["/fhir/Patient/{id}"]["get"]["operationId"]
'read-Patient'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

FHIR_JSON = "application/fhir+json"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
BASE = "/fhir"


@dataclass(frozen=True, slots=True)
class OperationInfo:
    """What the CapabilityStatement does not say about an operation: where it runs and with which verbs."""

    name: str  # without "$"
    level: str  # system | type | instance
    resource_types: tuple[str, ...]  # ("*",) for every type
    methods: tuple[str, ...]
    definition: str = ""


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {FHIR_JSON: {"schema": schema}, "application/json": {"schema": schema}}


def _components(types: list[str]) -> dict[str, Any]:
    resource = {"type": "object", "required": ["resourceType"], "additionalProperties": True,
                "properties": {"resourceType": {"type": "string"}, "id": {"type": "string"},
                               "meta": {"type": "object"}},
                "description": "A FHIR R4 resource (JSON); see http://hl7.org/fhir/R4/json.html"}
    schemas: dict[str, Any] = {"Resource": resource}
    for name in types:
        schemas[name] = {"allOf": [_ref("schemas", "Resource"), {"type": "object", "properties": {
            "resourceType": {"type": "string", "enum": [name]}}}],
            "description": f"http://hl7.org/fhir/R4/{name.lower()}.html"}
    schemas.setdefault("OperationOutcome", {"type": "object"})
    schemas.setdefault("Bundle", {"type": "object"})
    schemas.setdefault("Parameters", {"type": "object"})
    schemas["JsonPatch"] = {"type": "array", "items": {"type": "object", "required": ["op", "path"],
                                                       "properties": {"op": {"type": "string"},
                                                                      "path": {"type": "string"}}}}
    schemas["Json"] = {"type": "object", "additionalProperties": True}
    query = {"in": "query", "required": False, "schema": {"type": "string"}}
    parameters = {
        "id": {"name": "id", "in": "path", "required": True, "description": "logical id of the resource",
               "schema": {"type": "string", "pattern": "^[A-Za-z0-9\\-.]{1,64}$"}},
        "vid": {"name": "vid", "in": "path", "required": True, "description": "version id",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9\\-.]{1,64}$"}},
        "_count": {"name": "_count", "in": "query", "required": False, "description": "page size",
                   "schema": {"type": "integer", "minimum": 0}},
        "_since": {**query, "name": "_since", "description": "only versions after this instant"},
    }
    for name, text in (("_sort", "sort order, e.g. -_lastUpdated"), ("_include", "Type:param[:target]"),
                       ("_revinclude", "Type:param[:target]"), ("_summary", "true | text | data | count | false"),
                       ("_elements", "comma-separated element names"), ("_total", "none | estimate | accurate")):
        parameters[name] = {**query, "name": name, "description": text}
    parameters["conditional"] = {
        "name": "query", "in": "query", "required": False, "style": "form", "explode": True,
        "schema": {"type": "object", "additionalProperties": {"type": "string"}},
        "description": "search parameters of the type (as on its search) selecting the resource(s)"}
    error = {"description": "OperationOutcome: what went wrong and where",
             "content": _content(_ref("schemas", "OperationOutcome"))}
    responses = {
        "Error": error,
        "Bundle": {"description": "a Bundle (searchset, history, or transaction-response)",
                   "content": _content(_ref("schemas", "Bundle"))},
        "Outcome": {"description": "an OperationOutcome", "content": _content(_ref("schemas", "OperationOutcome"))},
        "Json": {"description": "JSON", "content": _content(_ref("schemas", "Json"))},
        "OAuthError": {"description": "RFC 6749 §5.2 error", "content": {"application/json": {"schema": {
            "type": "object", "required": ["error"], "properties": {"error": {"type": "string"},
                                                                     "error_description": {"type": "string"}}}}}},
        "Resource": {"description": "a FHIR resource (Parameters, OperationOutcome…)",
                     "content": _content(_ref("schemas", "Resource"))},
    }
    bodies = {}
    for name in types:
        responses[name] = {"description": f"a {name}", "content": _content(_ref("schemas", name))}
        bodies[name] = {"required": True, "content": _content(_ref("schemas", name))}
    return {"schemas": schemas, "parameters": parameters, "responses": responses, "requestBodies": bodies}


def _op(operation_id: str, tag: str, summary: str, ok: dict[str, Any], status: str = "200",
        params: list[Any] | None = None, body: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": operation_id, "tags": [tag], "summary": summary,
                           "responses": {status: ok, "default": _ref("responses", "Error")}}
    if params:
        out["parameters"] = params
    if body is not None:
        out["requestBody"] = body if "$ref" in body else {"required": True, "content": body}
    return out


def _resource_response(rtype: str, text: str = "") -> dict[str, Any]:
    return _ref("responses", rtype)


def _conditional() -> dict[str, Any]:
    return _ref("parameters", "conditional")


def _search_params(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The type's search parameters (shared ``components.parameters`` entries, one per name and FHIR type) and
    the result parameters (paging, includes…)."""
    own = [_ref("parameters", _param_key(p)) for p in entry.get("searchParam", []) if p["name"] not in _RESULT]
    return own + [_ref("parameters", n) for n in _RESULT]


_RESULT = ("_count", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total")


def _param_key(p: dict[str, Any]) -> str:
    return f"{p['name']}.{p['type']}"


def _shared_search_params(entries: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for entry in entries:
        for p in entry.get("searchParam", []):
            if p["name"] not in _RESULT:
                out[_param_key(p)] = {"name": p["name"], "in": "query", "required": False,
                                      "description": f"{p['type']} search parameter", "schema": {"type": "string"}}
    return out


def _type_paths(entry: dict[str, Any], ops: list[OperationInfo]) -> dict[str, dict[str, Any]]:
    rtype = entry["type"]
    codes = {i["code"] for i in entry.get("interaction", [])}
    body = _ref("requestBodies", rtype)
    one, bundle = _resource_response(rtype, f"the {rtype}"), _ref("responses", "Bundle")
    id_, vid = _ref("parameters", "id"), _ref("parameters", "vid")
    paths: dict[str, dict[str, Any]] = {}

    def at(path: str) -> dict[str, Any]:
        return paths.setdefault(f"{BASE}/{rtype}{path}", {})

    if "search-type" in codes:
        at("")["get"] = _op(f"search-type-{rtype}", rtype, f"search {rtype}", bundle, params=_search_params(entry))
        at("/_search")["post"] = _op(f"search-type-post-{rtype}", rtype, f"search {rtype} (form body)", bundle,
                                     body={"application/x-www-form-urlencoded": {"schema": {"type": "object"}}})
    if "create" in codes:
        at("")["post"] = _op(f"create-{rtype}", rtype, f"create a {rtype} (If-None-Exist: conditional create)",
                             _resource_response(rtype, "created"), "201", body=body)
    if entry.get("conditionalUpdate"):
        at("")["put"] = _op(f"conditional-update-{rtype}", rtype, f"update the {rtype} the query matches",
                            one, params=[_conditional()], body=body)
    if entry.get("conditionalDelete", "not-supported") != "not-supported":
        at("")["delete"] = _op(f"conditional-delete-{rtype}", rtype, f"delete the {rtype}s the query matches",
                               _ref("responses", "Outcome"), params=[_conditional()])
    if "history-type" in codes:
        at("/_history")["get"] = _op(f"history-type-{rtype}", rtype, f"history of all {rtype}s", bundle,
                                     params=[_ref("parameters", "_count"), _ref("parameters", "_since")])
    if "read" in codes:
        at("/{id}")["get"] = _op(f"read-{rtype}", rtype, f"read a {rtype}", one, params=[id_])
    if "update" in codes:
        at("/{id}")["put"] = _op(f"update-{rtype}", rtype, f"update (or create) a {rtype}", one, params=[id_],
                                 body=body)
    if "patch" in codes:
        at("/{id}")["patch"] = _op(f"patch-{rtype}", rtype, f"JSON Patch a {rtype}", one, params=[id_],
                                   body={"application/json-patch+json": {"schema": _ref("schemas", "JsonPatch")}})
    if "delete" in codes:
        at("/{id}")["delete"] = _op(f"delete-{rtype}", rtype, f"delete a {rtype}", _ref("responses", "Outcome"),
                                    params=[id_])
    if "history-instance" in codes:
        at("/{id}/_history")["get"] = _op(f"history-instance-{rtype}", rtype, f"versions of a {rtype}", bundle,
                                          params=[id_, _ref("parameters", "_count"), _ref("parameters", "_since")])
    if "vread" in codes:
        at("/{id}/_history/{vid}")["get"] = _op(f"vread-{rtype}", rtype, f"one version of a {rtype}", one,
                                                params=[id_, vid])
    for op in ops:
        if op.level == "system" or "*" in op.resource_types or rtype not in op.resource_types:
            continue  # operations on every type are described once, at /fhir/{type}/$name
        path = "/$" + op.name if op.level == "type" else "/{id}/$" + op.name
        for method in op.methods:
            summary = f"${op.name}" + (f" ({op.definition})" if op.definition else "")
            at(path)[method.lower()] = _op(f"{op.name}-{op.level}-{rtype}-{method.lower()}", rtype, summary,
                                           _ref("responses", "Resource"),
                                           params=[id_] if op.level == "instance" else None,
                                           body=_content(_ref("schemas", "Resource")) if method == "POST" else None)
    return paths


def _system_paths(rest: dict[str, Any], ops: list[OperationInfo], types: list[str]) -> dict[str, dict[str, Any]]:
    codes = {i["code"] for i in rest.get("interaction", [])}
    bundle = _ref("responses", "Bundle")
    paths: dict[str, dict[str, Any]] = {
        f"{BASE}/metadata": {"get": {**_op("capabilities", "System", "the CapabilityStatement",
                                           _resource_response("CapabilityStatement", "CapabilityStatement")),
                                     "security": []}},
        f"{BASE}/openapi.json": {"get": {**_op("openapi", "System", "this OpenAPI document",
                                               _ref("responses", "Json")), "security": []}},
    }
    if codes & {"transaction", "batch"}:
        paths[BASE] = {"post": _op("transaction", "System", "transaction or batch Bundle", bundle,
                                   body=_content(_ref("schemas", "Bundle")))}
    if "search-system" in codes:
        paths.setdefault(BASE, {})["get"] = _op(
            "search-system", "System", "search across types (_type=A,B)", bundle,
            params=[{"name": "_type", "in": "query", "required": False, "schema": {"type": "string"}},
                    {"name": "_id", "in": "query", "required": False, "schema": {"type": "string"}},
                    _ref("parameters", "_count")])
    if "history-system" in codes:
        paths[f"{BASE}/_history"] = {"get": _op("history-system", "System", "history of everything", bundle,
                                                params=[_ref("parameters", "_count"), _ref("parameters", "_since")])}
    rtype = {"name": "type", "in": "path", "required": True, "description": "resource type",
             "schema": {"type": "string", "enum": types}}
    for op in ops:
        if op.level != "system" and "*" in op.resource_types:
            path = f"{BASE}/{{type}}/${op.name}" if op.level == "type" else f"{BASE}/{{type}}/{{id}}/${op.name}"
            params = [rtype] if op.level == "type" else [rtype, _ref("parameters", "id")]
            summary = f"${op.name} on any type" + (f" ({op.definition})" if op.definition else "")
            paths[path] = {m.lower(): _op(f"{op.name}-{op.level}-{m.lower()}", "System", summary,
                                          _ref("responses", "Resource"), params=params,
                                          body=_content(_ref("schemas", "Resource")) if m == "POST" else None)
                           for m in op.methods}
        if op.level == "system":
            paths[f"{BASE}/${op.name}"] = {m.lower(): _op(f"{op.name}-system-{m.lower()}", "System", f"${op.name}",
                                                          _ref("responses", "Resource")) for m in op.methods}
    return paths


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A route that is not a FHIR interaction (ASCMI intake, CDS Hooks, health, bulk status…)."""

    path: str
    method: str  # lower case
    tag: str
    summary: str
    public: bool = False
    media_type: str = ""  # of a successful answer; "" for FHIR JSON or JSON
    oauth_errors: bool = False  # errors are RFC 6749 §5.2 JSON (the token endpoint), not OperationOutcomes
    empty_status: str = ""  # success has no body, with this status (sign-out 204, RFC 7009 revocation 200)


def _extra_paths(extra: Iterable[Endpoint]) -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {}
    for e in extra:
        ok = {"description": e.media_type, "content": {e.media_type: {"schema": {"type": "string"}}}} \
            if e.media_type else _ref("responses", "Json")
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in re.findall(r"{(\w+)}", e.path)]
        op = _op(re.sub(r"[^A-Za-z0-9]+", "-", e.path).strip("-") + f"-{e.method}", e.tag, e.summary, ok,
                 params=params or None,
                 body={"application/json": {"schema": _ref("schemas", "Json")}} if e.method in ("post", "put")
                 else None)
        if e.empty_status:
            op["responses"].pop("200", None)
            op["responses"][e.empty_status] = {"description": "done; no body"}
        if e.oauth_errors:
            op["responses"]["default"] = _ref("responses", "OAuthError")
        elif e.media_type == "text/html":  # a page for people (the sign-in): its refusals are pages too
            op["responses"]["default"] = {"description": "an HTML page saying what went wrong",
                                          "content": {"text/html": {"schema": {"type": "string"}}}}
        if e.public:
            op["security"] = []
        paths.setdefault(e.path, {})[e.method] = op
    return paths


def _security(rest: dict[str, Any], token_url: str | None) -> dict[str, Any]:
    """SMART Backend Services when a token endpoint is known (given, or named by the statement's
    ``oauth-uris`` extension); a bearer token otherwise."""
    security = rest.get("security") or {}
    for ext in security.get("extension", []):
        if ext.get("url") == OAUTH_URIS and token_url is None:
            token_url = next((e.get("valueUri") for e in ext.get("extension", []) if e.get("url") == "token"), None)
    if token_url:
        return {"smart": {"type": "oauth2", "description": "SMART Backend Services: client credentials with a "
                          "private_key_jwt client assertion (RS384/ES384); scopes system/<Type>.<cruds>",
                          "flows": {"clientCredentials": {"tokenUrl": token_url, "scopes": {
                              "system/*.cruds": "every interaction on every type (administrators)",
                              "system/*.rs": "read and search every type"}}}}}
    return {"bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <access token>"}}


def openapi_document(capability: dict[str, Any], server_root: str, version: str,
                     operations: Iterable[OperationInfo] = (), extra: Iterable[Endpoint] = (),
                     token_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document for a CapabilityStatement; ``server_root`` is the URL above ``/fhir``;
    ``token_url`` the SMART token endpoint when the server requires tokens."""
    rest: dict[str, Any] = next((r for r in capability.get("rest", []) if r.get("mode") == "server"), {})
    ops = list(operations)
    entries = sorted(rest.get("resource", []), key=lambda e: e["type"])
    paths = _system_paths(rest, ops, [e["type"] for e in entries])
    for entry in entries:
        paths.update(_type_paths(entry, ops))
    extra = list(extra)
    paths.update(_extra_paths(extra))
    security = _security(rest, token_url)
    modifiers = {p["type"]: p.get("documentation", "") for e in entries for p in e.get("searchParam", [])}
    search_help = "; ".join(f"{t}: {d or 'no modifiers'}" for t, d in sorted(modifiers.items()))
    types = [e["type"] for e in entries]
    components = _components(sorted({*types, "CapabilityStatement", "OperationOutcome", "Bundle"}))
    components["parameters"].update(_shared_search_params(entries))
    components["securitySchemes"] = security
    return {
        "openapi": "3.0.3",
        "info": {"title": "ASCMI FHIR server", "version": version,
                 "description": "FHIR R4 (4.0.1, JSON) server for California ASCMI consent. The FHIR base is "
                                f"{server_root.rstrip('/')}{BASE}; GET {BASE}/metadata is the CapabilityStatement "
                                "this document is generated from. Search parameter types and their modifiers: "
                                f"{search_help}."},
        "servers": [{"url": server_root.rstrip("/") or "/"}],
        "security": [{name: []} for name in security],
        "tags": [{"name": "System"}, *({"name": t} for t in types),
                 *({"name": t} for t in dict.fromkeys(e.tag for e in extra))],
        "paths": paths,
        "components": components,
    }
