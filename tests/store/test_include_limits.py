"""_include/_revinclude stop at the server's limits — and then say so (a warning), on both stores."""

from __future__ import annotations

import pytest

from fhir_server.fhir.search.api import parse_search
from fhir_server.store.base import Store
from tests.store.support import put_all


def _observation(i: int) -> dict:  # type: ignore[type-arg]
    return {"resourceType": "Observation", "id": f"o{i}", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/p1"}}


async def test_revinclude_past_the_limit_is_cut_with_a_warning(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fhir_server.store.sqlite.includes.MAX_INCLUDES", 3)
    monkeypatch.setattr("fhir_server.store.mongo.search.MAX_INCLUDES", 3)
    await put_all(store, [{"resourceType": "Patient", "id": "p1"}, *[_observation(i) for i in range(5)]])
    page = await store.search(parse_search("Patient", [("_id", "p1"), ("_revinclude", "Observation:subject")],
                                           strict=True))
    assert len(page.includes) == 3
    assert [w.code for w in page.warnings] == ["too-costly"]


async def test_revinclude_within_the_limit_has_no_warning(store: Store) -> None:
    await put_all(store, [{"resourceType": "Patient", "id": "p1"}, *[_observation(i) for i in range(2)]])
    page = await store.search(parse_search("Patient", [("_id", "p1"), ("_revinclude", "Observation:subject")],
                                           strict=True))
    assert len(page.includes) == 2 and page.warnings == []
