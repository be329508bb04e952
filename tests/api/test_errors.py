"""Client errors become 4xx OperationOutcomes (status and issue code), with a FHIRPath expression where one applies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.support import assert_outcome, create, patient

JSON = {"Content-Type": "application/fhir+json"}

# (method, path, body bytes, extra headers, status, issue code, expression or None)
WRITE_ERRORS: list[tuple[str, str, bytes, dict[str, str], int, str, str | None]] = [
    ("POST", "/fhir/Patient", b'{"resourceType": "Patient",', {}, 400, "structure", None),
    ("POST", "/fhir/Patient", b"\xff\xfe{}", {}, 400, "structure", None),
    ("POST", "/fhir/Patient", b"", {}, 400, "required", None),
    ("POST", "/fhir/Patient", b"   ", {}, 400, "required", None),
    ("POST", "/fhir/Patient", b"[]", {}, 400, "structure", None),
    ("POST", "/fhir/Patient", b'"Patient"', {}, 400, "structure", None),
    ("POST", "/fhir/Patient", b"{}", {}, 400, "invalid", "resourceType"),
    ("POST", "/fhir/Patient", b'{"resourceType": "Observation"}', {}, 400, "invalid", "resourceType"),
    ("POST", "/fhir/Patient", b'{"resourceType": "Patient", "colour": "blue"}', {}, 400, "structure",
     "Patient.colour"),
    ("POST", "/fhir/Patient", b'{"resourceType": "Patient", "birthDate": "2021-02-30"}', {}, 400, "value",
     "Patient.birthDate"),
    ("POST", "/fhir/Patient", b'{"resourceType": "Patient", "name": [{"given": "Ann"}]}', {}, 400, "value",
     "Patient.name[0].given"),
    ("POST", "/fhir/Observation", b'{"resourceType": "Observation", "code": {"text": "x"}}', {}, 400,
     "required", "Observation.status"),
    ("POST", "/fhir/SubstancePolymer", b'{"resourceType": "SubstancePolymer", "class": {"text": 5}}', {}, 400,
     "value", "SubstancePolymer.class.text"),
    ("POST", "/fhir/Patient", b'<Patient xmlns="http://hl7.org/fhir"/>', {"Content-Type": "application/fhir+xml"},
     415, "not-supported", None),
    ("POST", "/fhir/Patient", b'{"resourceType": "Patient"}', {"Content-Type": "text/plain"}, 415,
     "not-supported", None),
    ("POST", "/fhir/Frobnicator", b'{"resourceType": "Frobnicator"}', {}, 404, "not-supported", None),
    ("POST", "/fhir/Resource", b'{"resourceType": "Resource"}', {}, 404, "not-supported", None),
    ("PUT", "/fhir/Patient/p1", b'{"resourceType": "Patient", "id": "p2"}', {}, 400, "invalid", "Patient.id"),
    ("PUT", "/fhir/Patient/p1", b'{"resourceType": "Patient"}', {}, 400, "required", "Patient.id"),
    ("PUT", "/fhir/Patient/p1", b'{"resourceType": "Observation", "id": "p1"}', {}, 400, "invalid",
     "resourceType"),
    ("PUT", "/fhir/Patient/bad_id!", b'{"resourceType": "Patient", "id": "bad_id!"}', {}, 400, "invalid",
     "Patient.id"),
    ("PUT", f"/fhir/Patient/{'x' * 65}", b'{"resourceType": "Patient"}', {}, 400, "invalid", "Patient.id"),
    ("PUT", "/fhir/Frobnicator/1", b'{"resourceType": "Frobnicator", "id": "1"}', {}, 404, "not-supported",
     None),
    ("PUT", "/fhir/Patient/p1", b'{"resourceType": "Patient", "id": "p1"}', {"If-Match": "version one"}, 400,
     "invalid", "If-Match"),
    ("PUT", "/fhir/Patient/p1/_history/1", b'{"resourceType": "Patient"}', {}, 405, "not-supported", None),
    ("POST", "/fhir/Patient/p1", b'{"resourceType": "Patient"}', {}, 405, "not-supported", None),
    ("DELETE", "/fhir/metadata/x/y/z", b"", {}, 404, "not-found", None),
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "code", "expression"), WRITE_ERRORS)
async def test_bad_write_returns_operation_outcome(client: httpx.AsyncClient, method: str, path: str, body: bytes,
                                                   headers: dict[str, str], status: int, code: str,
                                                   expression: str | None) -> None:
    response = await client.request(method, path, content=body, headers={**JSON, **headers})
    issue = assert_outcome(response, status, code)
    if expression is not None:
        assert expression in issue.get("expression", []), issue
    assert response.headers["content-type"].startswith("application/fhir+json")


READ_ERRORS = [
    ("/fhir/Patient/nope", 404, "not-found"),
    ("/fhir/Frobnicator/1", 404, "not-supported"),
    ("/fhir/Patient/nope/_history/1", 404, "not-found"),
    ("/fhir/Patient/nope/_history", 404, "not-found"),
    ("/fhir/Frobnicator/_history", 404, "not-supported"),
    ("/fhir/Patient/nope/_history/one", 404, "not-found"),
    ("/fhir/nothing/here/at/all/really", 404, "not-found"),
    ("/elsewhere", 404, "not-found"),
    ("/fhir/_history?_since=yesterday", 400, "invalid"),
    ("/fhir/_history?_at=2020-13-01", 400, "invalid"),
    ("/fhir/_history?_count=-1", 400, "invalid"),
    ("/fhir/_history?_count=ten", 400, "invalid"),
    ("/fhir/_history?_cursor=abc", 400, "invalid"),
    ("/fhir/Patient/x?_summary=maybe", 400, "invalid"),
]


@pytest.mark.parametrize(("path", "status", "code"), READ_ERRORS)
async def test_bad_read_returns_operation_outcome(client: httpx.AsyncClient, path: str, status: int,
                                                  code: str) -> None:
    if "?_summary" in path:
        await client.put("/fhir/Patient/x", json=patient(id="x"))
    assert_outcome(await client.get(path), status, code)


# Inputs that used to escape as 500s (each one a regression test for a fixed bug).
NO_500_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/fhir/Patient/x/_history/%C2%B2", {}),  # "²".isdigit() but int("²") fails
    ("GET", "/fhir/Patient/x/_history/99999999999999999999999999", {}),  # beyond SQLite INTEGER
    ("GET", "/fhir/_history?_count=%C2%B2", {}),
    ("GET", "/fhir/_history?_cursor=99999999999999999999999999", {}),
    ("GET", "/fhir/_history?_cursor=%C2%B2", {}),
    ("GET", "/fhir/_history?_since=9999-12-31T23:59:59-14:00", {}),  # overflows when moved to UTC
    ("GET", "/fhir/_history?_at=0001-01-01T00:00:00%2B14:00", {}),
    ("PUT", "/fhir/Patient/x", {"json": patient(id="x"), "headers": {"If-Match": b'W/"\xb2"'}}),
    ("DELETE", "/fhir/Patient/x", {"headers": {"If-Match": b'W/"\xb2"'}}),
    ("POST", "/fhir/Patient", {"json": patient(contained=[{"resourceType": "Frobnicator"}])}),
    ("POST", "/fhir/Bundle", {"json": {"resourceType": "Bundle", "type": "collection",
                                       "entry": [{"resource": {"resourceType": "Frobnicator"}}]}}),
    ("POST", "/fhir/SubstancePolymer", {"content": b'{"resourceType":"SubstancePolymer","class":{"text":"\\ud800"}}'}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), NO_500_REQUESTS)
async def test_hostile_input_is_a_client_error_not_a_500(client: httpx.AsyncClient, method: str, path: str,
                                                         kwargs: dict[str, Any]) -> None:
    response = await client.request(method, path, **kwargs)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_invalid_resource_reports_every_problem_with_an_expression(client: httpx.AsyncClient) -> None:
    response = await client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": 1, "active": []})
    assert_outcome(response, 400, "value")
    issues = response.json()["issue"]
    assert {e for i in issues for e in i["expression"]} >= {"Patient.gender", "Patient.active"}


async def test_reference_to_a_missing_resource_is_rejected(client: httpx.AsyncClient) -> None:
    sent = patient(managingOrganization={"reference": "Organization/missing"})
    issue = assert_outcome(await client.post("/fhir/Patient", json=sent), 400, "not-found")
    assert issue["expression"] == ["Patient.managingOrganization.reference"]


async def test_reference_to_a_deleted_resource_is_a_conflict(client: httpx.AsyncClient) -> None:
    org = await create(client, {"resourceType": "Organization", "name": "Acme"})
    await client.delete(f"/fhir/Organization/{org['id']}")
    sent = patient(managingOrganization={"reference": f"Organization/{org['id']}"})
    assert_outcome(await client.post("/fhir/Patient", json=sent), 409, "not-found")


@pytest.mark.parametrize("sent", [
    patient(active="true"), patient(active=1), patient(multipleBirthInteger="3"), patient(gender="sometimes"),
    patient(birthDate="2021-02-30"),
    patient(multipleBirthInteger=2**31),
])
async def test_wrong_json_types_and_codes_are_rejected(client: httpx.AsyncClient, sent: dict[str, Any]) -> None:
    response = await client.post("/fhir/Patient", json=sent)
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"][0].startswith("Patient.")
