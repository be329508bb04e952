"""Without `_total`, both stores give Bundle.total only when it is cheap; `_total=accurate` always counts."""

from __future__ import annotations

import pytest

from fhir_server.fhir.search.api import parse_search
from fhir_server.store.base import Store
from tests.store.support import put_all


@pytest.fixture
async def five(store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setattr("fhir_server.store.sqlite.search.PROBE", 3)
    monkeypatch.setattr("fhir_server.store.mongo.search.CHEAP_TOTAL", 3)
    await put_all(store, [{"resourceType": "Patient", "id": f"p{i}", "gender": "female" if i < 2 else "male"}
                          for i in range(5)])
    return store


@pytest.mark.parametrize(("pairs", "total"), [
    ([("gender", "male"), ("_count", "1")], None),  # 3 matches, not fewer than the cheap limit (3): no total
    ([("_count", "1")], None),  # 5 matches: no total
    ([("_count", "1"), ("_total", "accurate")], 5),  # asked for: counted
    ([("gender", "female"), ("_count", "1")], 2),  # a bounded count
    ([("gender", "male")], 3),  # everything on the first page
    ([("_total", "none")], None),
])
async def test_default_totals_are_cheap_and_the_same_on_both_stores(five: Store, pairs: list[tuple[str, str]],
                                                                     total: int | None) -> None:
    page = await five.search(parse_search("Patient", pairs, strict=True))
    assert page.total == total
