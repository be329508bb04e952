"""A QuestionnaireResponse checked against its Questionnaire, and a Questionnaire's own item rules.

The profile walk only sees the QuestionnaireResponse's structure; whether its answers fit the form is a rule of
the Questionnaire it names (questionnaireresponse.html, "the response SHALL conform to the questionnaire"). The
checks follow what the HL7 Java validator does for R4, so an implementer gets the same verdict from both:

* each ``item.linkId`` must be an item of the Questionnaire at that level (elsewhere: "wrong place"), items keep
  the Questionnaire's order, ``text`` (when given) equals the question's text;
* a required, enabled question needs an answer when the response is completed (a warning while in-progress);
  an item whose ``enableWhen`` is false must not be answered;
* ``repeats = false``: one item per linkId and one answer per item;
* the answer's type follows the item type, a choice answer comes from ``answerOption`` / ``answerValueSet``
  (open-choice also takes free text), ``maxLength`` holds; groups have no answers, questions no sub-items
  beside their answers, display items no sub-items.

When the Questionnaire cannot be found the response is only checked structurally: a warning says so (no
``questionnaire`` at all is information), as the Java validator reports it. The caller resolves canonical urls
(the fhir layer does no I/O): ``questionnaires`` maps ``url`` and ``url|version`` to the Questionnaire; a
contained ``#id`` is found here.

>>> q = {"resourceType": "Questionnaire", "url": "urn:q", "item": [
...     {"linkId": "1", "type": "boolean", "required": True}]}
>>> qr = {"resourceType": "QuestionnaireResponse", "questionnaire": "urn:q", "status": "completed"}
>>> [i.diagnostics for i in check_response(qr, "QuestionnaireResponse", {"urn:q": q}.get)]
["No response answer found for required item with linkId '1'"]
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ..outcome import Issue
from .terminology import Expansion

QuestionnaireLookup = Callable[[str], Mapping[str, Any] | None]
ExpansionLookup = Callable[[str], Expansion | None]

# Questionnaire item type → the answer value[x] types it takes (R4, as the Java validator checks them)
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
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le,
}
_VALUE_KEY = re.compile(r"^value([A-Z][A-Za-z]*)$")
_ANSWER_KEY = re.compile(r"^answer([A-Z][A-Za-z]*)$")


def _lower_first(name: str) -> str:
    return name if name in ("Attachment", "Coding", "Quantity", "Reference") else name[:1].lower() + name[1:]


def _value(answer: Mapping[str, Any], pattern: re.Pattern[str] = _VALUE_KEY) -> tuple[str, Any] | None:
    """(type, value) of an answer's value[x], e.g. ("Coding", {...}); None when it has none."""
    for key, value in answer.items():
        m = pattern.match(key)
        if m:
            return _lower_first(m.group(1)), value
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    for i, item in enumerate(_list(value)):
        if isinstance(item, dict):
            yield i, item


class _Run:
    """One response check: the form, the issues, and how to find value sets."""

    def __init__(self, questionnaire: Mapping[str, Any], expansions: ExpansionLookup, in_progress: bool) -> None:
        self.q = questionnaire
        self.expansions = expansions
        self.in_progress = in_progress
        self.issues: list[Issue] = []
        self.by_link: dict[str, dict[str, Any]] = {}
        self._index(questionnaire.get("item"))

    def _index(self, items: Any) -> None:
        for _, item in _dicts(items):
            link = item.get("linkId")
            if isinstance(link, str):
                self.by_link.setdefault(link, item)
            self._index(item.get("item"))

    def add(self, severity: str, code: str, diagnostics: str, path: str) -> None:
        self.issues.append(Issue(severity, code, diagnostics, (path,)))

    def expansion(self, url: str) -> Expansion | None:
        if url.startswith("#"):
            for _, res in _dicts(self.q.get("contained")):
                if res.get("resourceType") == "ValueSet" and res.get("id") == url[1:]:
                    from .terminology import expand

                    return expand(res, lambda _u: None, lambda _u: None)
            return None
        return self.expansions(url)


def find_questionnaire(
    qr: Mapping[str, Any], lookup: QuestionnaireLookup
) -> tuple[str | None, Mapping[str, Any] | None]:
    """(the canonical the response names, the Questionnaire when it can be found)."""
    ref = qr.get("questionnaire")
    if not isinstance(ref, str) or not ref:
        return None, None
    if ref.startswith("#"):
        for _, res in _dicts(qr.get("contained")):
            if res.get("resourceType") == "Questionnaire" and res.get("id") == ref[1:]:
                return ref, res
        return ref, None
    return ref, lookup(ref)


