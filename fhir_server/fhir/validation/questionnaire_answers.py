"""One QuestionnaireResponse answer against its question: value type, options, value sets and the SDC limits.

questionnaire.html and the extensions the R4 spec defines for items (``minValue``, ``maxValue``,
``maxDecimalPlaces``, ``minLength``, ``regex``, ``mimeType``, ``maxSize``, ``questionnaire-optionExclusive``,
``questionnaire-unitOption``, ``sdc-questionnaire-min/maxQuantity``) say what an answer may be; the checks and
their severities follow the HL7 Java validator (QuestionnaireValidator). Each function adds issues through
``add(severity, code, diagnostics, path)`` and only looks at the answer's own value.

>>> found = []
>>> item = {"linkId": "age", "type": "integer", "extension": [
...     {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": 120}]}
>>> check_answer(item, {"valueInteger": 130}, "QR.item[0].answer[0]", lambda *i: found.append(i), None)
>>> found[0][2]
'The value 130 is above the maximum 120 allowed for this item'
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from .terminology import Expansion

AddFn = Callable[[str, str, str, str], None]
ExpandFn = Callable[[str], Expansion | None] | None

SD = "http://hl7.org/fhir/StructureDefinition/"
SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
MIN_VALUE, MAX_VALUE = SD + "minValue", SD + "maxValue"
MAX_DECIMALS, MIN_LENGTH, REGEX = SD + "maxDecimalPlaces", SD + "minLength", SD + "regex"
MIME_TYPE, MAX_SIZE = SD + "mimeType", SD + "maxSize"
EXCLUSIVE = SD + "questionnaire-optionExclusive"
UNIT_OPTION, UNIT_VALUE_SET = SD + "questionnaire-unitOption", SD + "questionnaire-unitValueSet"
MIN_QUANTITY, MAX_QUANTITY = SDC + "sdc-questionnaire-minQuantity", SDC + "sdc-questionnaire-maxQuantity"

# Questionnaire item type → the answer value[x] types it takes (R4, read as the Java validator reads it:
# choice and open-choice are R5's "coding", text is a string, url answers are uri)
ANSWER_TYPES: dict[str, tuple[str, ...]] = {
    "boolean": ("boolean",),
    "decimal": ("decimal",),
    "integer": ("integer",),
    "date": ("date",),
    "dateTime": ("dateTime",),
    "time": ("time",),
    "string": ("string",),
    "text": ("string",),
    "url": ("uri",),
    "attachment": ("Attachment",),
    "reference": ("Reference",),
    "quantity": ("Quantity",),
    "choice": ("Coding", "date", "time", "integer", "string"),
    "open-choice": ("Coding", "date", "time", "integer", "string"),
}
_VALUE_KEY = re.compile(r"^value([A-Z][A-Za-z]*)$")
_COMPLEX = frozenset({"Attachment", "Coding", "Quantity", "Reference"})


def value_of(node: Mapping[str, Any], prefix: str = "value") -> tuple[str, Any] | None:
    """(type, value) of a ``value[x]`` (or ``answer[x]``) property, e.g. ("Coding", {...})."""
    for key, value in node.items():
        if key.startswith(prefix) and len(key) > len(prefix) and key[len(prefix)].isupper():
            name = key[len(prefix):]
            return (name if name in _COMPLEX else name[:1].lower() + name[1:]), value
    return None


def extension(item: Mapping[str, Any], url: str) -> Any:
    """The value of the item's first extension with ``url`` (None when absent)."""
    for ext in item.get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == url:
            found = value_of(ext)
            return found[1] if found is not None else None
    return None


def extensions(item: Mapping[str, Any], url: str) -> list[Any]:
    out = []
    for ext in item.get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == url and (found := value_of(ext)) is not None:
            out.append(found[1])
    return out


def check_answer(q_item: Mapping[str, Any], answer: Mapping[str, Any], path: str, add: AddFn, expand: ExpandFn,
                 answer_count: int = 1) -> None:
    """The answer's value against the item (the caller handles group and display items)."""
    q_type = q_item.get("type")
    allowed = ANSWER_TYPES.get(q_type) if isinstance(q_type, str) else None
    found = value_of(answer)
    if allowed is None or found is None:
        return
    vtype, value = found
    where = f"{path}.value.ofType({vtype})"
    if vtype not in allowed:
        plural = "s" if len(allowed) > 1 else ""
        add("error", "structure", f"Answer value must be of the type{plural} {', '.join(allowed)} (found {vtype})",
            where)
        return
    if q_type in ("choice", "open-choice"):
        _choice(q_item, vtype, value, where, add, expand, q_type == "open-choice", answer_count)
        return
    checks = _BY_TYPE.get(q_type)  # type: ignore[arg-type]
    if checks is not None:
        checks(q_item, value, where, add, expand)


# -- per item type ------------------------------------------------------------------------------------------


