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
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ..outcome import Issue
from .questionnaire_answers import check_answer, extension, value_of
from .terminology import Expansion, expand

QuestionnaireLookup = Callable[[str], Mapping[str, Any] | None]
ExpansionLookup = Callable[[str], Expansion | None]

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le,
}
MAX_OCCURS = "http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs"
MIN_OCCURS = "http://hl7.org/fhir/StructureDefinition/questionnaire-minOccurs"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    for i, item in enumerate(_list(value)):
        if isinstance(item, dict):
            yield i, item


class _Run:
    """One response check: the form, the issues, and how to find value sets."""

    def __init__(self, questionnaire: Mapping[str, Any], expansions: ExpansionLookup, not_completed: bool) -> None:
        self.q = questionnaire
        self.expansions = expansions
        self.not_completed = not_completed
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
        # example.org forms are only a hint (they are never meant to resolve), as the Java validator has it
        severity = "information" if ref.startswith(("http://example.org", "https://example.org")) else "warning"
        return [Issue(severity, "required", f"The questionnaire '{ref}' could not be resolved, so no validation "
                      "can be performed against the base questionnaire", (f"{path}.questionnaire",))]
    # only a completed (or amended) response must hold every required answer
    run = _Run(questionnaire, expansions, qr.get("status") not in ("completed", "amended"))
    _items(run, _list(questionnaire.get("item")), qr, path, [qr])
    return run.issues


# -- the walk ---------------------------------------------------------------------------------------------


def _items(
    run: _Run, q_items: list[Any], parent: Mapping[str, Any], path: str, ancestors: list[Mapping[str, Any]]
) -> None:
    """The response items under ``parent`` (the response, an item or an answer) against ``q_items``."""
    order = {item.get("linkId"): i for i, item in reversed(list(_dicts(q_items)))}
    grouped: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    last = -1
    for i, item in _dicts(parent.get("item")):
        link = item.get("linkId")
        if not isinstance(link, str) or not link:
            run.add("error", "required", "No LinkId, so can't be validated", path)
            continue
        index = order.get(link)
        if index is None:
            elsewhere = run.by_link.get(link)
            if elsewhere is None:
                run.add("error", "not-found", f"LinkId '{link}' not found in questionnaire", path)
            else:
                run.add("error", "structure", f"Structural Error: item with linkid {link} is in the wrong place",
                        path)
                _item(run, elsewhere, item, f"{path}.item[{i}]", [*ancestors, item])
            continue
        if index < last:
            run.add("error", "structure", "Structural Error: items are out of order", path)
        last = index
        grouped.setdefault(link, []).append((i, item))
    for _, q_item in _dicts(q_items):
        link = q_item.get("linkId")
        found = grouped.get(link) if isinstance(link, str) else None
        enabled = _enabled(run, q_item, ancestors)
        if found:
            if not enabled:
                for i, item in found:
                    if item.get("answer") or item.get("item"):
                        run.add("error", "invalid", f"Item has answer, even though it is not enabled (item id = "
                                f"'{link}')", f"{path}.item[{i}]")
            if len(found) > 1 and q_item.get("repeats") is not True:
                run.add("error", "invalid", f"Only one response item with this linkId allowed - '{link}'", path)
            for i, item in found:
                _item(run, q_item, item, f"{path}.item[{i}]", [*ancestors, item])
        elif enabled and q_item.get("required") is True:
            _missing(run, link, path)


def _missing(run: _Run, link: Any, path: str) -> None:
    message = f"No response answer found for required item with linkId '{link}'"
    run.add("warning" if run.not_completed else "error", "required", message, path)


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
        if run.not_completed or _enabled(run, q_item, ancestors):
            _missing(run, link, path)
    if len(answers) > 1 and q_item.get("repeats") is not True:
        run.add("error", "invalid", f"Only one answer allowed for item '{link}'", path)
    _occurs(run, q_item, len(answers), path)
    for i, answer in answers:
        where = f"{path}.answer[{i}]"
        if q_type == "group":
            run.add("error", "structure", f"Items of type group should not have answers (item '{link}')", path)
            continue
        if q_type == "display":
            run.add("error", "structure", f"Items of type display should not have answers (item '{link}')", path)
        else:
            check_answer(q_item, answer, where, run.add, run.expansion, len(answers))
        _items(run, _list(q_item.get("item")), answer, path, [*ancestors, answer])
    if q_type == "display":
        if item.get("item"):
            run.add("error", "structure", f"Items of type display should not have items (item '{link}')", path)
    elif q_type == "group":
        if q_item.get("required") is True and not item.get("item"):
            run.add("error", "invariant", f"The group '{link}' is required, so it must have items", path)
        _items(run, _list(q_item.get("item")), item, path, ancestors)
    elif item.get("item"):
        run.add("error", "structure", f"Items not of type group should not have items outside answers (use "
                f"answer.item instead) (item '{link}')", path)


def _occurs(run: _Run, q_item: Mapping[str, Any], count: int, path: str) -> None:
    """questionnaire-maxOccurs / -minOccurs: how many answers a repeating question takes."""
    most, least = extension(q_item, MAX_OCCURS), extension(q_item, MIN_OCCURS)
    if isinstance(most, int) and most >= 0 and count > most:
        run.add("error", "invalid", f"{count} answers were given, but at most {most} are allowed", path)
    if isinstance(least, int) and least >= 0 and count < least:
        run.add("error", "invalid", f"{count} answers were given, but at least {least} are required", path)


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
    expected = value_of(cond, "answer")
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
                 if (v := value_of(a)) is not None]
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
        # as the Java evaluator: a system in the condition must be the answer's; codes must both be there (or not)
        same = a.get("code") == e.get("code") and (not e.get("system") or a.get("system") == e.get("system"))
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
    if isinstance(value, Decimal):
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
