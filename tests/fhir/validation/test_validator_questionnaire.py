"""QuestionnaireResponse against its Questionnaire (questionnaireresponse.html), and Questionnaire enableWhen rules.

Each case is a small form written from the R4 spec; the expected issues are what the spec's rules require (and the
severities the HL7 Java validator gives them).
"""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.fhir.outcome import Issue
from fhir_server.fhir.validation import DefinitionSource, Validator, check
from fhir_server.fhir.validation.questionnaire import check_questionnaire

VALIDATOR = Validator(DefinitionSource([
    {"resourceType": "CodeSystem", "url": "urn:cs:colour", "status": "active", "content": "complete",
     "concept": [{"code": "red"}, {"code": "blue"}]},
    {"resourceType": "ValueSet", "url": "urn:vs:colour", "status": "active",
     "compose": {"include": [{"system": "urn:cs:colour"}]}},
]))

FORM: dict[str, Any] = {
    "resourceType": "Questionnaire", "url": "urn:q:form", "version": "2", "status": "active",
    "item": [
        {"linkId": "smoker", "type": "boolean", "text": "Do you smoke?", "required": True},
        {"linkId": "per-day", "type": "integer", "text": "How many a day?", "required": True,
         "enableWhen": [{"question": "smoker", "operator": "=", "answerBoolean": True}]},
        {"linkId": "colour", "type": "choice", "answerValueSet": "urn:vs:colour"},
        {"linkId": "size", "type": "choice", "answerOption": [
            {"valueCoding": {"system": "urn:sizes", "code": "S"}},
            {"valueCoding": {"system": "urn:sizes", "code": "L"}}]},
        {"linkId": "pet", "type": "open-choice", "answerOption": [{"valueString": "cat"}, {"valueString": "dog"}]},
        {"linkId": "about", "type": "group", "item": [
            {"linkId": "about.name", "type": "string", "maxLength": 5, "required": True},
            {"linkId": "about.born", "type": "date"},
        ]},
        {"linkId": "note", "type": "display", "text": "Thank you"},
        {"linkId": "tags", "type": "string", "repeats": True},
    ],
}
HELD = {"urn:q:form": FORM, "urn:q:form|2": FORM}


ORDER = {item["linkId"]: n for n, item in enumerate(FORM["item"])}


def response(*items: dict[str, Any], status: str = "completed", questionnaire: str = "urn:q:form") -> dict[str, Any]:
    return {"resourceType": "QuestionnaireResponse", "questionnaire": questionnaire, "status": status,
            "item": list(items)}


def answered(*extra: dict[str, Any]) -> dict[str, Any]:
    """The base answers plus ``extra`` items, in the form's order."""
    items = sorted([*BASE_ITEMS, *extra], key=lambda item: ORDER.get(item["linkId"], 99))
    return response(*items)


BASE_ITEMS = (
    {"linkId": "smoker", "answer": [{"valueBoolean": False}]},
    {"linkId": "about", "item": [{"linkId": "about.name", "answer": [{"valueString": "Ana"}]}]},
)


def errors(resource: dict[str, Any]) -> list[Issue]:
    return [i for i in check.validate(VALIDATOR, resource, questionnaires=HELD.get)
            if i.severity in ("error", "fatal")]


def problems(resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i.expression[0], i.diagnostics) for i in errors(resource)]


def test_a_complete_answer_set_is_valid() -> None:
    assert errors(response(*BASE_ITEMS)) == []


def test_the_versioned_canonical_finds_the_form() -> None:
    qr = response({"linkId": "nope", "answer": [{"valueString": "x"}]}, *BASE_ITEMS, questionnaire="urn:q:form|2")
    assert [p for p, _ in problems(qr)] == ["QuestionnaireResponse"]  # reported on the parent, as Java does


def test_an_unknown_link_id_is_an_error() -> None:
    qr = response(*BASE_ITEMS, {"linkId": "3", "answer": [{"valueString": "x"}]})
    assert problems(qr) == [("QuestionnaireResponse", "LinkId '3' not found in questionnaire")]


def test_an_item_at_the_wrong_level_is_an_error() -> None:
    qr = response(*BASE_ITEMS, {"linkId": "about.born", "answer": [{"valueDate": "2000-01-01"}]})
    assert [d for _, d in problems(qr)] == ["Structural Error: item with linkid about.born is in the wrong place"]