def check_response(
    qr: Mapping[str, Any],
    path: str,
    lookup: QuestionnaireLookup,
    expansions: ExpansionLookup = lambda _url: None,
) -> list[Issue]:
    """Issues of a QuestionnaireResponse (at FHIRPath ``path``) against the Questionnaire it names."""
    ref, questionnaire = find_questionnaire(qr, lookup)
    if ref is None:
        return [Issue("information", "required", "No questionnaire is identified, so no validation can be "
                      "performed against the base questionnaire", (path,))]
    if questionnaire is None:
        return [Issue("warning", "required", f"The questionnaire '{ref}' could not be resolved, so no validation "
                      "can be performed against the base questionnaire", (f"{path}.questionnaire",))]
    run = _Run(questionnaire, expansions, qr.get("status") == "in-progress")
    _items(run, _list(questionnaire.get("item")), qr, path, [qr])
    return run.issues


# -- the walk ---------------------------------------------------------------------------------------------


def _items(
    run: _Run, q_items: list[Any], parent: Mapping[str, Any], path: str, ancestors: list[Mapping[str, Any]]
) -> None:
    """The response items under ``parent`` (the response, an item or an answer) against ``q_items``."""
    order = {item.get("linkId"): i for i, item in _dicts(q_items)}
    grouped: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    last = -1
    for i, item in _dicts(parent.get("item")):
        where = f"{path}.item[{i}]"
        link = item.get("linkId")
        if not isinstance(link, str) or not link:
            run.add("error", "required", "No LinkId, so can't be validated", where)
            continue
        index = order.get(link)
        if index is None:
            elsewhere = run.by_link.get(link)
            if elsewhere is None:
                run.add("error", "not-found", f"LinkId '{link}' not found in questionnaire", where)
            else:
                run.add("error", "structure", f"Structural Error: item '{link}' is in the wrong place", where)
                _item(run, elsewhere, item, where, [*ancestors, item])
            continue
        if index < last:
            run.add("error", "structure", "Structural Error: items are out of order", where)
        last = max(last, index)
        if item.get("answer") or item.get("item"):
            grouped.setdefault(link, []).append((i, item))
    for _, q_item in _dicts(q_items):
        link = q_item.get("linkId")
        found = grouped.get(link) if isinstance(link, str) else None
        enabled = _enabled(run, q_item, ancestors)
        if found:
            if not enabled:
                for i, _item_json in found:
                    run.add("error", "invalid", f"Item has answer, even though it is not enabled (item id = "
                            f"'{link}')", f"{path}.item[{i}]")
            if len(found) > 1 and q_item.get("repeats") is not True:
                run.add("error", "invalid", f"Only one response item with this linkId allowed - '{link}'",
                        f"{path}.item[{found[1][0]}]")
            for i, item in found:
                _item(run, q_item, item, f"{path}.item[{i}]", [*ancestors, item])
        elif enabled and q_item.get("required") is True:
            _missing(run, link, path)


def _missing(run: _Run, link: Any, path: str) -> None:
    message = f"No response answer found for required item with linkId '{link}'"
    run.add("warning" if run.in_progress else "error", "required", message, path)


def _item(
    run: _Run, q_item: Mapping[str, Any], item: Mapping[str, Any], path: str, ancestors: list[Mapping[str, Any]]
) -> None:
    link = q_item.get("linkId")
    text = item.get("text")
    if isinstance(text, str) and text and text != q_item.get("text"):
        run.add("error", "invalid", f"If text exists, it must match the questionnaire definition for linkId "
                f"'{link}'", path)
    q_type = q_item.get("type")
    answers = list(_dicts(item.get("answer")))
    if q_item.get("required") is True and not answers and q_type != "group":
        if run.in_progress:
            _missing(run, link, path)
        elif _enabled(run, q_item, ancestors[:-1]):
            _missing(run, link, path)
    if len(answers) > 1 and q_item.get("repeats") is not True:
        run.add("error", "invalid", f"Only one answer allowed for item '{link}'", f"{path}.answer[1]")
    for i, answer in answers:
        where = f"{path}.answer[{i}]"
        if q_type == "group":
            run.add("error", "structure", f"Items of type group should not have answers (item '{link}')", where)
        else:
            _answer(run, q_item, answer, where)
            _items(run, _list(q_item.get("item")), answer, where, [*ancestors, answer])
    if q_type == "display":
        if item.get("item"):
            run.add("error", "structure", f"Items of type display should not have items (item '{link}')", path)
    elif q_type == "group":
        _items(run, _list(q_item.get("item")), item, path, ancestors)
    elif item.get("item"):
        run.add("error", "structure", f"Items not of type group should not have items outside answers (use "
                f"answer.item instead) (item '{link}')", path)


