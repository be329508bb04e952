"""Conformance resources' own rules that their invariants do not express, as the HL7 Java validator checks them.

* SearchParameter (searchparameter.html): the ``expression`` must be FHIRPath that parses; a parameter
  ``derivedFrom`` another keeps its type and its base types (a different expression is only a warning); a
  composite parameter has components (at least two).
* CapabilityStatement: a ``rest.resource.searchParam`` that names its ``definition`` has that definition's type.
* CodeSystem supplements (codesystem.html#supplements) add designations and properties to codes the base code
  system defines; a concept the base does not have is an error (checked when the base is held completely).
* ValueSet: a concept included or excluded by code exists in its code system (when held completely).
* StructureDefinition: every snapshot and differential element path starts with the type it constrains.

The R4 base SearchParameters are looked up by their canonical (``http://hl7.org/fhir/SearchParameter/[type]-[code]``)
in the server's search definitions.

>>> sp = {"resourceType": "SearchParameter", "type": "token", "base": ["Organization"], "code": "n",
...       "derivedFrom": "http://hl7.org/fhir/SearchParameter/Organization-name", "expression": "Organization.name"}
>>> [i.diagnostics for i in check_search_parameter(sp, "SearchParameter")]
["The type 'token' is different to the type 'string' in the derivedFrom SearchParameter \
http://hl7.org/fhir/SearchParameter/Organization-name"]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from antlr4 import CommonTokenStream, InputStream, Token  # type: ignore[import-untyped]
from antlr4.error.ErrorListener import ErrorListener  # type: ignore[import-untyped]
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer  # type: ignore[import-untyped]
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser  # type: ignore[import-untyped]

from ..outcome import Issue
from ..search import definitions as search_definitions
from .definitions import DefinitionSource

CORE_SP = "http://hl7.org/fhir/SearchParameter/"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def base_search_parameter(url: str) -> tuple[str, list[str], str] | None:
    """(type, base resource types, expression) of an R4 core SearchParameter canonical, else None."""
    url = url.split("|", 1)[0]
    if not url.startswith(CORE_SP):
        return None
    rtype, _, code = url[len(CORE_SP):].partition("-")
    found = search_definitions.param(rtype, code) if code else None
    return (found.type, [rtype], found.expression) if found is not None else None


def check_search_parameter(sp: Mapping[str, Any], path: str) -> list[Issue]:
    issues: list[Issue] = []
    expression = sp.get("expression")
    if isinstance(expression, str) and expression and sp.get("base"):
        problem = fhirpath_syntax_error(expression)
        if problem is not None:
            issues.append(Issue("error", "invalid", f"The expression '{expression}' is not valid FHIRPath: "
                                f"{problem}", (f"{path}.expression",)))
    master = sp.get("derivedFrom")
    if isinstance(master, str) and master:
        found = base_search_parameter(master)
        if found is None:
            issues.append(Issue("warning", "business-rule", f"The derivedFrom SearchParameter {master} could not "
                                "be found, so the derivation was not checked", (path,)))
        else:
            master_type, master_bases, master_expression = found
            for base in _list(sp.get("base")):
                if isinstance(base, str) and base not in master_bases and "Resource" not in master_bases:
                    issues.append(Issue("error", "business-rule", f"The base type '{base}' is not in the base "
                                        f"types of the derivedFrom SearchParameter {master}", (path,)))
            own_type = sp.get("type")
            if isinstance(own_type, str) and own_type != master_type:
                issues.append(Issue("error", "business-rule", f"The type '{own_type}' is different to the type "
                                    f"'{master_type}' in the derivedFrom SearchParameter {master}", (path,)))
            if isinstance(expression, str) and expression and not _same_expression(expression, master_expression):
                issues.append(Issue("warning", "business-rule", f"The expression \"{expression}\" is different "
                                    f"to the expression \"{master_expression}\" in the derivedFrom SearchParameter, "
                                    "and this likely indicates that the derivation relationship is not valid",
                                    (path,)))
    if sp.get("type") == "composite" and len(_list(sp.get("component"))) < 2:
        issues.append(Issue("error", "business-rule", "A composite SearchParameter must have at least two "
                            "components", (path,)))
    return issues


class _Raise(ErrorListener):  # type: ignore[misc]
    def syntaxError(self, recognizer: Any, symbol: Any, line: int, column: int, msg: str, e: Any) -> None:  # noqa: N802
        raise ValueError(f"{msg} at character {column + 1}")


def fhirpath_syntax_error(expression: str) -> str | None:
    """Why ``expression`` is not FHIRPath (None when it parses). fhirpathpy's own parser recovers silently from
    syntax errors, so the grammar is run here with a listener that stops at the first one."""
    listener = _Raise()
    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(listener)
    tokens = CommonTokenStream(lexer)
    parser = FHIRPathParser(tokens)
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    try:
        parser.expression()
        if tokens.LA(1) != Token.EOF:
            return f"unexpected '{tokens.LT(1).text}' at character {tokens.LT(1).start + 1}"
    except Exception as exc:  # noqa: BLE001 - antlr raises assorted recognition errors
        return str(exc) or type(exc).__name__
    return None


def _same_expression(a: str, b: str) -> bool:
    def parts(text: str) -> set[str]:
        return {p.strip() for p in text.split("|")}
    return parts(a) == parts(b) or parts(a) <= parts(b)


def check_capability_statement(cs: Mapping[str, Any], path: str) -> list[Issue]:
    issues: list[Issue] = []
    for r, rest in enumerate(_list(cs.get("rest"))):
        if not isinstance(rest, dict):
            continue
        for n, resource in enumerate(_list(rest.get("resource"))):
            if not isinstance(resource, dict):
                continue
            for m, param in enumerate(_list(resource.get("searchParam"))):
                if not isinstance(param, dict):
                    continue
                definition, own_type = param.get("definition"), param.get("type")
                found = base_search_parameter(definition) if isinstance(definition, str) else None
                if found is not None and isinstance(own_type, str) and own_type != found[0]:
                    issues.append(Issue("error", "business-rule", f"Type mismatch - SearchParameter '{definition}' "
                                        f"type is {found[0]}, but type here is {own_type}",
                                        (f"{path}.rest[{r}].resource[{n}].searchParam[{m}]",)))
    return issues


def check_code_system(cs: Mapping[str, Any], path: str, source: DefinitionSource) -> list[Issue]:
    base = cs.get("supplements")
    if not isinstance(base, str) or not base:
        return []
    known = source.complete_codes(base.split("|", 1)[0])
    if known is None:
        return []
    issues: list[Issue] = []

    def walk(concepts: Any, where: str) -> None:
        for i, concept in enumerate(_list(concepts)):
            if not isinstance(concept, dict):
                continue
            code = concept.get("code")
            if isinstance(code, str) and code not in known:
                issues.append(Issue("error", "business-rule", f"The code '{code}' is not declared in the base "
                                    f"CodeSystem {base} so is not valid in the supplement", (f"{where}[{i}]",)))
            walk(concept.get("concept"), f"{where}[{i}].concept")

    walk(cs.get("concept"), f"{path}.concept")
    return issues


def check_value_set(vs: Mapping[str, Any], path: str, source: DefinitionSource) -> list[Issue]:
    """A concept a ValueSet includes or excludes by code must exist in its code system, when the server holds
    that code system completely (valueset.html#compose: the codes are drawn from the code system)."""
    issues: list[Issue] = []
    compose = vs.get("compose")
    if not isinstance(compose, dict):
        return issues
    for part in ("include", "exclude"):
        for i, inc in enumerate(_list(compose.get(part))):
            system = inc.get("system") if isinstance(inc, dict) else None
            if not isinstance(system, str):
                continue
            known = source.complete_codes(system.split("|", 1)[0])
            if known is None:
                continue
            for n, concept in enumerate(_list(inc.get("concept"))):
                code = concept.get("code") if isinstance(concept, dict) else None
                if isinstance(code, str) and code not in known:
                    issues.append(Issue("error", "code-invalid", f"The code '{code}' is not valid in the system "
                                        f"{system}", (f"{path}.compose.{part}[{i}].concept[{n}].code",)))
    return issues


def check_structure_definition(sd: Mapping[str, Any], path: str) -> list[Issue]:
    rtype = sd.get("type")
    if not isinstance(rtype, str) or sd.get("kind") == "logical":
        return []
    issues: list[Issue] = []
    for part in ("snapshot", "differential"):
        holder = sd.get(part)
        elements = holder.get("element") if isinstance(holder, dict) else None
        for i, element in enumerate(_list(elements)):
            epath = element.get("path") if isinstance(element, dict) else None
            if not isinstance(epath, str):
                continue
            where = f"{path}.{part}.element[{i}]"
            if epath != rtype and not epath.startswith(rtype + "."):
                issues.append(Issue("error", "invalid", f"The element path '{epath}' must start with the type "
                                    f"'{rtype}' the StructureDefinition constrains", (where,)))
            elif "" in epath.split("."):
                issues.append(Issue("error", "invalid", f"Illegal path '{epath}': name portion missing ('..')",
                                    (where,)))
    return issues
