"""``$validate`` (resource-operation-validate) and ``meta.profile`` enforcement on writes.

The validator works from StructureDefinitions as data: the base R4 definitions plus every StructureDefinition,
ValueSet and CodeSystem the server holds. It is rebuilt only when one of those changes, which is detected from
the newest history entry of each of the three types (index-backed, no hooks in every write path).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import context, operations
from fhir_server.api.negotiation import negotiate, read_json
from fhir_server.api.responses import json_response
from fhir_server.fhir import jsonio
from fhir_server.fhir.outcome import BadRequest, FHIRError, Issue, NotFound, operation_outcome
from fhir_server.fhir.search.parse import parse_search
from fhir_server.fhir.validation import DefinitionSource, Validator, check, kinds
from fhir_server.fhir.validation.validator import bindings_without_strength
from fhir_server.store.base import HistoryQuery, Store

CONFORMANCE_TYPES = ("StructureDefinition", "ValueSet", "CodeSystem")


class ValidatorCache:
    """One Validator per state of the server's conformance resources."""

    def __init__(self, unknown_extensions: str = "error") -> None:
        self.unknown_extensions = unknown_extensions  # FHIR_VALIDATE_UNKNOWN_EXTENSIONS
        self._fingerprint: tuple[Any, ...] | None = None
        self._validator: Validator | None = None
        self._lock = asyncio.Lock()

    async def _fingerprint_of(self, store: Store) -> tuple[Any, ...]:
        marks = []
        for rtype in CONFORMANCE_TYPES:
            page = await store.history(HistoryQuery(rtype, count=1, want_total=False))
            newest = page.versions[0] if page.versions else None
            marks.append(None if newest is None else (newest.id, newest.version_id, newest.last_updated))
        return tuple(marks)

    async def get(self, store: Store) -> Validator:
        fingerprint = await self._fingerprint_of(store)
        if self._validator is not None and fingerprint == self._fingerprint:
            return self._validator
        async with self._lock:
            if self._validator is None or fingerprint != self._fingerprint:
                held = []
                for rtype in CONFORMANCE_TYPES:
                    async for version in store.export(rtype):
                        assert version.body is not None
                        held.append(jsonio.loads(version.body))
                self._validator = Validator(DefinitionSource(held), unknown_extensions=self.unknown_extensions)
                self._fingerprint = fingerprint
        return self._validator


def validators(request: Request) -> ValidatorCache:
    state = request.app.state
    if not hasattr(state, "validators"):
        state.validators = ValidatorCache(context.server(request).settings.validate_unknown_extensions)
    cache: ValidatorCache = state.validators
    return cache


def _parameters(body: dict[str, Any]) -> tuple[dict[str, Any] | None, str, list[str]]:
    """Parameters(resource, mode, profile) → (resource, mode, profiles)."""
    resource, mode, profiles = None, "", []
    for i, param in enumerate(body.get("parameter") or []):
        if not isinstance(param, dict):
            raise BadRequest(f"Parameters.parameter[{i}] must be an object", [f"Parameters.parameter[{i}]"])
        name = param.get("name")
        if name == "resource":
            resource = param.get("resource")
        elif name == "mode":
            mode = str(param.get("valueCode") or param.get("valueString") or "")
        elif name == "profile":
            value = param.get("valueUri") or param.get("valueCanonical") or param.get("valueString")
            if isinstance(value, str):
                profiles.append(value)
    return resource, mode, profiles


async def _validate(request: Request, rtype: str, id: str | None) -> Response:
    context.resource_type(rtype)
    neg = negotiate(request)
    srv = context.server(request)
    body = await read_json(request, srv.settings.max_body_bytes)
    if not isinstance(body, dict):
        raise BadRequest("$validate takes a resource or a Parameters resource", code="structure")
    profiles = list(request.query_params.getlist("profile"))
    mode = request.query_params.get("mode", "")
    resource: dict[str, Any] | None = body
    if body.get("resourceType") == "Parameters" and rtype != "Parameters":
        resource, mode_param, profile_params = _parameters(body)
        mode, profiles = mode_param or mode, profiles + profile_params
    if mode and mode not in ("create", "update", "delete", "profile"):
        raise BadRequest(f"mode must be create, update, delete or profile, not {mode!r}", ["mode"])
    if mode == "delete":
        if id is None:
            raise BadRequest("mode=delete needs an instance: POST [type]/[id]/$validate", ["mode"])
        found = await srv.store.read(rtype, id)
        if found is not None and not await srv.gate.can_see(context.caller(request), found):
            found = None  # withheld: the 404 of a resource that does not exist
        if found is None or found.deleted:
            raise NotFound(f"{rtype}/{id} is not known to this server")
        return json_response(operation_outcome([Issue("information", "informational",
                                                      f"{rtype}/{id} may be deleted")]), 200, None, neg)
    if not isinstance(resource, dict):
        raise BadRequest("no resource to validate: send it as the body or as Parameters.parameter 'resource'",
                         code="required")
    issues = await validate_resource(request, resource, rtype, profiles, mode=mode or None, id=id)
    if not issues:
        issues = [Issue("information", "informational", "the resource is valid")]
    return json_response(operation_outcome(issues), 200, None, neg)