def test_items_out_of_the_form_order_are_an_error() -> None:
    qr = response(BASE_ITEMS[1], BASE_ITEMS[0])
    assert [d for _, d in problems(qr)] == ["Structural Error: items are out of order"]


@pytest.mark.parametrize(("status", "severity"), [("completed", "error"), ("in-progress", "warning"),
                                                  ("amended", "error")])
def test_a_missing_required_answer_depends_on_the_status(status: str, severity: str) -> None:
    qr = response(BASE_ITEMS[1], status=status)
    found = [i for i in check.validate(VALIDATOR, qr, questionnaires=HELD.get) if "required item" in i.diagnostics]
    assert [(i.severity, i.expression) for i in found] == [(severity, ("QuestionnaireResponse",))]


def test_a_required_question_inside_a_group_is_required_when_the_group_is_present() -> None:
    qr = response(BASE_ITEMS[0], {"linkId": "about", "item": [
        {"linkId": "about.born", "answer": [{"valueDate": "2000-01-01"}]}]})
    assert problems(qr) == [("QuestionnaireResponse.item[1]",
                             "No response answer found for required item with linkId 'about.name'")]


def test_a_disabled_question_must_not_be_answered_and_is_not_required() -> None:
    answered = response(BASE_ITEMS[0], {"linkId": "per-day", "answer": [{"valueInteger": 3}]}, BASE_ITEMS[1])
    assert problems(answered) == [("QuestionnaireResponse.item[1]",
                                   "Item has answer, even though it is not enabled (item id = 'per-day')")]


def test_an_enabled_required_question_needs_its_answer() -> None:
    qr = response({"linkId": "smoker", "answer": [{"valueBoolean": True}]}, BASE_ITEMS[1])
    assert [d for _, d in problems(qr)] == ["No response answer found for required item with linkId 'per-day'"]
    qr["item"].insert(1, {"linkId": "per-day", "answer": [{"valueInteger": 10}]})
    assert errors(qr) == []


@pytest.mark.parametrize(("operator", "answer", "enabled"), [
    ("exists", {"answerBoolean": True}, True), ("exists", {"answerBoolean": False}, False),
    ("=", {"answerDate": "2000-01-01"}, True), ("!=", {"answerDate": "2000-01-01"}, False),
    (">", {"answerDate": "1999-12-31"}, True), ("<", {"answerDate": "1999-12-31"}, False),
    (">=", {"answerDate": "2000-01-01"}, True), ("<=", {"answerDate": "1999-01-01"}, False),
])
def test_enable_when_operators(operator: str, answer: dict[str, Any], enabled: bool) -> None:
    form = {"resourceType": "Questionnaire", "status": "active", "item": [
        {"linkId": "born", "type": "date"},
        {"linkId": "late", "type": "boolean", "required": True,
         "enableWhen": [{"question": "born", "operator": operator, **answer}]}]}
    qr = {"resourceType": "QuestionnaireResponse", "questionnaire": "urn:q:ops", "status": "completed",
          "item": [{"linkId": "born", "answer": [{"valueDate": "2000-01-01"}]}]}
    missing = [i for i in check.validate(VALIDATOR, qr, questionnaires={"urn:q:ops": form}.get)
               if i.severity == "error"]
    assert bool(missing) is enabled


@pytest.mark.parametrize(("behavior", "enabled"), [("any", True), ("all", False)])
def test_enable_behavior_combines_conditions(behavior: str, enabled: bool) -> None:
    form = {"resourceType": "Questionnaire", "status": "active", "item": [
        {"linkId": "a", "type": "boolean"}, {"linkId": "b", "type": "boolean"},
        {"linkId": "c", "type": "string", "required": True, "enableBehavior": behavior, "enableWhen": [
            {"question": "a", "operator": "=", "answerBoolean": True},
            {"question": "b", "operator": "=", "answerBoolean": True}]}]}
    qr = {"resourceType": "QuestionnaireResponse", "questionnaire": "urn:q:b", "status": "completed", "item": [
        {"linkId": "a", "answer": [{"valueBoolean": True}]}, {"linkId": "b", "answer": [{"valueBoolean": False}]}]}
    found = [i for i in check.validate(VALIDATOR, qr, questionnaires={"urn:q:b": form}.get) if i.severity == "error"]
    assert bool(found) is enabled


def test_the_answer_type_follows_the_item_type() -> None:
    qr = response({"linkId": "smoker", "answer": [{"valueString": "no"}]}, BASE_ITEMS[1])
    assert problems(qr) == [("QuestionnaireResponse.item[0].answer[0].value.ofType(string)",
                             "Answer value must be of the type boolean (found string)")]


