"""Validation of a confidential communications request and of a withdrawal (ASCMI.md §6): the JSON Schemas in
``profiles/`` plus the rules a schema cannot say (dates against today and against each other).

Each problem is an Issue at the JSONPath of its field, as for forms (ASCMI.md §1); nothing here reads a clock.

>>> from datetime import date
>>> [i.expression[0] for i in request_issues({"requestId": "r1"}, vocabulary=load_vocabulary(),
...                                         today=date(2026, 12, 4))][:3]
['$.designated', '$.individual', '$.receivedBy']
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from fhir_server.ascmi.confidential.vocab import Vocabulary, load_vocabulary
from fhir_server.ascmi.jsonpath import jsonpath
from fhir_server.ascmi.rules import as_date
from fhir_server.ascmi.schema import schema_issues, semantic_issues
from fhir_server.fhir.outcome import FHIRError, Issue

__all__ = ["check_request", "check_withdrawal", "load_vocabulary", "request_issues", "withdrawal_issues"]


@lru_cache(maxsize=8)
def _validators(vocabulary: Vocabulary) -> tuple[Draft202012Validator, Draft202012Validator]:
    form = dict(vocabulary.terminology.form_schema)  # the shared $defs, with the code enums injected
    request, withdrawal = vocabulary.request_schema, vocabulary.withdrawal_schema
    registry: Registry = Registry().with_resources(
        [(s["$id"], Resource.from_contents(s, default_specification=DRAFT202012)) for s in (form, request, withdrawal)]
    )
    checker = FormatChecker(["date"])
    return (Draft202012Validator(request, registry=registry, format_checker=checker),
            Draft202012Validator(withdrawal, registry=registry, format_checker=checker))


def _issue(code: str, message: str, *path: str) -> Issue:
    return Issue("error", code, message, (jsonpath(path),))


def _plainer(issue: Issue) -> Issue:
    if issue.expression == ("$.designated",) and issue.code == "value":
        return Issue("error", "required", "designate at least one contact: an address, an email or a phone",
                     issue.expression)
    return issue


def _received_rules(doc: dict[str, Any], today: date) -> list[Issue]:
    received = as_date(doc.get("receivedDate"))
    if received and received > today:
        return [_issue("business-rule", f"received date {received.isoformat()} is after today "
                                        f"({today.isoformat()}, the server's intake date)", "receivedDate")]
    return []


def request_issues(request: Any, *, vocabulary: Vocabulary, today: date) -> list[Issue]:
    """Every problem of a request (empty list = valid)."""
    issues = [_plainer(i) for i in schema_issues(_validators(vocabulary)[0], request)]
    if not isinstance(request, dict):
        return issues
    more = _received_rules(request, today)
    received, ends = as_date(request.get("receivedDate")), as_date(request.get("ends"))
    if received and ends and ends < received:
        more.append(_issue("business-rule", f"ends {ends.isoformat()} is before the received date "
                                            f"{received.isoformat()}", "ends"))
    birth = as_date((request.get("individual") or {}).get("birthDate")) \
        if isinstance(request.get("individual"), dict) else None
    if birth and received and birth > received:
        more.append(_issue("business-rule", "birth date is after the received date", "individual", "birthDate"))
    return semantic_issues(issues, more)


def withdrawal_issues(withdrawal: Any, *, vocabulary: Vocabulary, today: date) -> list[Issue]:
    issues = schema_issues(_validators(vocabulary)[1], withdrawal)
    if not isinstance(withdrawal, dict):
        return issues
    more = _received_rules(withdrawal, today)
    named = [k for k in ("requestId", "consent") if k in withdrawal]
    if len(named) != 1:
        more.append(_issue("required", 'give exactly one of requestId or consent ("Consent/<id>")',
                           named[1] if len(named) > 1 else "requestId"))
    return semantic_issues(issues, more)


def check_request(request: Any, *, vocabulary: Vocabulary, today: date) -> None:
    """Raise a 422 carrying every issue when the request is not acceptable; nothing is stored then."""
    issues = request_issues(request, vocabulary=vocabulary, today=today)
    if issues:
        raise FHIRError.from_issues(422, issues)


def check_withdrawal(withdrawal: Any, *, vocabulary: Vocabulary, today: date) -> None:
    issues = withdrawal_issues(withdrawal, vocabulary=vocabulary, today=today)
    if issues:
        raise FHIRError.from_issues(422, issues)
