"""Write-time extraction: resource JSON → :class:`IndexRows`, one small function per FHIR datatype.

Each parameter's expression is compiled once (:func:`.fhirpath.compile_path`); its results are routed by
parameter type to an extractor that knows the datatypes the spec allows there (token: code, boolean,
Coding, CodeableConcept, Identifier, ContactPoint; date: date/dateTime/instant, Period, Timing; ...).
The element's FHIR type comes from the choice suffix (``valueQuantity``), else from the definitions when the
expression yields one type, else from the JSON shape.

>>> rows = extract_rows({"resourceType": "Patient", "gender": "female", "birthDate": "1970"})
>>> ("gender", "http://hl7.org/fhir/administrative-gender", "female", None) in rows.token
True
>>> ("birthdate", "1970-01-01T00:00:00.000Z", "1970-12-31T23:59:59.999Z") in rows.date
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir_server.fhir.search.definitions import RESOURCE_COLUMNS, SearchParam, params_for
from fhir_server.fhir.search.fhirpath import Evaluator, Item, compile_path, evaluate_from, memo_scope, top_fields
from fhir_server.fhir.search.index import IndexRows
from fhir_server.fhir.search.normalize import (
    MAX_INSTANT,
    MIN_INSTANT,
    date_bounds,
    fold,
    number_bounds,
    split_reference,
    to_decimal,
)

MAX_STRING = 255  # folded strings are truncated: prefix and :contains searches beyond this are not supported

Sink = list[tuple[Any, ...]]  # typed rows without the parameter code
Extractor = Callable[[Sink, Any, str | None], None]

_HUMAN_NAME = ("family", "given", "text", "prefix", "suffix")
_ADDRESS = ("line", "city", "district", "state", "postalCode", "country", "text")


def _strings(sink: Sink, value: Any, hint: str | None) -> None:
    if isinstance(value, str):
        sink.append((fold(value)[:MAX_STRING], value))
        return
    if not isinstance(value, dict):
        return
    keys = _HUMAN_NAME if hint == "HumanName" or "family" in value or "given" in value else _ADDRESS
    for key in keys:
        v = value.get(key)
        for s in v if isinstance(v, list) else [v]:
            if isinstance(s, str):
                sink.append((fold(s)[:MAX_STRING], s))


def _text(value: Any) -> str | None:
    return fold(value)[:MAX_STRING] if isinstance(value, str) else None


def _tokens(sink: Sink, value: Any, hint: str | None) -> None:
    if isinstance(value, bool):
        sink.append((None, "true" if value else "false", None))
    elif isinstance(value, str):
        sink.append((None, value, None))
    elif not isinstance(value, dict):
        return
    elif hint == "ContactPoint" or (hint is None and "value" in value and "use" in value):
        if isinstance(value.get("value"), str):
            sink.append((value.get("system"), value["value"], None))
    elif "coding" in value or hint == "CodeableConcept" or (hint is None and "text" in value):
        for coding in value.get("coding", ()):
            _coding(sink, coding)
        if isinstance(value.get("text"), str):
            sink.append((None, None, _text(value["text"])))
    elif "value" in value:  # Identifier
        type_text = value.get("type", {}).get("text") if isinstance(value.get("type"), dict) else None
        sink.append((value.get("system"), value.get("value"), _text(type_text)))
    else:
        _coding(sink, value)


def _coding(sink: Sink, coding: Any) -> None:
    if isinstance(coding, dict) and (coding.get("code") is not None or coding.get("display") is not None):
        sink.append((coding.get("system"), coding.get("code"), _text(coding.get("display"))))


def _dates(sink: Sink, value: Any, hint: str | None) -> None:
    if isinstance(value, str):
        bounds = date_bounds(value)
        if bounds:
            sink.append(bounds)
    elif isinstance(value, dict):
        if "start" in value or "end" in value:  # Period: an open end is unbounded
            start = date_bounds(value["start"]) if isinstance(value.get("start"), str) else None
            end = date_bounds(value["end"]) if isinstance(value.get("end"), str) else None
            if start or end:
                sink.append((start[0] if start else MIN_INSTANT, end[1] if end else MAX_INSTANT))
        else:  # Timing: events, and the repeat's bounds
            for event in value.get("event", ()):
                _dates(sink, event, None)
            bounds = value.get("repeat", {}).get("boundsPeriod") if isinstance(value.get("repeat"), dict) else None
            if bounds:
                _dates(sink, bounds, "Period")


def _numbers(sink: Sink, value: Any, hint: str | None) -> None:
    d = to_decimal(value)
    if d is not None:
        sink.append(number_bounds(d))


def _quantities(sink: Sink, value: Any, hint: str | None) -> None:
    if not isinstance(value, dict):
        return
    if "low" in value or "high" in value:  # Range
        low, high = value.get("low") or {}, value.get("high") or {}
        lo, hi = to_decimal(low.get("value")), to_decimal(high.get("value"))
        unit = low if lo is not None else high
        sink.append((unit.get("system"), unit.get("code"), unit.get("unit"),
                     float(lo) if lo is not None else float("-inf"),
                     float(hi) if hi is not None else float("inf")))
        return
    d = to_decimal(value.get("value"))
    if d is None:
        return
    code = value.get("code", value.get("currency"))  # Money: the currency is the code
    sink.append((value.get("system"), code, value.get("unit"), *number_bounds(d)))


def _references(sink: Sink, value: Any, hint: str | None) -> None:
    if isinstance(value, str):  # canonical / uri
        sink.append(split_reference(value))
    elif isinstance(value, dict) and isinstance(value.get("reference"), str):
        rtype, rid, url = split_reference(value["reference"])
        if rtype or url:
            sink.append((rtype, rid, url))


def _uris(sink: Sink, value: Any, hint: str | None) -> None:
    if isinstance(value, str):
        sink.append((value,))


EXTRACTORS: dict[str, Extractor] = {
    "string": _strings,
    "token": _tokens,
    "date": _dates,
    "number": _numbers,
    "quantity": _quantities,
    "reference": _references,
    "uri": _uris,
}


@dataclass(frozen=True, slots=True)
class _Plan:
    param: SearchParam
    evaluate: Evaluator
    extractor: Extractor | None
    hint: str | None
    needs: frozenset[str] | None  # top-level elements the expression starts from (None: always evaluate)


@cache
def _plans(resource_type: str) -> tuple[_Plan, ...]:
    plans = []
    for p in params_for(resource_type).values():
        if p.code in RESOURCE_COLUMNS:
            continue
        hint = p.datatypes[0] if len(p.datatypes) == 1 else None
        plans.append(_Plan(p, compile_path(p.expression), EXTRACTORS.get(p.type), hint, top_fields(p.expression)))
    return tuple(plans)


def _identifiers(rows: IndexRows, code: str, items: list[Item]) -> None:
    for value, _ in items:
        ident = value.get("identifier") if isinstance(value, dict) else None
        if isinstance(ident, dict) and ident.get("value") is not None:
            rows.token.append((f"{code}:identifier", ident.get("system"), ident["value"], None))


Memo = dict[tuple[int, str, str], Sink]


def _composite(rows: IndexRows, resource: dict[str, Any], plan: _Plan, context: list[Item], group: int,
               memo: Memo) -> int:
    """One group per context element whose every component has a value; ``memo`` shares component rows
    between composites of one resource (Observation's ``code`` is a component of eight of them)."""
    components = [params_for(resource["resourceType"]).get(c.param) for c in plan.param.component]
    for item in context:
        found: list[tuple[str, int, int, str, tuple[Any, ...]]] = []
        for position, (comp, spec) in enumerate(zip(components, plan.param.component, strict=True)):
            if comp is None or comp.type not in EXTRACTORS:
                break
            key = (id(item[0]), spec.expression, comp.type)
            sink = memo.get(key)  # type: ignore[assignment]
            if sink is None:
                if spec.expression.startswith("%resource."):
                    values = compile_path(spec.expression.removeprefix("%resource."), relative=True)(resource)
                else:
                    values = evaluate_from([item], spec.expression)
                sink = []
                for value, h in values:
                    EXTRACTORS[comp.type](sink, value, h)
                sink = memo[key] = list(dict.fromkeys(sink))
            if not sink:  # a composite matches only when every component has a value
                break
            found += [(plan.param.code, group, position, comp.type, row) for row in sink]
        else:
            rows.composite += found
            group += 1
    return group


def extract_rows(resource: dict[str, Any]) -> IndexRows:
    """Evaluate every search parameter of the resource's type; unknown types index nothing."""
    with memo_scope():
        return _extract_rows(resource)


def _extract_rows(resource: dict[str, Any]) -> IndexRows:
    rows = IndexRows()
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        return rows
    group = 0
    memo: Memo = {}
    for plan in _plans(rtype):
        if plan.needs is not None and plan.needs.isdisjoint(resource):
            continue  # none of the elements the expression starts from is present
        items = plan.evaluate(resource)
        if not items:
            continue
        ptype = plan.param.type
        if ptype == "composite":
            group = _composite(rows, resource, plan, items, group, memo)
            continue
        if plan.extractor is None:
            continue
        sink: Sink = []
        for value, hint in items:
            plan.extractor(sink, value, hint or plan.hint)
        if plan.param.system is not None:  # a code element: its bound system, as a Coding would carry it
            sink = [(plan.param.system, *row[1:]) if row[0] is None else row for row in sink]
        if sink:
            code = plan.param.code
            target: list[Any] = getattr(rows, ptype)
            target += [(code, *row) for row in dict.fromkeys(sink)]
        if ptype == "reference":
            _identifiers(rows, plan.param.code, items)
    return rows
