"""Compiling Consents once: the cache must be fast and never serve another Consent's provisions."""

from __future__ import annotations

import time
from datetime import date

import orjson

from fhir_server.consent.compiled import compiled
from fhir_server.consent.decide import decide
from fhir_server.consent.model import Coding, ConsentVersion, DecisionRequest, Identifier
from fhir_server.consent.tables import load_tables
from tests.consent.builder import ACT_REASON, BASE, form, party, revoked
from tests.consent.cases import L

TABLES = load_tables(BASE)
TZ = "America/Los_Angeles"


def test_a_reused_id_with_other_content_is_compiled_again():
    a = form(id="same", share=("hiv",), recorded=7)
    b = form(id="same", share=(), recorded=7)
    assert len(compiled(a, TABLES, TZ).by_category["hiv"]) == 1
    assert compiled(b, TABLES, TZ).by_category["hiv"][0].type == "deny"


def test_stored_bytes_compile_without_parsing_on_a_cache_hit():
    c = form(id="bytes")
    raw = orjson.dumps(c.resource)
    first = compiled(ConsentVersion.from_json(raw, "r1", id="bytes", version_id="1"), TABLES, TZ)
    lazy = ConsentVersion.from_json(bytes(raw), "r1", id="bytes", version_id="1")
    assert compiled(lazy, TABLES, TZ) is first
    assert lazy.parsed is None


def test_the_cache_keeps_a_consents_bytes_not_its_parsed_json():
    """The parsed dict is several times the bytes; cached for thousands of Consents it grew a worker's memory
    for as long as new Consents were decided about (the 10-minute soak, issue #18)."""
    c = form(id="lean", share=("hiv",))
    raw = orjson.dumps(c.resource)
    parsed = ConsentVersion.from_json(raw)  # no ids given: parsed on the way in
    assert parsed.parsed is not None
    cached = compiled(parsed, TABLES, TZ)
    assert len(cached.by_category["hiv"]) == 1  # provisions compiled (from the bytes) after caching
    assert cached.version.parsed is None and cached.version.raw == raw
    again = ConsentVersion.from_json(bytes(raw), parsed.recorded, id="lean", version_id=parsed.version_id)
    assert compiled(again, TABLES, TZ) is cached
    assert cached.version.parsed is None
    assert parsed.parsed is not None  # the caller's own version is left as it was


def test_the_cache_stays_within_its_memory_budget():
    """Bounded by count and by what an entry keeps (bytes, not the parse; provisions shared between Consents):
    under 10 MB however many Consents are decided about (docs/deploy.md, *Memory per worker*)."""
    import tracemalloc

    cats = ("hiv", "mental-health", "substance-use", "sti", "reproductive-health", "education")
    raws = [orjson.dumps(form(id=f"budget{i}", share=cats[: i % 6 + 1]).resource) for i in range(3000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i, raw in enumerate(raws):
            c = compiled(ConsentVersion.from_json(raw, "r", id=f"budget{i}", version_id="1"), TABLES, TZ)
            assert c.by_category  # provisions compiled, as a decision would
        del raws, c
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 10e6, f"{kept / 1e6:.1f} MB kept by the compiled-Consent cache"


def test_the_cache_is_full_after_a_few_hundred_consents():
    """256 Consents and 1,024 shared values at most: the mixed soak fills them within its warm-up, so a worker's
    RSS does not keep growing for minutes after it (issue #18; at 1,024 it grew ~7 MB per worker after)."""
    from fhir_server.consent import compiled as module

    for i in range(600):
        raw = orjson.dumps(form(id=f"full{i}", share=("hiv", "sti")[: i % 2 + 1]).resource)
        assert compiled(ConsentVersion.from_json(raw, "r", id=f"full{i}", version_id="1"), TABLES, TZ).by_category
    assert len(module._BYTES_CACHE) == 256
    assert len(module._SHARED) <= 1_024


def test_from_json_without_ids_reads_them_from_the_resource():
    raw = orjson.dumps(form(id="ids", version="4").resource)
    v = ConsentVersion.from_json(raw)
    assert (v.id, v.version_id, v.reference) == ("ids", "4", "Consent/ids/_history/4")


def test_provisions_are_pre_sorted_by_the_category_they_can_speak_to():
    c = compiled(form(id="sorted", share=("substance-use",), exclude=("Organization/x",)), TABLES, TZ)
    part2 = c.by_category["substance-use-part2"]
    assert [(p.type, sorted(code for _, code in p.label_keys)) for p in part2] == [
        ("deny", ["42CFRPart2"]),
        ("deny", []),
    ]


def test_a_decision_over_five_consents_is_cheap():
    consents = [
        revoked(form(id=f"perf{i}", signed=f"202{i}-01-10", expires=f"202{i + 1}-01-10"), end=f"202{i}-12-31")
        for i in range(4)
    ] + [form(id="perf-current")]
    rec = party("cbo", covered=False, type="cbo")
    req = DecisionRequest(
        (Identifier("s", "v"),),
        rec.identifiers,
        Coding(ACT_REASON, "TREAT"),
        (L("42CFRPart2"), L("MH"), L("N")),
        date(2025, 3, 1),
    )
    decide(req, consents, rec, "1980-01-01")
    best = min(_timed(lambda: decide(req, consents, rec, "1980-01-01")) for _ in range(200))
    assert best < 300e-6


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t
