"""Bad requests → 422 with the JSONPath of each field (ASCMI.md §1 conventions); nothing is stored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.confidential_http.support import REQUESTS, example, expressions, issues, total

Edit = Callable[[dict[str, Any]], None]
TOMORROW = (datetime.now(ZoneInfo("America/Los_Angeles")).date() + timedelta(days=1)).isoformat()


def _set(path: list[str | int], value: Any) -> Edit:
    def edit(body: dict[str, Any]) -> None:
        node: Any = body
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def _drop(path: list[str]) -> Edit:
    def edit(body: dict[str, Any]) -> None:
        node: Any = body
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return edit


CASES: list[tuple[str, Edit, str, str]] = [
    ("no designated contact", _drop(["designated"]), "$.designated", "required"),
    ("an empty designated contact", _set(["designated"], {}), "$.designated", "required"),
    ("a designated email that is not one", _set(["designated", "email"], "not-an-email"), "$.designated.email",
     "value"),
    ("an address without a city", _set(["designated", "address"], {"line": ["1 A St"], "state": "CA",
                                                                    "postalCode": "95501"}),
     "$.designated.address.city", "required"),
    ("a channel that is not one of the three", _set(["receivedVia"], "fax"), "$.receivedVia", "value"),
    ("an unknown scope", _set(["scope"], "some"), "$.scope", "value"),
    ("received after today", _set(["receivedDate"], TOMORROW), "$.receivedDate", "business-rule"),
    ("not a date", _set(["receivedDate"], "04/12/2026"), "$.receivedDate", "value"),
    ("ends before it was received", _set(["ends"], "2026-11-01"), "$.ends", "business-rule"),
    ("no birth date", _drop(["individual", "birthDate"]), "$.individual.birthDate", "required"),
    ("a Care Partner type outside care-partner-type", _set(["receivedBy", "type"], "insurer"),
     "$.receivedBy.type", "code-invalid"),
    ("no requestId", _drop(["requestId"]), "$.requestId", "required"),
    ("an unknown field", _set(["subscriber"], "Dad"), "$.subscriber", "structure"),
]


@pytest.mark.parametrize(("what", "edit", "where", "code"), CASES, ids=[c[0] for c in CASES])
async def test_a_bad_request_is_422_at_the_field_and_stores_nothing(client: httpx.AsyncClient, what: str, edit: Edit,
                                                                   where: str, code: str) -> None:
    body = example("mail")
    edit(body)
    before = await total(client)
    response = await client.post(REQUESTS, json=body)
    assert response.status_code == 422, response.text
    assert where in expressions(response)
    assert code in {i["code"] for i in issues(response) if where in i.get("expression", [])}
    assert await total(client) == before


async def test_a_body_that_is_not_an_object_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(REQUESTS, json=["x"])
    assert response.status_code == 422
    assert expressions(response) == {"$"}


async def test_every_problem_is_reported_at_once(client: httpx.AsyncClient) -> None:
    body = example("mail")
    body["receivedVia"], body["designated"] = "pigeon", {}
    del body["individual"]["familyName"]
    response = await client.post(REQUESTS, json=body)
    assert {"$.receivedVia", "$.designated", "$.individual.familyName"} <= expressions(response)