def _number(q_item: Mapping[str, Any], value: Any, path: str, add: AddFn, expand: ExpandFn) -> None:
    v = _decimal(value)
    if v is None:
        return
    low, high = _decimal(extension(q_item, MIN_VALUE)), _decimal(extension(q_item, MAX_VALUE))
    if low is not None and v < low:
        add("error", "invariant", f"The value {value} is below the minimum {extension(q_item, MIN_VALUE)} allowed "
            "for this item", path)
    if high is not None and v > high:
        add("error", "invariant", f"The value {value} is above the maximum {extension(q_item, MAX_VALUE)} allowed "
            "for this item", path)
    places = extension(q_item, MAX_DECIMALS)
    if isinstance(places, int) and _places(value) > places:
        add("error", "invariant", f"The value {value} has more than the {places} decimal places allowed", path)
    _primitive_option(q_item, value, path, add, "decimal" if isinstance(value, float) else None)


def _temporal(q_item: Mapping[str, Any], value: Any, path: str, add: AddFn, expand: ExpandFn) -> None:
    if not isinstance(value, str):
        return
    low, high = extension(q_item, MIN_VALUE), extension(q_item, MAX_VALUE)
    if isinstance(low, str) and _before(value, low):
        add("error", "invariant", f"The value {value} is before the minimum {low} allowed for this item", path)
    if isinstance(high, str) and _before(high, value):
        add("error", "invariant", f"The value {value} is after the maximum {high} allowed for this item", path)
    _primitive_option(q_item, value, path, add, None)


def _string(q_item: Mapping[str, Any], value: Any, path: str, add: AddFn, expand: ExpandFn) -> None:
    if not isinstance(value, str):
        return
    min_length, max_length = extension(q_item, MIN_LENGTH), q_item.get("maxLength")
    if isinstance(min_length, int) and len(value) < min_length:
        add("error", "invariant", f"The answer '{value}' is shorter than the minimum length {min_length}", path)
    if isinstance(max_length, int) and len(value) > max_length:
        add("error", "invariant", f"The answer '{value}' is longer than the maximum length {max_length}", path)
    regex = extension(q_item, REGEX)
    if isinstance(regex, str):
        try:
            matched = re.fullmatch(regex, value) is not None
        except re.error:
            matched = True  # a pattern Python cannot read is not held against the answer
        if not matched:
            add("error", "invariant", f"The answer '{value}' does not match the pattern {regex}", path)
    if "\r" in value or "\n" in value:
        add("warning", "invariant", "A string answer should not contain line breaks (use a text item)", path)
    vs_url = q_item.get("answerValueSet")
    if isinstance(vs_url, str) and expand is not None:
        expansion = expand(vs_url)
        if expansion is None:
            add("warning", "not-found", f"The value set {vs_url} could not be found, so the answer was not checked",
                path)
        elif expansion.contains(None, value) is False:
            add("error", "code-invalid", f"The answer '{value}' is not in the value set {vs_url}", path)
    _primitive_option(q_item, value, path, add, None)


def _attachment(q_item: Mapping[str, Any], value: Any, path: str, add: AddFn, expand: ExpandFn) -> None:
    if not isinstance(value, dict):
        return
    types = [t for t in extensions(q_item, MIME_TYPE) if isinstance(t, str)]
    if types:
        content_type = value.get("contentType")
        if not isinstance(content_type, str):
            add("error", "required", "The attachment has no contentType, and this item limits the types allowed",
                path)
        elif not any(content_type.startswith(t) for t in types):
            add("error", "required", f"The attachment type {content_type} is not one of those allowed "
                f"({', '.join(types)})", path)
    max_size = extension(q_item, MAX_SIZE)
    data = value.get("data")
    if isinstance(max_size, int | float) and max_size > 0 and isinstance(data, str):
        try:
            size = len(base64.b64decode(data, validate=False))
        except (binascii.Error, ValueError):
            return  # the base64Binary check reports it
        if size > max_size:
            add("error", "required", f"The attachment is {size} bytes, more than the {int(max_size)} allowed", path)


def _quantity(q_item: Mapping[str, Any], value: Any, path: str, add: AddFn, expand: ExpandFn) -> None:
    if not isinstance(value, dict):
        return
    amount = _decimal(value.get("value"))
    for url, is_min in ((MIN_QUANTITY, True), (MAX_QUANTITY, False)):
        limit = extension(q_item, url)
        if not isinstance(limit, dict) or amount is None:
            continue
        bound = _decimal(limit.get("value"))
        same_unit = (limit.get("system"), limit.get("code")) == (value.get("system"), value.get("code")) and (
            limit.get("code") is not None or limit.get("unit") == value.get("unit"))
        if bound is None:
            continue
        if not same_unit:
            add("error", "invariant", f"The quantity {_show_quantity(value)} cannot be compared with the "
                f"{'minimum' if is_min else 'maximum'} {_show_quantity(limit)} (different units)", path)
        elif (is_min and amount < bound) or (not is_min and amount > bound):
            add("error", "invariant", f"The quantity {_show_quantity(value)} is "
                f"{'below the minimum' if is_min else 'above the maximum'} {_show_quantity(limit)}", path)
    places = extension(q_item, MAX_DECIMALS)
    if isinstance(places, int) and value.get("value") is not None and _places(value.get("value")) > places:
        add("error", "invariant", f"The value {value.get('value')} has more than the {places} decimal places "
            "allowed", path)
    units = [u for u in extensions(q_item, UNIT_OPTION) if isinstance(u, dict)]
    if units and not any(_unit_matches(value, u) for u in units):
        add("error", "invariant", f"The unit of {_show_quantity(value)} is not one of the unit options", path)
    unit_vs = extension(q_item, UNIT_VALUE_SET)
    if isinstance(unit_vs, str) and expand is not None and isinstance(value.get("code"), str):
        expansion = expand(unit_vs)
        if expansion is None:
            add("warning", "not-found", f"The unit value set {unit_vs} could not be found", path)
        elif expansion.contains(value.get("system"), value["code"]) is False:
            add("error", "invariant", f"The unit of {_show_quantity(value)} is not in the value set {unit_vs}", path)