def test_only_repeating_items_take_several_answers() -> None:
    qr = response(*BASE_ITEMS, {"linkId": "tags", "answer": [{"valueString": "a"}, {"valueString": "b"}]})
    assert errors(qr) == []
    qr = response({"linkId": "smoker", "answer": [{"valueBoolean": False}, {"valueBoolean": False}]}, BASE_ITEMS[1])
    assert problems(qr) == [("QuestionnaireResponse.item[0]", "Only one answer allowed for item 'smoker'")]


def test_a_choice_answer_must_be_an_answer_option() -> None:
    good = answered({"linkId": "size", "answer": [{"valueCoding": {"system": "urn:sizes", "code": "S"}}]})
    assert errors(good) == []
    bad = answered({"linkId": "size", "answer": [{"valueCoding": {"system": "urn:sizes", "code": "M"}}]})
    assert [d for _, d in problems(bad)] == ["The code urn:sizes#M was not found in the answer option list"]


def test_a_choice_answer_must_be_in_the_answer_value_set() -> None:
    good = answered({"linkId": "colour", "answer": [{"valueCoding": {"system": "urn:cs:colour",
                                                                                   "code": "red"}}]})
    assert errors(good) == []
    bad = answered({"linkId": "colour", "answer": [{"valueCoding": {"system": "urn:cs:colour",
                                                                                  "code": "green"}}]})
    assert any("not in the answer value set urn:vs:colour" in d for _, d in problems(bad))


def test_open_choice_takes_free_text_but_not_a_foreign_type() -> None:
    assert errors(answered({"linkId": "pet", "answer": [{"valueString": "parrot"}]})) == []
    qr = answered({"linkId": "pet", "answer": [{"valueBoolean": True}]})
    assert [d for _, d in problems(qr)] == [
        "Answer value must be of the types Coding, date, time, integer, string (found boolean)"]


def test_max_length_holds_for_answers() -> None:
    qr = response(BASE_ITEMS[0], {"linkId": "about", "item": [
        {"linkId": "about.name", "answer": [{"valueString": "Anastasia"}]}]})
    assert [p for p, _ in problems(qr)] == ["QuestionnaireResponse.item[1].item[0].answer[0].value.ofType(string)"]


def test_groups_take_no_answers_and_display_items_no_items() -> None:
    qr = response(BASE_ITEMS[0], {"linkId": "about", "answer": [{"valueString": "x"}],
                                  "item": [{"linkId": "about.name", "answer": [{"valueString": "Ana"}]}]})
    found = [d for _, d in problems(qr)]
    assert "Items of type group should not have answers (item 'about')" in found
    assert any("qrs-1" in d for d in found)  # and the item sits beneath both item and answer
    form = {"resourceType": "Questionnaire", "status": "active", "item": [{"linkId": "n", "type": "display"}]}
    qr = {"resourceType": "QuestionnaireResponse", "questionnaire": "urn:q:d", "status": "completed",
          "item": [{"linkId": "n", "item": [{"linkId": "m"}]}]}
    found = [d for d in (i.diagnostics for i in check.validate(VALIDATOR, qr, questionnaires={"urn:q:d": form}.get))
             if "display" in d]
    assert found == ["Items of type display should not have items (item 'n')"]


def test_item_text_must_match_the_question() -> None:
    qr = response({"linkId": "smoker", "text": "Do you drink?", "answer": [{"valueBoolean": False}]}, BASE_ITEMS[1])
    assert [p for p, _ in problems(qr)] == ["QuestionnaireResponse.item[0]"]


def test_an_unknown_questionnaire_is_a_warning_and_none_is_information() -> None:
    unknown = check.validate(VALIDATOR, response(questionnaire="urn:q:missing"), questionnaires=HELD.get)
    assert [(i.severity, i.expression) for i in unknown if "could not be resolved" in i.diagnostics] == [
        ("warning", ("QuestionnaireResponse.questionnaire",))]
    qr = response()
    del qr["questionnaire"]
    assert any(i.severity == "information" and "No questionnaire" in i.diagnostics
               for i in check.validate(VALIDATOR, qr))


def test_a_contained_questionnaire_is_used() -> None:
    qr = response({"linkId": "x", "answer": [{"valueString": "y"}]}, questionnaire="#form")
    qr["contained"] = [{**FORM, "id": "form", "item": [{"linkId": "x", "type": "integer"}]}]
    assert [d for _, d in problems(qr)] == ["Answer value must be of the type integer (found string)"]


