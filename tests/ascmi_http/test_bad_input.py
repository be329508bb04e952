"""Bad intake requests: 422 with the JSONPath of each offending field, 400/415 for bodies that are not JSON
forms, and nothing stored in any case (ASCMI.md §1). One server per test; each loop checks many requests."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from fhir_server.ascmi.jsonpath import jsonpath
from tests.ascmi_http.support import example, expressions, issues, post_form, total

SCHEMAS = Path(__file__).resolve().parents[2] / "profiles"
#: Examples that together carry every optional object (representative, attachment, minor, intermediaries…).
COVERING_FORMS = ("conservatorship", "with-attachment", "minor-15", "intermediary-hie", "named-include-exclude")


def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


DEFS = _schema("ascmi-form.schema.json")["$defs"]  # the revocation schema refers to these too


def required_paths(node: dict[str, Any], instance: Any,
                   path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The path of every required field present in ``instance``, from the JSON Schema's ``required`` lists."""
    while "$ref" in node:
        node = DEFS[node["$ref"].rsplit("/", 1)[1]]
    if isinstance(instance, dict):
        for name in node.get("required", []):
            if name in instance:
                yield (*path, name)
        for name, sub in node.get("properties", {}).items():
            if name in instance:
                yield from required_paths(sub, instance[name], (*path, name))
    elif isinstance(instance, list) and instance and "items" in node:
        yield from required_paths(node["items"], instance[0], (*path, 0))