_BY_TYPE: dict[str, Callable[[Mapping[str, Any], Any, str, AddFn, ExpandFn], None]] = {
    "decimal": _number, "integer": _number, "date": _temporal, "dateTime": _temporal, "time": _temporal,
    "string": _string, "attachment": _attachment, "quantity": _quantity,
}


# -- choice items -------------------------------------------------------------------------------------------


def _choice(q_item: Mapping[str, Any], vtype: str, value: Any, path: str, add: AddFn, expand: ExpandFn,
            open_choice: bool, answer_count: int) -> None:
    options = [o for o in q_item.get("answerOption") or () if isinstance(o, dict)]
    if vtype == "Coding":
        if not isinstance(value, dict):
            return
        if options:
            _coding_option(options, value, path, add, answer_count)
        elif isinstance(q_item.get("answerValueSet"), str) and expand is not None:
            _coding_in_value_set(q_item["answerValueSet"], value, path, add, expand, open_choice)
        return
    if not options:
        return
    key = "value" + vtype[:1].upper() + vtype[1:]
    listed = [o[key] for o in options if key in o]
    if vtype == "string" and open_choice:
        return  # free text is what open-choice allows
    if not listed:
        add("error", "invariant", f"Option list has no option values of type {vtype}", path)
    elif value not in listed:
        add("error", "invariant", f"The {vtype} {value} was not found in the answer option list", path)


def _coding_option(options: list[dict[str, Any]], value: Mapping[str, Any], path: str, add: AddFn,
                   answer_count: int) -> None:
    codings = [(o["valueCoding"], o) for o in options if isinstance(o.get("valueCoding"), dict)]
    if not codings:
        add("error", "invariant", "Option list has no option values of type coding", path)
        return
    for coding, option in codings:
        if coding.get("system") == value.get("system") and coding.get("code") == value.get("code"):
            if extension(option, EXCLUSIVE) is True and answer_count > 1:
                add("error", "invariant", f"The answer {coding.get('system')}#{coding.get('code')} is exclusive, "
                    "so no other answer is allowed", path)
            return
    add("error", "invariant", f"The code {value.get('system')}#{value.get('code')} was not found in the answer "
        "option list", path)


def _coding_in_value_set(vs_url: str, coding: Mapping[str, Any], path: str, add: AddFn,
                         expand: Callable[[str], Expansion | None], open_choice: bool) -> None:
    code, system = coding.get("code"), coding.get("system")
    if open_choice and not code and not system and coding.get("display"):
        return  # free text given as a display-only Coding
    expansion = expand(vs_url)
    if expansion is None:
        add("warning", "code-invalid", f"The value set {vs_url} could not be found, so the answer was not checked",
            path)
    elif isinstance(code, str) and expansion.contains(system if isinstance(system, str) else None, code) is False:
        add("error", "code-invalid", f"The code {system}#{code} is not in the answer value set {vs_url}", path)


def _primitive_option(q_item: Mapping[str, Any], value: Any, path: str, add: AddFn, _kind: str | None) -> None:
    """A question (not a choice) that lists answerOptions takes only those values."""
    options = [o for o in q_item.get("answerOption") or () if isinstance(o, dict)]
    if not options:
        return
    listed = [found[1] for o in options if (found := value_of(o)) is not None and not isinstance(found[1], dict)]
    if not listed:
        add("error", "invariant", f"Option list has no option values of type {q_item.get('type')}", path)
    elif value not in listed:
        add("error", "invariant", f"The value {value} was not found in the answer option list", path)


# -- helpers ------------------------------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _places(value: Any) -> int:
    text = str(value)
    return len(text) - text.index(".") - 1 if "." in text else 0


def _before(a: str, b: str) -> bool:
    """Partial dates/times compared at their common precision (``2020`` is not before ``2020-05``)."""
    n = min(len(a), len(b))
    return a[:n] < b[:n]


def _unit_matches(quantity: Mapping[str, Any], unit: Mapping[str, Any]) -> bool:
    return all(unit.get(k) is None or unit.get(k) == quantity.get(q)
               for k, q in (("system", "system"), ("code", "code"), ("display", "unit")))


def _show_quantity(q: Mapping[str, Any]) -> str:
    unit = q.get("unit") or q.get("code") or ""
    return f"{q.get('comparator', '')}{q.get('value')} {unit}".strip()
