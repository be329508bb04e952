"""Error-level invariants of the base resource definitions, enforced on every create and update.

Only the resource's own rules count here (``ppc-1`` on Consent: a policy or a policyRule; ``pat-1`` on
Patient.contact…) and the DomainResource ones (``dom-2``..``dom-5`` on contained resources); the datatype
rules every element carries (``ele-1``, ``ext-1``, ``ref-1``…) are left to ``$validate`` and profiles, which walk
the whole tree. The rules of a type are gathered once; an element's rules run only on the values present, so
most writes evaluate a handful of cheap checks (see docs/conformance.md for the measured cost).

>>> [i.diagnostics for i in check({"resourceType": "Consent", "status": "active"})]
['Consent: ppc-1 failed: Either a Policy or PolicyRule (policy.exists() or policyRule.exists())']
>>> check({"resourceType": "Consent", "status": "active", "policyRule": {"text": "HIPAA"}})
[]
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from ..outcome import Issue
from .definitions import CORE_PREFIX, base_definitions
from .invariants import CompiledInvariant, InvariantError, compile_invariant

_BASES = (f"{CORE_PREFIX}DomainResource", f"{CORE_PREFIX}Resource")


@dataclass(frozen=True, slots=True)
class _Rule:
    path: str  # element path, e.g. "Consent" or "Patient.contact"
    steps: tuple[str, ...]  # JSON names from the resource root to the element
    key: str
    human: str
    invariant: CompiledInvariant


@cache
def rules(resource_type: str) -> tuple[_Rule, ...]:
    """The error-level invariants a resource of this type must satisfy (its own and DomainResource's)."""
    sd = base_definitions().structure_definitions.get(f"{CORE_PREFIX}{resource_type}")
    if sd is None:
        return ()
    found = []
    for el in sd["snapshot"]["element"]:
        path = el["path"]
        if "[x]" in path:
            continue
        for c in el.get("constraint", ()):
            if c.get("severity") != "error" or c.get("source", "") not in ("", *_BASES):
                continue
            steps = tuple(path.split(".")[1:])
            found.append(_Rule(path, steps, c["key"], c.get("human", ""),
                               compile_invariant(c["expression"], c["key"])))
    return tuple(found)


def _values(resource: dict[str, Any], steps: tuple[str, ...]) -> list[Any]:
    current: list[Any] = [resource]
    for step in steps:
        nxt: list[Any] = []
        for item in current:
            value = item.get(step) if isinstance(item, dict) else None
            nxt.extend(value if isinstance(value, list) else [] if value is None else [value])
        current = nxt
    return current


def check(resource: dict[str, Any]) -> list[Issue]:
    """Issues (errors) for each invariant that fails; a rule that cannot be evaluated is not held against
    the client (``$validate`` reports it as a warning)."""
    issues = []
    for rule in rules(str(resource.get("resourceType"))):
        for value in _values(resource, rule.steps) if rule.steps else [resource]:
            try:
                ok = rule.invariant.evaluate(value, rule.path, resource, resource)
            except InvariantError:
                continue
            if not ok:
                issues.append(Issue("error", "invariant",
                                    f"{rule.path}: {rule.key} failed: {rule.human} ({rule.invariant.expression})",
                                    (rule.path,)))
                break
    return issues