def test_a_questionnaire_in_the_same_bundle_is_used() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:7c3b2a52-5d4a-4f7e-9f55-6d1c2c9a2b01", "resource": FORM},
        {"fullUrl": "urn:uuid:7c3b2a52-5d4a-4f7e-9f55-6d1c2c9a2b02", "resource": response(BASE_ITEMS[1])}]}
    found = [i for i in check.validate(VALIDATOR, bundle) if "required item" in i.diagnostics]
    assert [i.expression for i in found] == [("Bundle.entry[1].resource",)]


@pytest.mark.parametrize(("items", "message"), [
    ([{"linkId": "a", "type": "boolean", "enableWhen": [{"question": "a", "operator": "exists",
                                                          "answerBoolean": True}]}],
     "Questions with an enableWhen cannot refer to themselves"),
    ([{"linkId": "a", "type": "group", "enableWhen": [{"question": "a.1", "operator": "exists",
                                                        "answerBoolean": True}],
       "item": [{"linkId": "a.1", "type": "boolean"}]}],
     "Questions with an enableWhen cannot refer to an inner question for it's enableWhen condition"),
    ([{"linkId": "a", "type": "boolean", "enableWhen": [{"question": "zz", "operator": "exists",
                                                          "answerBoolean": True}]}],
     "Unable to find target 'zz' for enableWhen question 'a'"),
])
def test_questionnaire_enable_when_targets(items: list[dict[str, Any]], message: str) -> None:
    issues = check_questionnaire({"resourceType": "Questionnaire", "item": items}, "Questionnaire")
    assert [(i.severity, i.diagnostics) for i in issues] == [("error", message)]


def test_an_enable_when_on_a_later_question_is_a_warning() -> None:
    items = [{"linkId": "a", "type": "boolean", "enableWhen": [{"question": "b", "operator": "exists",
                                                                 "answerBoolean": True}]},
             {"linkId": "b", "type": "boolean"}]
    issues = check_questionnaire({"resourceType": "Questionnaire", "item": items}, "Questionnaire")
    assert [(i.severity, i.expression) for i in issues] == [("warning", ("Questionnaire.item[0]",))]


def test_duplicate_link_ids_break_que_2() -> None:
    q = {"resourceType": "Questionnaire", "status": "active",
         "item": [{"linkId": "a", "type": "boolean"}, {"linkId": "a", "type": "string"}]}
    assert any("que-2" in i.diagnostics for i in errors(q))


SD = "http://hl7.org/fhir/StructureDefinition/"


def one_item(item: dict[str, Any], *answers: dict[str, Any], status: str = "completed") -> list[str]:
    form = {"resourceType": "Questionnaire", "status": "active", "item": [{"linkId": "q", **item}]}
    qr = {"resourceType": "QuestionnaireResponse", "questionnaire": "urn:q:one", "status": status,
          "item": [{"linkId": "q", "answer": list(answers)}]}
    return [i.diagnostics for i in check.validate(VALIDATOR, qr, questionnaires={"urn:q:one": form}.get)
            if i.severity == "error"]


@pytest.mark.parametrize(("item", "answer", "count"), [
    ({"type": "integer", "extension": [{"url": SD + "minValue", "valueInteger": 20},
                                       {"url": SD + "maxValue", "valueInteger": 30}]}, {"valueInteger": 25}, 0),
    ({"type": "integer", "extension": [{"url": SD + "minValue", "valueInteger": 20}]}, {"valueInteger": 5}, 1),
    ({"type": "decimal", "extension": [{"url": SD + "maxValue", "valueDecimal": 2.5}]}, {"valueDecimal": 3.1}, 1),
    ({"type": "decimal", "extension": [{"url": SD + "maxDecimalPlaces", "valueInteger": 1}]},
     {"valueDecimal": 1.25}, 1),
    ({"type": "date", "extension": [{"url": SD + "minValue", "valueDate": "2000-01-01"}]},
     {"valueDate": "1999-12-31"}, 1),
    ({"type": "dateTime", "extension": [{"url": SD + "maxValue", "valueDateTime": "2000-01-01T00:00:00Z"}]},
     {"valueDateTime": "1999-12-31T10:00:00Z"}, 0),
    ({"type": "string", "extension": [{"url": SD + "minLength", "valueInteger": 3}], "maxLength": 5},
     {"valueString": "ab"}, 1),
    ({"type": "string", "extension": [{"url": SD + "regex", "valueString": "[0-9]+"}]}, {"valueString": "12a"}, 1),
    ({"type": "string", "answerOption": [{"valueString": "x"}]}, {"valueString": "y"}, 1),
    ({"type": "attachment", "extension": [{"url": SD + "mimeType", "valueCode": "image/"}]},
     {"valueAttachment": {"contentType": "text/plain"}}, 1),
    ({"type": "attachment", "extension": [{"url": SD + "maxSize", "valueDecimal": 2}]},
     {"valueAttachment": {"contentType": "text/plain", "data": "aGVsbG8="}}, 1),
    ({"type": "display"}, {"valueString": "x"}, 1),
])
def test_answer_limits_from_the_item_extensions(item: dict[str, Any], answer: dict[str, Any], count: int) -> None:
    assert len(one_item(item, answer)) == count, one_item(item, answer)


