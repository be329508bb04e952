"""Required and extensible bindings: is the code in the bound ValueSet?

Per terminologies.html#strength: *required* — the code SHALL come from the value set (error); *extensible* —
it SHALL come from it when a suitable code exists there, which a machine cannot judge, so a miss is a warning.
Preferred and example bindings are not checked. A CodeableConcept with no coded coding (only ``text``) fails
a required binding and passes an extensible one. A ValueSet we do not know is a warning (we cannot check), and
a part of a value set we cannot enumerate (LOINC, BCP-47…) is silent rather than a false error.
"""

from __future__ import annotations

from typing import Any

from ..outcome import Issue
from .definitions import DefinitionSource
from .terminology import concept_displays, strip_version

CODED_STRINGS = frozenset({"code", "string", "uri", "url", "canonical"})
SHOW_ALLOWED = 12  # list the allowed codes in the message when there are at most this many


def _pair(system: Any, code: Any) -> list[tuple[str | None, str]]:
    if not isinstance(code, str):
        return []
    return [(system if isinstance(system, str) else None, code)]


def _codes(type_code: str, value: Any) -> list[tuple[str | None, str]] | None:
    """The (system, code) pairs an instance carries; None when the type is not coded.

    Malformed parts (a non-string code) are skipped: the structural checks report them.
    """
    if type_code in CODED_STRINGS:
        return _pair(None, value)
    if not isinstance(value, dict):
        return None
    if type_code == "Coding":
        return _pair(value.get("system"), value.get("code"))
    if type_code == "CodeableConcept":
        codings = value.get("coding")
        if not isinstance(codings, list):
            return []
        return [p for c in codings if isinstance(c, dict) for p in _pair(c.get("system"), c.get("code"))]
    if type_code.endswith("Quantity"):
        return _pair(value.get("system"), value.get("code")) if isinstance(value.get("system"), str) else []
    return None


def _describe(system: str | None, code: str) -> str:
    return f"'{code}'" if system is None else f"'{code}' (system {system})"


def check_known_codes(
    source: DefinitionSource, type_code: str, value: Any, expression: str, issues: list[Issue]
) -> bool:
    """Codes claimed from a code system we hold completely must exist in it, whatever the binding strength
    (or with no binding at all); a display that is not one the code system gives the code is a warning.

    True when a Coding's code is unknown, so its binding check does not report the same cause a second time. A
    CodeableConcept reports nothing itself (the walk reaches each of its Codings) and keeps its binding check:
    the concept missing the value set and its coding missing the code system are two findings, as the HL7
    validator reports them."""
    if type_code != "Coding" or not isinstance(value, dict):
        return False
    system, code = value.get("system"), value.get("code")
    if not isinstance(system, str):
        return False
    held = source.code_system(system)
    if held is not None and (held.get("content") == "supplement" or held.get("supplements")):
        # codesystem.html#supplements: a supplement adds designations and properties to another code
        # system; it defines no codes, so it is never the system of a Coding
        issues.append(Issue("error", "code-invalid", f"CodeSystem {system} is a supplement, so it can't be used "
                            "as a value in Coding.system", (expression,)))
        return True
    if not isinstance(code, str):
        return False
    known = source.complete_codes(system)
    if known is not None and code not in known:
        issues.append(Issue("error", "code-invalid", f"Unknown code '{code}' in the code system {system}",
                            (expression,)))
        return True
    display = value.get("display")
    if held is not None and isinstance(display, str):
        names = concept_displays(held, code)
        if names and _folded(display) not in {_folded(n) for n in names}:
            shown = ", ".join(f"'{n}'" for n in sorted(names))
            issues.append(Issue("warning", "invalid", f"Wrong Display Name '{display}' for {system}#{code}: "
                                f"should be one of {shown}", (expression,)))
    return False


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


def check_binding(
    source: DefinitionSource,
    strength: str,
    vs_url: str,
    type_code: str,
    value: Any,
    expression: str,
    issues: list[Issue],
) -> None:
    if strength not in ("required", "extensible"):
        return
    pairs = _codes(type_code, value)
    if not pairs:
        if strength == "required" and type_code == "CodeableConcept" and isinstance(value, dict):
            # terminologies.html#required: the concept SHALL carry a code from the value set; text alone
            # (or codings without a code) cannot (an extensible binding allows text when no code fits)
            issues.append(
                Issue(
                    "error",
                    "code-invalid",
                    f"No code provided, and a code is required from the value set {strip_version(vs_url)}",
                    (expression,),
                )
            )
        return
    url = strip_version(vs_url)
    expansion = source.expansion(url)
    if expansion is None:
        issues.append(
            Issue(
                "warning",
                "not-found",
                f"The value set {url} bound ({strength}) here is not "
                "known to this server, so the code was not checked",
                (expression,),
            )
        )
        return
    results = [expansion.contains(system, code) for system, code in pairs]
    if any(r is not False for r in results):
        return
    shown = ", ".join(_describe(s, c) for s, c in pairs)
    allowed = ""
    if 0 < expansion.size <= SHOW_ALLOWED and not expansion.open_systems and not expansion.open_all:
        allowed = "; allowed: " + ", ".join(sorted(c for codes in expansion.codes.values() for c in codes))
    if strength == "required":
        issues.append(
            Issue(
                "error",
                "code-invalid",
                f"The code {shown} is not in the required value set {url}{allowed}",
                (expression,),
            )
        )
    else:
        issues.append(
            Issue(
                "warning",
                "code-invalid",
                f"The code {shown} is not in the extensible value set "
                f"{url}; use a code from it when one fits{allowed}",
                (expression,),
            )
        )
