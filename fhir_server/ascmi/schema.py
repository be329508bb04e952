"""Validation of ASCMI intake JSON: the JSON Schema in ``profiles/`` plus the semantic rules of ASCMI.md
§1/§5.

Each problem becomes one :class:`Issue` whose ``expression`` is the JSONPath of the field from the request
root, so a Care Partner's form UI can point at the field. Nothing here reads a clock: ``today`` (the intake
date in the server time zone) is passed in.

>>> from datetime import date
>>> from fhir_server.ascmi.terminology import load_terminology
>>> [i.expression for i in form_issues({}, terminology=load_terminology(), today=date(2025, 1, 1))][:2]
[('$.acknowledgements',), ('$.categories',)]
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from fhir_server.ascmi import rules
from fhir_server.ascmi.jsonpath import jsonpath
from fhir_server.ascmi.terminology import Terminology
from fhir_server.fhir.outcome import FHIRError, Issue

_REQUIRED = re.compile(r"^'(.+)' is a required property$")
_CODE_DEFS = {
    "categoryCode": "ascmi-category",
    "purposeCode": "ascmi-purpose",
    "carePartnerType": "care-partner-type",
    "expirationEvent": "ascmi-expiration-event",
    "relationship": "ascmi-representative-relationship",
}


@lru_cache(maxsize=16)
def _validators(terminology: Terminology) -> tuple[Draft202012Validator, Draft202012Validator]:
    form, revocation = dict(terminology.form_schema), dict(terminology.revocation_schema)
    registry: Registry = Registry().with_resources(
        [(s["$id"], Resource.from_contents(s, default_specification=DRAFT202012)) for s in (form, revocation)]
    )
    checker = FormatChecker(["date"])
    return (
        Draft202012Validator(form, registry=registry, format_checker=checker),
        Draft202012Validator(revocation, registry=registry, format_checker=checker),
    )


def form_issues(form: Any, *, terminology: Terminology, today: date) -> list[Issue]:
    """Every problem of an ASCMI form (empty list = valid)."""
    issues = _schema_issues(_validators(terminology)[0], form)
    if isinstance(form, dict):
        issues += _not_reported(issues, rules.form_rules(form, terminology=terminology, today=today))
    return _unique(issues)


def revocation_issues(revocation: Any, *, terminology: Terminology, today: date) -> list[Issue]:
    """Every problem of an ASCMI revocation that can be seen without the revoked Consent."""
    issues = _schema_issues(_validators(terminology)[1], revocation)
    if isinstance(revocation, dict):
        issues += _not_reported(issues, rules.revocation_rules(revocation, terminology=terminology, today=today))
    return _unique(issues)


def check_form(form: Any, *, terminology: Terminology, today: date) -> None:
    """Raise a 422 FHIRError carrying every issue when the form is not acceptable; nothing is stored then."""
    issues = form_issues(form, terminology=terminology, today=today)
    if issues:
        raise FHIRError.from_issues(422, issues)


def check_revocation(revocation: Any, *, terminology: Terminology, today: date) -> None:
    issues = revocation_issues(revocation, terminology=terminology, today=today)
    if issues:
        raise FHIRError.from_issues(422, issues)


def schema_issues(validator: Draft202012Validator, instance: Any) -> list[Issue]:
    """Issues of a JSON Schema validation, each at the JSONPath of the offending field (for other intakes)."""
    return _schema_issues(validator, instance)


def semantic_issues(reported: list[Issue], more: list[Issue]) -> list[Issue]:
    """``more`` minus those about fields already reported, all de-duplicated: one complaint per field."""
    return _unique(reported + _not_reported(reported, more))


def _not_reported(reported: list[Issue], more: list[Issue]) -> list[Issue]:
    """Semantic issues about fields the schema has not already rejected (one complaint per field)."""
    seen = {e for i in reported for e in i.expression}
    return [i for i in more if not seen.intersection(i.expression)]


def _unique(issues: list[Issue]) -> list[Issue]:
    return list(dict.fromkeys(issues))


def _schema_issues(validator: Draft202012Validator, instance: Any) -> list[Issue]:
    issues: list[Issue] = []
    errors = sorted(validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    for error in errors:
        issues.extend(_translate(error))
    return issues


def _translate(error: ValidationError) -> list[Issue]:
    """One jsonschema error → Issues located at the offending field (not its parent object)."""
    path: list[str | int] = list(error.absolute_path)
    keyword = error.validator
    if keyword == "oneOf" and error.context:
        # revokes: report the branch that got furthest, at its own path.
        best = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "required"))
        if best.validator == "required":
            return [
                Issue(
                    "error",
                    "required",
                    'give exactly one of formId or consent ("Consent/<id>")',
                    (jsonpath(path),),
                )
            ]
        return _translate(best)
    if keyword == "required":
        match = _REQUIRED.match(error.message)
        name = match.group(1) if match else "?"
        return [Issue("error", "required", f"{name} is required", (jsonpath([*path, name]),))]
    if keyword == "additionalProperties":
        known = set(error.schema.get("properties", {}))
        extras = [k for k in error.instance if k not in known] if isinstance(error.instance, dict) else []
        return [Issue("error", "structure", f"unknown field {k!r}", (jsonpath([*path, k]),)) for k in extras]
    if "propertyNames" in error.schema_path:
        name = str(error.instance)
        return [
            Issue(
                "error",
                "code-invalid",
                f"{name!r} is not a code of {_code_system(error)}",
                (jsonpath([*path, name]),),
            )
        ]
    if keyword == "enum":
        system = _code_system(error)
        if system:
            return [
                Issue(
                    "error",
                    "code-invalid",
                    f"{error.instance!r} is not a code of {system}",
                    (jsonpath(path),),
                )
            ]
        allowed = ", ".join(map(str, error.validator_value))
        return [Issue("error", "value", f"{error.instance!r} is not one of {allowed}", (jsonpath(path),))]
    if keyword == "type":
        return [Issue("error", "structure", f"expected {_type_name(error.validator_value)}", (jsonpath(path),))]
    if keyword in ("format", "pattern") and error.schema.get("format") == "date":
        return [Issue("error", "value", f"{error.instance!r} is not a date (YYYY-MM-DD)", (jsonpath(path),))]
    return [Issue("error", "value", _plain(error), (jsonpath(path),))]


def _code_system(error: ValidationError) -> str | None:
    for part in reversed(list(error.relative_schema_path) + list(error.schema_path)):
        if isinstance(part, str) and part in _CODE_DEFS:
            return _CODE_DEFS[part]
    description = str(error.schema.get("description", ""))
    for name, system in _CODE_DEFS.items():
        if system in description or name in description:
            return system
    return None


def _type_name(expected: Any) -> str:
    names = {
        "object": "an object",
        "array": "an array",
        "string": "a string",
        "boolean": "true or false",
        "integer": "an integer",
        "number": "a number",
    }
    if isinstance(expected, list):
        return " or ".join(names.get(str(t), str(t)) for t in expected)
    return names.get(expected, str(expected))


def _plain(error: ValidationError) -> str:
    keyword, value = error.validator, error.validator_value
    messages = {
        "minLength": "must not be empty" if value == 1 else f"must be at least {value} characters",
        "maxLength": f"must be at most {value} characters",
        "minItems": f"must list at least {value} item(s)",
        "maxItems": f"must list at most {value} items",
        "uniqueItems": "must not repeat an item",
        "pattern": "has an invalid format",
        "minProperties": "must not be empty",
    }
    return messages.get(str(keyword), error.message)