def test_max_occurs_limits_the_answers_of_a_repeating_question() -> None:
    item = {"type": "string", "repeats": True,
            "extension": [{"url": SD + "questionnaire-maxOccurs", "valueInteger": 2}]}
    assert one_item(item, {"valueString": "a"}, {"valueString": "b"}) == []
    assert len(one_item(item, {"valueString": "a"}, {"valueString": "b"}, {"valueString": "c"})) == 1


def test_an_exclusive_option_stands_alone() -> None:
    item = {"type": "choice", "repeats": True, "answerOption": [
        {"valueCoding": {"system": "urn:s", "code": "none"},
         "extension": [{"url": SD + "questionnaire-optionExclusive", "valueBoolean": True}]},
        {"valueCoding": {"system": "urn:s", "code": "a"}}]}
    assert one_item(item, {"valueCoding": {"system": "urn:s", "code": "none"}}) == []
    assert len(one_item(item, {"valueCoding": {"system": "urn:s", "code": "none"}},
                       {"valueCoding": {"system": "urn:s", "code": "a"}})) == 1


def test_a_required_group_needs_items() -> None:
    form = {"resourceType": "Questionnaire", "status": "active", "item": [
        {"linkId": "g", "type": "group", "required": True, "item": [{"linkId": "g.1", "type": "string"}]}]}
    qr = {"resourceType": "QuestionnaireResponse", "questionnaire": "urn:q:g", "status": "completed",
          "item": [{"linkId": "g"}]}
    found = [i for i in check.validate(VALIDATOR, qr, questionnaires={"urn:q:g": form}.get) if i.severity == "error"]
    assert [i.expression for i in found] == [("QuestionnaireResponse.item[0]",)]


QUE_CASES = {
    "que-1": [{"linkId": "g", "type": "group"}],
    "que-2": [{"linkId": "a", "type": "string"}, {"linkId": "a", "type": "string"}],
    "que-3": [{"linkId": "d", "type": "display", "code": [{"code": "x", "system": "urn:x"}]}],
    "que-4": [{"linkId": "c", "type": "choice", "answerValueSet": "urn:vs", "answerOption": [{"valueString": "a"}]}],
    "que-5": [{"linkId": "b", "type": "boolean", "answerValueSet": "urn:vs"}],
    "que-6": [{"linkId": "d", "type": "display", "required": True}],
    "que-7": [{"linkId": "a", "type": "string"}, {"linkId": "b", "type": "string", "enableWhen": [
        {"question": "a", "operator": "exists", "answerString": "x"}]}],
    "que-8": [{"linkId": "g", "type": "group", "initial": [{"valueString": "x"}],
               "item": [{"linkId": "x", "type": "string"}]}],
    "que-9": [{"linkId": "d", "type": "display", "readOnly": True}],
    "que-10": [{"linkId": "d", "type": "date", "maxLength": 3}],
    "que-11": [{"linkId": "c", "type": "choice", "answerOption": [{"valueString": "a"}],
                "initial": [{"valueString": "a"}]}],
    "que-13": [{"linkId": "s", "type": "string", "initial": [{"valueString": "a"}, {"valueString": "b"}]}],
}


@pytest.mark.parametrize("key", sorted(QUE_CASES))
def test_each_questionnaire_invariant_runs_and_fails_its_counter_example(key: str) -> None:
    q = {"resourceType": "Questionnaire", "status": "draft", "name": "Q", "item": QUE_CASES[key]}
    found = [i.diagnostics for i in errors(q)]
    assert [d for d in found if f"{key}:" in d], found