def _answer(run: _Run, q_item: Mapping[str, Any], answer: Mapping[str, Any], path: str) -> None:
    q_type = q_item.get("type")
    allowed = ANSWER_TYPES.get(q_type) if isinstance(q_type, str) else None
    found = _value(answer)
    if allowed is None or found is None:
        return
    vtype, value = found
    where = f"{path}.value.ofType({vtype})"
    if vtype not in allowed:
        shown = ", ".join(allowed)
        run.add("error", "structure", f"Answer value must be of the type{'s' if len(allowed) > 1 else ''} "
                f"{shown}", where)
        return
    max_length = q_item.get("maxLength")
    if isinstance(max_length, int) and isinstance(value, str) and len(value) > max_length:
        run.add("error", "too-long", f"The answer is {len(value)} characters long, more than the maxLength "
                f"{max_length} of item '{q_item.get('linkId')}'", where)
    if q_type in ("choice", "open-choice"):
        _option(run, q_item, vtype, value, where, q_type == "open-choice")


def _option(run: _Run, q_item: Mapping[str, Any], vtype: str, value: Any, path: str, open_choice: bool) -> None:
    """A choice answer must be one of the item's options (an open-choice also takes other strings)."""
    options = [o for _, o in _dicts(q_item.get("answerOption"))]
    if vtype == "Coding":
        if not isinstance(value, dict):
            return
        if options:
            codings = [o["valueCoding"] for o in options if isinstance(o.get("valueCoding"), dict)]
            if not codings and not open_choice:
                run.add("error", "structure", "Option list has no option values of type coding", path)
            elif not any(c.get("system") == value.get("system") and c.get("code") == value.get("code")
                         for c in codings):
                run.add("warning" if open_choice else "error", "structure",
                        f"The code {value.get('system')}#{value.get('code')} was not found in the answer "
                        "option list", path)
        elif isinstance(q_item.get("answerValueSet"), str):
            _in_value_set(run, q_item["answerValueSet"], value, path, open_choice)
        return
    if not options:
        return
    key = "value" + vtype[:1].upper() + vtype[1:]
    listed = [o[key] for o in options if key in o]
    if vtype == "string" and open_choice:
        return
    if not listed:
        run.add("error", "structure", f"Option list has no option values of type {vtype}", path)
    elif value not in listed:
        run.add("error", "structure", f"The {vtype} {value} was not found in the answer option list", path)


def _in_value_set(run: _Run, url: str, coding: Mapping[str, Any], path: str, open_choice: bool) -> None:
    code, system = coding.get("code"), coding.get("system")
    if open_choice and not code and not system and coding.get("display"):
        return  # free text given as a display-only Coding
    expansion = run.expansion(url)
    if expansion is None:
        run.add("warning", "code-invalid", f"The value set {url} could not be found, so the answer was not "
                "checked", path)
        return
    if isinstance(code, str) and expansion.contains(system if isinstance(system, str) else None, code) is False:
        run.add("error", "code-invalid", f"The code {system}#{code} is not in the answer value set {url}", path)


# -- enableWhen -------------------------------------------------------------------------------------------


def _enabled(run: _Run, q_item: Mapping[str, Any], ancestors: list[Mapping[str, Any]]) -> bool:
    """enableWhen (R4): one condition decides alone; several combine by enableBehavior (none given: enabled,
    as the Java validator reads a form that lacks the required enableBehavior)."""
    conditions = [c for _, c in _dicts(q_item.get("enableWhen"))]
    if not conditions:
        return True
    results = [_condition(run, c, ancestors) for c in conditions]
    behavior = q_item.get("enableBehavior")
    if behavior == "any" or len(results) == 1:
        return any(results)
    if behavior == "all":
        return all(results)
    return True


