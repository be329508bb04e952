"""The engine's tables: categories and labels come from the FHIR terminology, the rest from data/consent-*.json."""

from __future__ import annotations

import json

import pytest

from fhir_server.consent import tables as tables_module
from fhir_server.consent.labels import group_labels
from fhir_server.consent.model import Coding
from fhir_server.consent.tables import TableError, load_tables
from tests.consent.builder import ACT, BASE

ROOT = tables_module.DATA_ROOT


def _never_shareable_codes() -> set[tuple[str, str]]:
    vs = json.loads((ROOT / "profiles" / "ValueSet-ascmi-never-shareable.json").read_text())
    return {(inc["system"], c["code"]) for inc in vs["compose"]["include"] for c in inc["concept"]}


def test_the_tables_are_loaded_once_per_canonical_base():
    assert load_tables(BASE) is load_tables(BASE)


def test_never_shareable_labels_are_the_value_set():
    t = load_tables(BASE)
    assert set(t.never) == _never_shareable_codes() == {(ACT, "PSYTHPN")}
    assert t.is_never((None, "PSYTHPN"))


def test_part2_absorbs_sud_and_eth_asked_with_it_and_no_label_is_general_health():
    t = load_tables(BASE)
    together = group_labels([Coding(ACT, "42CFRPart2"), Coding(ACT, "SUD"), Coding(ACT, "ETH")], t)
    assert together.label_categories == ("substance-use-part2",) * 3
    assert group_labels([Coding(ACT, "SUD")], t).categories == ("substance-use",)
    assert group_labels([], t).categories == (t.default_category,) == ("general-health",)


def test_moving_the_canonical_base_moves_the_terminology_labels():
    t = load_tables("https://moved.example/fhir")
    assert t.category_of_label(("https://moved.example/fhir/CodeSystem/ascmi-category", "education")) == "education"
    assert t.category_of_label((f"{BASE}/CodeSystem/ascmi-category", "education")) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"defaultCategory": "no-such-category"}, "defaultCategory"),
        ({"absorbsWhenRequestedTogether": {"no-such-category": []}}, "outside CodeSystem"),
        (
            {"absorbsWhenRequestedTogether": {"substance-use-part2": [{"system": ACT, "code": "42CFRPart2"}]}},
            "not another category",
        ),
    ],
)
def test_engine_data_that_contradicts_the_terminology_fails_at_load(monkeypatch, change, message):
    read = tables_module._read

    def patched(name: str):
        data = read(name)
        return {**data, **change} if name == "consent-categories.json" else data

    monkeypatch.setattr(tables_module, "_read", patched)
    with pytest.raises(TableError, match=message):
        load_tables.__wrapped__(BASE)
