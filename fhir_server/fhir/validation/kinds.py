"""Rules of particular resource kinds that no StructureDefinition can express, run after the profile walk.

The HL7 Java validator checks some resources against other resources or against rules written in prose: a
QuestionnaireResponse against its Questionnaire, a Questionnaire's ``enableWhen`` targets, a Bundle's entries
and the references between them, conformance resources' own rules (:mod:`.conformance`). These run here on
the resource and on every resource inside it (contained resources, Bundle entries, nested Bundles), each at its
FHIRPath location.

The caller hands in what needs I/O: ``questionnaires`` maps a canonical (``url`` or ``url|version``) to the
Questionnaire it holds (:func:`questionnaire_refs` lists the canonicals a payload names).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..outcome import Issue
from .bundles import check_bundle
from .conformance import (
    check_capability_statement,
    check_code_system,
    check_search_parameter,
    check_structure_definition,
    check_value_set,
)
from .definitions import DefinitionSource
from .questionnaire import QuestionnaireLookup, check_questionnaire, check_response

MAX_NESTING = 8  # Bundles in Bundles in contained resources…: deeper ones are not walked again


def embedded(resource: Mapping[str, Any], path: str, depth: int = 0) -> Iterator[tuple[Mapping[str, Any], str]]:
    """The resource and every resource inside it (contained, Bundle entries, Parameters), with paths."""
    yield resource, path
    if depth >= MAX_NESTING:
        return
    for i, inner in enumerate(resource.get("contained") or ()):
        if isinstance(inner, dict) and isinstance(inner.get("resourceType"), str):
            yield from embedded(inner, f"{path}.contained[{i}]", depth + 1)
    if resource.get("resourceType") == "Bundle":
        for i, entry in enumerate(resource.get("entry") or ()):
            inner = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(inner, dict) and isinstance(inner.get("resourceType"), str):
                yield from embedded(inner, f"{path}.entry[{i}].resource", depth + 1)


def questionnaire_refs(resource: Mapping[str, Any]) -> set[str]:
    """The Questionnaire canonicals named by the QuestionnaireResponses in ``resource`` (not ``#contained``)."""
    refs = set()
    for res, _ in embedded(resource, ""):
        ref = res.get("questionnaire") if res.get("resourceType") == "QuestionnaireResponse" else None
        if isinstance(ref, str) and ref and not ref.startswith("#"):
            refs.add(ref)
    return refs


ProfileCheck = Callable[[Mapping[str, Any]], list[Issue]]


def check(
    resource: Mapping[str, Any],
    source: DefinitionSource,
    questionnaires: QuestionnaireLookup | None = None,
    profile_check: ProfileCheck | None = None,
) -> list[Issue]:
    """The rules above for ``resource`` and the resources inside it. ``profile_check`` says why a profile
    (a StructureDefinition with derivation ``constraint``) cannot be used, as storing it would (its snapshot
    cannot be built against its base: an unknown base, a path the base does not have)."""
    issues: list[Issue] = []
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        return issues
    lookup: QuestionnaireLookup = questionnaires or (lambda _url: None)
    in_bundle = _bundled_questionnaires(resource)

    def find(url: str) -> Mapping[str, Any] | None:
        return lookup(url) or in_bundle(url)

    for res, path in embedded(resource, rtype):
        kind = res.get("resourceType")
        if kind == "QuestionnaireResponse":
            issues += check_response(res, path, find, source.expansion)
        elif kind == "Questionnaire":
            issues += check_questionnaire(res, path)
        elif kind == "Bundle":
            issues += check_bundle(res, path, source.is_resource_type)
        elif kind == "SearchParameter":
            issues += check_search_parameter(res, path)
        elif kind == "CapabilityStatement":
            issues += check_capability_statement(res, path)
        elif kind == "CodeSystem":
            issues += check_code_system(res, path, source)
        elif kind == "StructureDefinition":
            own = check_structure_definition(res, path)
            issues += own
            if not own and profile_check is not None and res.get("derivation") == "constraint":
                issues += [Issue(i.severity, i.code, i.diagnostics, i.expression or (path,))
                           for i in profile_check(res) if i.severity in ("error", "fatal")]
        elif kind == "ValueSet":
            issues += check_value_set(res, path, source)
    return issues


def _bundled_questionnaires(resource: Mapping[str, Any]) -> Callable[[str], Mapping[str, Any] | None]:
    """Questionnaires carried in the same payload (a Bundle with the form and its responses) by url."""
    found: dict[str, Mapping[str, Any]] = {}
    for res, _ in embedded(resource, ""):
        if res.get("resourceType") == "Questionnaire" and isinstance(res.get("url"), str):
            found.setdefault(res["url"], res)
            if isinstance(res.get("version"), str):
                found.setdefault(f"{res['url']}|{res['version']}", res)
    return found.get
