"""One validation of one resource, as ``$validate`` and ``fhir-server validate`` both run it.

Two engines look at a resource: the R4 JSON schema pass (:func:`fhir_server.fhir.registry.validate`, types,
enumerations, unknown and required elements) and the StructureDefinition walk (:class:`Validator`, cardinality,
bindings, invariants, profiles). They overlap on almost every structural rule, and a client must get one issue
per cause, located as the HL7 validator locates it (``Patient.identifier[0].system``). So the walk owns every
element it reports on: a schema issue is kept only where the walk found no error at that place (the schema
pass is the safety net for anything the walk misses), and the schema pass itself says one thing per place
(a bad date fails both its regex and its calendar check: one cause).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import registry
from ..outcome import Issue
from . import kinds
from .questionnaire import QuestionnaireLookup
from .validator import Validator

_BAD = ("error", "fatal")


def validate(
    validator: Validator,
    resource: dict[str, Any],
    profiles: Iterable[str] = (),
    questionnaires: QuestionnaireLookup | None = None,
) -> list[Issue]:
    """The walk's issues, plus each place only the schema pass found fault with (one issue per place), then
    the rules of particular resource kinds (:mod:`.kinds`: a QuestionnaireResponse against its Questionnaire,
    which ``questionnaires`` serves, Bundle references)."""
    rest = validator.validate(resource, list(profiles), meta_profiles=True)
    flagged = {i.expression for i in rest if i.severity in _BAD}
    kept: list[Issue] = []
    for issue in registry.validate(resource):
        if issue.expression in flagged or (issue.severity in _BAD and _within(issue, flagged)):
            continue
        flagged.add(issue.expression)
        kept.append(issue)
    issues = kept + rest
    if isinstance(resource, dict):

        def profile_check(sd: Any) -> list[Issue]:
            # why a profile cannot be used, unless the passes above already faulted that place (one cause)
            return [i for i in validator.check_structure_definition(sd) if i.expression not in flagged]

        try:
            issues += kinds.check(resource, validator.source, questionnaires, profile_check)
        except (RecursionError, TypeError, ValueError, AttributeError, KeyError) as exc:
            # a bug here is not the client's fault: say what was not checked rather than answer 500
            issues.append(Issue("error", "exception", f"The validator failed ({type(exc).__name__}); the "
                                "resource was not fully checked", (str(resource.get("resourceType", "")),)))
    return issues


def _within(issue: Issue, flagged: set[tuple[str, ...]]) -> bool:
    """A schema complaint about an object the walk already faulted inside or at (``contained[0]`` being an
    unknown resource type is one fault whatever the schema says of its properties)."""
    for where in issue.expression:
        for other in flagged:
            for place in other:
                if where.startswith(place + ".") or where.startswith(place + "["):
                    return True
    return False
