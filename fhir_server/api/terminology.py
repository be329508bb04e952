"""Terminology operations over what the server holds (the ones the validator relies on):
``ValueSet/$expand``, ``ValueSet/$validate-code`` and ``CodeSystem/$lookup`` (terminology-service.html).

They answer from the same :class:`DefinitionSource` as ``$validate`` (held ValueSets and CodeSystems first,
then the R4 base value sets the validator ships), so what ``$validate`` accepts and what these say agree.
Input comes from the query string (GET) or a Parameters body (POST).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import uuid4

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import context, operations
from fhir_server.api.negotiation import negotiate, read_json
from fhir_server.api.responses import json_response
from fhir_server.api.validate import validators
from fhir_server.fhir import instant, jsonio
from fhir_server.fhir.outcome import BadRequest, FHIRError, NotFound
from fhir_server.fhir.validation.definitions import DefinitionSource


async def _inputs(request: Request) -> dict[str, Any]:
    """Operation parameters by name (first value wins), from the query string and a Parameters body."""
    found: dict[str, Any] = {k: v for k, v in request.query_params.items() if not k.startswith("_")}
    if request.method == "POST":
        body = await read_json(request, context.server(request).settings.max_body_bytes)
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise BadRequest("POST a Parameters resource (or use GET with query parameters)", code="structure")
        for param in body.get("parameter") or []:
            if not isinstance(param, dict) or not isinstance(param.get("name"), str):
                raise BadRequest("each Parameters.parameter needs a name", code="structure")
            value = next((v for k, v in param.items() if k.startswith("value")), param.get("resource"))
            found.setdefault(param["name"], value)
    return found


async def _source(request: Request) -> DefinitionSource:
    validator = await validators(request).get(context.server(request).store)
    return validator.source


async def _value_set(request: Request, source: DefinitionSource, id: str | None, url: Any) -> Mapping[str, Any]:
    if id is not None:
        version = await context.server(request).store.read("ValueSet", id)
        if version is None or version.deleted or version.body is None:
            raise NotFound(f"ValueSet/{id} is not known to this server")
        return jsonio.loads(version.body)  # type: ignore[no-any-return]
    if not isinstance(url, str) or not url:
        raise BadRequest("name the ValueSet: ValueSet/[id]/$... or the url parameter", ["url"], code="required")
    vs = source.value_set(url)
    if vs is None:
        raise NotFound(f"ValueSet {url!r} is not held by this server", ["url"])
    return vs


def _concepts(concepts: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for c in concepts:
        yield c
        yield from _concepts(c.get("concept") or [])


def _display(source: DefinitionSource, system: str, code: str) -> str | None:
    cs = source.code_system(system)
    for c in _concepts((cs or {}).get("concept") or []):
        if c.get("code") == code:
            return c.get("display")
    return None


def _expansion(source: DefinitionSource, vs: Mapping[str, Any]) -> Any:
    url = vs.get("url")
    held = source.expansion(url) if isinstance(url, str) else None
    if held is None:
        from fhir_server.fhir.validation.terminology import expand

        held = expand(vs, source.value_set, source.code_system)
    return held


async def expand(request: Request, rtype: str, id: str | None = None) -> Response:
    neg = negotiate(request)
    params = await _inputs(request)
    source = await _source(request)
    vs = await _value_set(request, source, id, params.get("url"))
    expansion = _expansion(source, vs)
    if expansion.open_all or expansion.open_systems:
        systems = ", ".join(sorted(expansion.open_systems)) or "an imported ValueSet"
        raise FHIRError(422, "too-costly", f"ValueSet {vs.get('url')!r} cannot be enumerated here: it includes "
                        f"{systems}, which this server does not hold")
    contains = []
    for system, codes in sorted(expansion.codes.items()):
        for code in sorted(codes):
            entry = {"system": system, "code": code}
            display = _display(source, system, code)
            if display:
                entry["display"] = display
            contains.append(entry)
    result = {k: v for k, v in vs.items() if k not in ("compose", "meta", "text")}
    result["expansion"] = {"identifier": f"urn:uuid:{uuid4()}", "timestamp": instant.now(), "total": len(contains)}
    if contains:
        result["expansion"]["contains"] = contains
    return json_response(result, 200, None, neg)


def _codings(params: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    if isinstance(params.get("code"), str):
        system = params.get("system")
        return [(system if isinstance(system, str) else None, params["code"])]
    coding = params.get("coding")
    if isinstance(coding, dict) and isinstance(coding.get("code"), str):
        return [(coding.get("system"), coding["code"])]
    concept = params.get("codeableConcept")
    if isinstance(concept, dict):
        pairs = [(c.get("system"), c["code"]) for c in concept.get("coding") or []
                 if isinstance(c, dict) and isinstance(c.get("code"), str)]
        if pairs:
            return pairs
    raise BadRequest("give code (and system), coding or codeableConcept", ["code"], code="required")


async def validate_code(request: Request, rtype: str, id: str | None = None) -> Response:
    neg = negotiate(request)
    params = await _inputs(request)
    source = await _source(request)
    vs = await _value_set(request, source, id, params.get("url"))
    expansion = _expansion(source, vs)
    verdicts = [(system, code, expansion.contains(system, code)) for system, code in _codings(params)]
    hit = next(((s, c) for s, c, ok in verdicts if ok), None)
    out: list[dict[str, Any]] = [{"name": "result", "valueBoolean": hit is not None}]
    if hit is not None and hit[0]:
        display = _display(source, hit[0], hit[1])
        if display:
            out.append({"name": "display", "valueString": display})
    else:
        unknown = any(ok is None for _, _, ok in verdicts)
        shown = ", ".join(f"{s or ''}|{c}" for s, c, _ in verdicts)
        why = "cannot be decided here (part of the ValueSet is not held)" if unknown else "is not in"
        out.append({"name": "message", "valueString": f"{shown} {why} {vs.get('url')}"})
    return json_response({"resourceType": "Parameters", "parameter": out}, 200, None, neg)


async def lookup(request: Request, rtype: str, id: str | None = None) -> Response:
    neg = negotiate(request)
    params = await _inputs(request)
    (system, code), *_ = _codings(params)
    if not system:
        raise BadRequest("$lookup needs the system of the code", ["system"], code="required")
    source = await _source(request)
    cs = source.code_system(system)
    if cs is None:
        raise NotFound(f"CodeSystem {system!r} is not held by this server", ["system"])
    concept = next((c for c in _concepts(cs.get("concept") or []) if c.get("code") == code), None)
    if concept is None:
        raise NotFound(f"{code!r} is not a code of {system}", ["code"])
    out: list[dict[str, Any]] = [{"name": "name", "valueString": cs.get("name") or cs.get("title") or system}]
    if cs.get("version"):
        out.append({"name": "version", "valueString": cs["version"]})
    if concept.get("display"):
        out.append({"name": "display", "valueString": concept["display"]})
    if concept.get("definition"):
        out.append({"name": "definition", "valueString": concept["definition"]})
    for prop in concept.get("property") or []:
        value = next(({k: v} for k, v in prop.items() if k.startswith("value")), {})
        out.append({"name": "property", "part": [{"name": "code", "valueCode": prop.get("code")},
                                                 {"name": "value", **value}]})
    return json_response({"resourceType": "Parameters", "parameter": out}, 200, None, neg)


_HL7 = "http://hl7.org/fhir/OperationDefinition"
for _level in ("type", "instance"):
    operations.register(operations.Operation("expand", _level, ("ValueSet",), ("GET", "POST"), expand,
                                             f"{_HL7}/ValueSet-expand"))
    operations.register(operations.Operation("validate-code", _level, ("ValueSet",), ("GET", "POST"),
                                             validate_code, f"{_HL7}/ValueSet-validate-code"))
operations.register(operations.Operation("lookup", "type", ("CodeSystem",), ("GET", "POST"), lookup,
                                         f"{_HL7}/CodeSystem-lookup"))