def _condition(run: _Run, cond: Mapping[str, Any], ancestors: list[Mapping[str, Any]]) -> bool:
    question = cond.get("question")
    answers = _answers_to(question, ancestors) if isinstance(question, str) else []
    op = cond.get("operator")
    expected = _value(cond, _ANSWER_KEY)
    if op == "exists":
        want = expected[1] if expected is not None and expected[0] == "boolean" else True
        return bool(want) == bool(answers)
    if expected is None:
        return False
    return any(_compare(op, a, expected) for a in answers)


def _answers_to(link: str, ancestors: list[Mapping[str, Any]]) -> list[tuple[str, Any]]:
    """Answer values to ``link`` from the nearest enclosing part of the response that holds that item."""
    for node in reversed(ancestors):
        found = [v for item in _find_items(node, link) for _, a in _dicts(item.get("answer"))
                 if (v := _value(a)) is not None]
        if found:
            return found
    return []


def _find_items(node: Mapping[str, Any], link: str) -> Iterator[Mapping[str, Any]]:
    for _, item in _dicts(node.get("item")):
        if item.get("linkId") == link:
            yield item
        yield from _find_items(item, link)
        for _, answer in _dicts(item.get("answer")):
            yield from _find_items(answer, link)


def _compare(op: Any, actual: tuple[str, Any], expected: tuple[str, Any]) -> bool:
    atype, a = actual
    etype, e = expected
    if etype == "Coding" or atype == "Coding":
        if not (isinstance(a, dict) and isinstance(e, dict)):
            return False
        same = a.get("code") == e.get("code") and (
            not e.get("system") or not a.get("system") or a.get("system") == e.get("system"))
        return same if op == "=" else (not same) if op == "!=" else False
    if etype == "Quantity" or atype == "Quantity":
        a = a.get("value") if isinstance(a, dict) else None
        e = e.get("value") if isinstance(e, dict) else None
    if isinstance(a, dict) or isinstance(e, dict):
        same = a == e
        return same if op == "=" else (not same) if op == "!=" else False
    left, right = _comparable(a), _comparable(e)
    if left is None or right is None or type(left) is not type(right):
        return op == "!=" and a != e
    compare = _OPERATORS.get(op) if isinstance(op, str) else None
    try:
        return compare is not None and bool(compare(left, right))
    except TypeError:
        return False


def _comparable(value: Any) -> Decimal | str | bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    if isinstance(value, str):
        return value
    return None


# -- the Questionnaire's own rules ------------------------------------------------------------------------


def check_questionnaire(q: Mapping[str, Any], path: str) -> list[Issue]:
    """enableWhen targets (Java's R4 checks): the question must exist, not be the item itself nor inside it;
    one that comes later in the form is a warning (it cannot have been answered first)."""
    issues: list[Issue] = []
    order: dict[str, int] = {}
    items: dict[str, Mapping[str, Any]] = {}

    def index(nodes: Any) -> None:
        for _, item in _dicts(nodes):
            link = item.get("linkId")
            if isinstance(link, str) and link not in items:
                items[link] = item
                order[link] = len(order)
            index(item.get("item"))

    index(q.get("item"))

    def walk(nodes: Any, where: str) -> None:
        for i, item in _dicts(nodes):
            here = f"{where}.item[{i}]"
            for _, cond in _dicts(item.get("enableWhen")):
                target = cond.get("question")
                if not isinstance(target, str):
                    issues.append(Issue("error", "business-rule", "Questions with an enableWhen must have a "
                                        "value for the question link", (here,)))
                elif target == item.get("linkId"):
                    issues.append(Issue("error", "business-rule", "Questions with an enableWhen cannot refer to "
                                        "themselves", (here,)))
                elif any(t is items.get(target) for t in _descendants(item)):
                    issues.append(Issue("error", "business-rule", "Questions with an enableWhen cannot refer to "
                                        "an inner question for it's enableWhen condition", (here,)))
                elif target not in items:
                    issues.append(Issue("error", "business-rule", f"Unable to find target '{target}' for "
                                        f"enableWhen question '{item.get('linkId')}'", (here,)))
                elif order[target] > order.get(str(item.get("linkId")), -1):
                    issues.append(Issue("warning", "business-rule", f"The target of this enableWhen rule "
                                        f"({target}) comes after the question itself", (here,)))
            walk(item.get("item"), here)

    walk(q.get("item"), path)
    return issues


def _descendants(item: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for _, child in _dicts(item.get("item")):
        yield child
        yield from _descendants(child)