def without(doc: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return out


def replaced(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


async def _check_422(client: httpx.AsyncClient, url: str, cases: list[tuple[dict[str, Any], str]]) -> None:
    before = await total(client)
    problems = []
    for doc, expected in cases:
        response = await client.post(url, json=doc)
        if response.status_code != 422 or expected not in expressions(response):
            problems.append((expected, response.status_code, response.text[:300]))
    assert problems == []
    assert await total(client) == before


async def test_every_required_form_field_missing_in_turn_is_422_at_its_path(client: httpx.AsyncClient) -> None:
    schema = _schema("ascmi-form.schema.json")
    cases = {}
    for name in COVERING_FORMS:
        form = example(name)
        for path in required_paths(schema, form):
            cases.setdefault(jsonpath(path), without(form, path))
    assert len(cases) > 30
    assert {"$.individual.birthDate", "$.signature.representative.authority", "$.attachment.data",
            "$.collector.identifiers[0].system", "$.minorSignature.categories"} <= set(cases)
    await _check_422(client, "/ascmi/forms", [(doc, path) for path, doc in cases.items()])


async def test_every_required_revocation_field_missing_in_turn_is_422_at_its_path(client: httpx.AsyncClient
                                                                                  ) -> None:
    schema = _schema("ascmi-revocation.schema.json")
    doc = example("revoke-by-form-id")
    cases = [(without(doc, p), jsonpath(p)) for p in required_paths(schema, doc)]
    assert len(cases) >= 10
    cases.append((replaced(doc, ("revokes",), {}), "$.revokes"))
    await _check_422(client, "/ascmi/revocations", cases)


async def test_wrong_types_are_422_at_their_path(client: httpx.AsyncClient) -> None:
    form = example("with-attachment")
    cases = [
        (replaced(form, ("signedDate",), 20250528), "$.signedDate"),
        (replaced(form, ("signedDate",), "28/05/2025"), "$.signedDate"),
        (replaced(form, ("individual",), "Grace"), "$.individual"),
        (replaced(form, ("individual", "birthDate"), None), "$.individual.birthDate"),
        (replaced(form, ("recipients", "allCarePartners"), "yes"), "$.recipients.allCarePartners"),
        (replaced(form, ("purposes",), "TREAT"), "$.purposes"),
        (replaced(form, ("categories",), ["general-health"]), "$.categories"),
        (replaced(form, ("categories", "hiv"), True), "$.categories.hiv"),
        (replaced(form, ("collector", "coveredEntity"), "true"), "$.collector.coveredEntity"),
        (replaced(form, ("acknowledgements", "rightToRevoke"), 1), "$.acknowledgements.rightToRevoke"),
        (replaced(form, ("formType",), "AB-133"), "$.formType"),
        (replaced(form, ("attachment", "data"), "not base64!"), "$.attachment.data"),
        (replaced(form, ("attachment", "contentType"), ["application/pdf"]), "$.attachment.contentType"),
    ]
    named = example("named-include-exclude")
    cases.append((replaced(named, ("recipients", "include", 0, "identifiers"), True),
                  "$.recipients.include[0].identifiers"))
    await _check_422(client, "/ascmi/forms", cases)


async def test_contradictory_forms_are_422_at_the_field(client: httpx.AsyncClient) -> None:
    form = example("with-attachment")  # NON-AB133, signed 2025-05-28
    ab133 = example("ab133-all-share")
    del ab133["individual"]["mediCalId"]
    cases = [
        (replaced(form, ("signedDate",), "2999-01-01"), "$.signedDate"),
        (replaced(form, ("signature", "date"), "2999-01-01"), "$.signature.date"),
        (replaced(form, ("expiration",), {"date": "2025-01-01"}), "$.expiration.date"),
        (replaced(form, ("expiration",), {}), "$.expiration"),
        (replaced(form, ("categories", "tattoos"), "share"), "$.categories.tattoos"),
        (replaced(form, ("purposes",), ["MARKETING"]), "$.purposes[0]"),
        (replaced(form, ("collector", "type"), "bank"), "$.collector.type"),
        (ab133, "$.individual.mediCalId"),
        (replaced(form, ("signature",), {"signer": "representative", "method": "wet", "date": "2025-05-28"}),
         "$.signature.representative"),
        (replaced(form, ("individual", "birthDate"), "2025-06-01"), "$.individual.birthDate"),
    ]
    await _check_422(client, "/ascmi/forms", cases)
    response = await client.post("/ascmi/forms", json=cases[4][0])
    assert issues(response)[0]["code"] == "code-invalid"


async def test_a_revocation_effective_after_the_day_it_is_received_is_422(client: httpx.AsyncClient) -> None:
    await post_form(client, example("ab133-all-share"))
    revocation = replaced(example("revoke-by-form-id"), ("effectiveDate",), "2999-01-01")
    await _check_422(client, "/ascmi/revocations", [(revocation, "$.effectiveDate")])


async def test_bodies_that_are_not_json_objects_are_400_or_415(client: httpx.AsyncClient) -> None:
    before = await total(client)
    cases = [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400),
        ({"content": b"", "headers": {"content-type": "application/json"}}, 400),
        ({"content": b"<form/>", "headers": {"content-type": "application/xml"}}, 415),
        ({"content": b"formType=AB133", "headers": {"content-type": "application/x-www-form-urlencoded"}}, 415),
        ({"content": json.dumps(example("share-nothing")).encode(), "headers": {"content-type": "text/plain"}}, 415),
    ]
    for url in ("/ascmi/forms", "/ascmi/revocations"):
        for kwargs, status in cases:
            response = await client.post(url, **kwargs)  # type: ignore[arg-type]
            assert response.status_code == status, (url, kwargs, response.text)
            assert response.json()["resourceType"] == "OperationOutcome"
    assert await total(client) == before


async def test_json_that_is_not_an_object_is_422_never_500(client: httpx.AsyncClient) -> None:
    before = await total(client)
    for url in ("/ascmi/forms", "/ascmi/revocations", "/ascmi/expiration-events"):
        for body in ([], "form", 42, None, {"revokes": "Consent/1"}, {"formType": {"$ne": 1}}):
            response = await client.post(url, content=json.dumps(body), headers={"content-type": "application/json"})
            assert response.status_code in (400, 422), (url, body, response.text)
            assert response.json()["resourceType"] == "OperationOutcome"
    assert await total(client) == before


def leaf_paths(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaf_paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from leaf_paths(value, (*path, i))


async def test_any_field_of_any_type_is_answered_without_a_500(client: httpx.AsyncClient) -> None:
    await post_form(client, example("ab133-all-share"))
    failures, accepted = [], []
    for name, url in (("named-include-exclude", "/ascmi/forms"), ("with-attachment", "/ascmi/forms"),
                      ("revoke-by-form-id", "/ascmi/revocations")):
        doc = example(name)
        for path in leaf_paths(doc):
            if path[-1:] == ("data",):
                continue
            for value in (None, -1, True, [], {"a": 1}):
                response = await client.post(url, json=replaced(doc, path, value) if path else value)
                if response.status_code == 201:
                    accepted.append((name, jsonpath(path), value))
                elif response.status_code not in (200, 400, 409, 422):  # 200: the same form, already on file
                    failures.append((name, path, value, response.status_code))
    assert failures == []
    assert all(value is True or value == [] for _, _, value in accepted), accepted  # booleans, optional lists
