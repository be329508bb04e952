"""Semantic rules of ASCMI.md §1/§5 that a JSON Schema cannot say (cross-field checks, dates against today).

They run after the schema on whatever is well-typed, so one request gets every problem at once; a field the
schema already rejected is skipped here rather than reported twice.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date
from typing import Any

from fhir_server.ascmi.jsonpath import jsonpath
from fhir_server.ascmi.partners import same_party
from fhir_server.ascmi.terminology import Terminology
from fhir_server.fhir.outcome import Issue

#: Statements a valid HIPAA authorization must contain (45 CFR 164.508(c)(2)); copyReceived may come later.
REQUIRED_ACKNOWLEDGEMENTS = ("rightToRevoke", "redisclosureNotice", "noConditioning")
_MAGIC = {"application/pdf": b"%PDF-", "image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}


def as_date(value: Any) -> date | None:
    """The date of a valid ``YYYY-MM-DD`` string, else None (the schema reports the bad value)."""
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _issue(code: str, message: str, *path: str | int) -> Issue:
    return Issue("error", code, message, (jsonpath(path),))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def form_rules(form: dict[str, Any], *, terminology: Terminology, today: date) -> list[Issue]:
    individual = _dict(form.get("individual"))
    signed = as_date(form.get("signedDate"))
    issues: list[Issue] = []
    if form.get("formType") == "AB133" and "mediCalId" not in individual:
        issues.append(_issue("required", "an AB 133 form needs the member's Medi-Cal CIN", "individual", "mediCalId"))
    issues += _not_future(form, today, ["signedDate"], ["signature", "date"], ["minorSignature", "date"])
    birth = as_date(individual.get("birthDate"))
    if birth and signed and birth > signed:
        issues.append(_issue("business-rule", "birth date is after the signed date", "individual", "birthDate"))
    expiration = form.get("expiration")
    if isinstance(expiration, dict):
        if "date" not in expiration and "event" not in expiration:
            issues.append(_issue("required", "give an expiration date, an expiration event, or both", "expiration"))
        expires = as_date(expiration.get("date"))
        if expires and signed and expires < signed:
            issues.append(_issue("business-rule", "expiration date is before the signed date", "expiration", "date"))
    issues += _signature_rules(form.get("signature"))
    issues += _sharing_rules(form)
    issues += _minor_rules(form, terminology, birth, signed)
    acks = _dict(form.get("acknowledgements"))
    for name in REQUIRED_ACKNOWLEDGEMENTS:
        if acks.get(name) is False:
            issues.append(
                _issue(
                    "business-rule",
                    f"the form is not a valid authorization without {name}",
                    "acknowledgements",
                    name,
                )
            )
    issues += _attachment_rules(form.get("attachment"))
    return issues


def revocation_rules(revocation: dict[str, Any], *, terminology: Terminology, today: date) -> list[Issue]:
    issues = _not_future(revocation, today, ["signedDate"], ["signature", "date"])
    effective = as_date(revocation.get("effectiveDate"))
    signed = as_date(revocation.get("signedDate"))
    if effective and effective > today:
        issues.append(
            _issue(
                "business-rule",
                f"a revocation takes effect no later than the day it is received ({today.isoformat()})",
                "effectiveDate",
            )
        )
    if effective and signed and effective < signed:
        issues.append(_issue("business-rule", "effective date is before the revocation's signed date", "effectiveDate"))
    birth = as_date(_dict(revocation.get("individual")).get("birthDate"))
    if birth and signed and birth > signed:
        issues.append(_issue("business-rule", "birth date is after the signed date", "individual", "birthDate"))
    issues += _signature_rules(revocation.get("signature"))
    issues += _attachment_rules(revocation.get("attachment"))
    return issues


def _not_future(doc: dict[str, Any], today: date, *paths: list[str]) -> list[Issue]:
    issues = []
    for path in paths:
        value: Any = doc
        for key in path:
            value = _dict(value).get(key)
        day = as_date(value)
        if day and day > today:
            issues.append(
                _issue(
                    "business-rule",
                    f"date {day.isoformat()} is in the future (today is {today.isoformat()})",
                    *path,
                )
            )
    return issues


def _signature_rules(signature: Any) -> list[Issue]:
    signature = _dict(signature)
    if signature.get("signer") == "representative" and "representative" not in signature:
        return [
            _issue(
                "required",
                "a representative's signature needs the representative's name, relationship and authority",
                "signature",
                "representative",
            )
        ]
    return []


def _sharing_rules(form: dict[str, Any]) -> list[Issue]:
    categories = _dict(form.get("categories"))
    recipients = _dict(form.get("recipients"))
    shares = any(choice == "share" for choice in categories.values())
    issues = []
    if shares and form.get("purposes") == []:
        issues.append(_issue("required", "a form that shares a category must name at least one purpose", "purposes"))
    include = [p for p in _list(recipients.get("include")) if isinstance(p, dict)]
    if shares and recipients.get("allCarePartners") is False and not include:
        issues.append(
            _issue(
                "required",
                "without allCarePartners, name the Care Partners who may receive",
                "recipients",
                "include",
            )
        )
    for i, excluded in enumerate(_list(recipients.get("exclude"))):
        if isinstance(excluded, dict) and any(same_party(excluded, p) for p in include):
            issues.append(
                _issue(
                    "business-rule",
                    "a Care Partner cannot be both included and excluded",
                    "recipients",
                    "exclude",
                    i,
                )
            )
    return issues


def _minor_rules(
    form: dict[str, Any], terminology: Terminology, birth: date | None, signed: date | None
) -> list[Issue]:
    minor = form.get("minorSignature")
    if not isinstance(minor, dict):
        return []
    age = age_on(birth, signed) if birth and signed else None
    if age is not None and age >= 18:
        return [_issue("business-rule", f"the individual was {age} on the signed date, not a minor", "minorSignature")]
    issues = []
    for i, code in enumerate(_list(minor.get("categories"))):
        category = terminology.categories.get(code) if isinstance(code, str) else None
        if category is None:
            continue
        if not category.minor_may_consent:
            issues.append(
                _issue(
                    "business-rule",
                    f"a minor may not consent alone to {code}",
                    "minorSignature",
                    "categories",
                    i,
                )
            )
        elif age is not None and category.minor_minimum_age and age < category.minor_minimum_age:
            issues.append(
                _issue(
                    "business-rule",
                    f"a minor may consent alone to {code} from age {category.minor_minimum_age}",
                    "minorSignature",
                    "categories",
                    i,
                )
            )
    return issues


def _attachment_rules(attachment: Any) -> list[Issue]:
    attachment = _dict(attachment)
    data, content_type = attachment.get("data"), attachment.get("contentType")
    if not isinstance(data, str) or not isinstance(content_type, str) or content_type not in _MAGIC:
        return []
    try:
        raw = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        return [_issue("value", "data is not valid base64", "attachment", "data")]
    if not raw.startswith(_MAGIC[content_type]):
        return [_issue("value", f"data is not a {content_type} document", "attachment", "data")]
    return []