async def validate_resource(request: Request, resource: dict[str, Any], rtype: str, profiles: list[str],
                            mode: str | None = None, id: str | None = None) -> list[Issue]:
    issues: list[Issue] = []
    if resource.get("resourceType") != rtype:
        return [Issue("error", "invalid", f"resourceType {resource.get('resourceType')!r} is not {rtype!r}",
                      ("resourceType",))]
    if mode == "update" and id is not None and resource.get("id") != id:
        issues.append(Issue("error", "invalid", f"the resource id must be {id!r} for an update", (f"{rtype}.id",)))
    validator = await validators(request).get(context.server(request).store)
    questionnaires = await _questionnaires(request, kinds.questionnaire_refs(resource))
    return issues + check.validate(validator, resource, profiles, questionnaires.get)


MAX_QUESTIONNAIRES = 20  # canonicals looked up for one $validate (a Bundle of responses to many forms)


async def _questionnaires(request: Request, refs: set[str]) -> dict[str, dict[str, Any]]:
    """The Questionnaires that the QuestionnaireResponses being validated name, by canonical (``url`` or
    ``url|version``; the newest match when no version is given), as far as the caller may see them."""
    srv = context.server(request)
    caller = context.caller(request)
    found: dict[str, dict[str, Any]] = {}
    for ref in sorted(refs)[:MAX_QUESTIONNAIRES]:
        url, _, version = ref.partition("|")
        try:
            query = parse_search("Questionnaire", [("url", url)], strict=True)
        except FHIRError:
            continue  # not a url this server can search by: reported as not found
        page = await srv.store.search(query)
        best: dict[str, Any] | None = None
        for match in page.matches:
            if match.body is None or not await srv.gate.can_see(caller, match):
                continue
            q = jsonio.loads(match.body)
            if q.get("url") != url or (version and q.get("version") != version):
                continue
            if best is None or str(q.get("version", "")) > str(best.get("version", "")):
                best = q
        if best is not None:
            found[ref] = best
    return found


async def enforce_profiles(request: Request, resource: dict[str, Any]) -> list[Issue]:
    """On create/update: a known ``meta.profile`` is enforced (422 with the issues); an unknown one is
    returned as a warning for the caller to report."""
    is_profile = resource.get("resourceType") == "StructureDefinition"
    if not is_profile and not (resource.get("meta") or {}).get("profile"):
        return []  # the common case: nothing to look up
    validator = await validators(request).get(context.server(request).store)
    if is_profile:
        # A profile the validator cannot use (unknown base, a path not in the base, a circular base) is refused
        # when it is stored, not discovered later when someone validates against it.
        problems = bindings_without_strength(resource) or [
            i for i in validator.check_structure_definition(resource) if i.severity in ("error", "fatal")]
        if problems:
            raise FHIRError.from_issues(422, problems)
    # an extension the server has no definition of is stored (a receiver may ignore it; $validate says error)
    issues = validator.validate(resource, [], meta_profiles=True, unknown_extensions="warning") \
        if (resource.get("meta") or {}).get("profile") else []
    errors = [i for i in issues if i.severity in ("error", "fatal")]
    if errors:
        raise FHIRError.from_issues(422, errors)
    return [i for i in issues if i.severity == "warning"]


async def validate_type(request: Request, rtype: str) -> Response:
    return await _validate(request, rtype, None)


async def validate_instance(request: Request, rtype: str, id: str) -> Response:
    return await _validate(request, rtype, id)


operations.register(operations.Operation("validate", "type", ("*",), ("POST",), validate_type,
                                         "http://hl7.org/fhir/OperationDefinition/Resource-validate"))
operations.register(operations.Operation("validate", "instance", ("*",), ("POST",), validate_instance,
                                         "http://hl7.org/fhir/OperationDefinition/Resource-validate"))
