"""The subscription outbox on both stores: what a write records, and how workers number and prune it (issue #14).

A write that matches many subscriptions records one outbox entry per written version (listing the subscriptions),
not one per (subscription, write): that per-subscription cost made ingest with 1,000 subscriptions slower than the
issue allows. These tests drive the store's subscription operations directly, on a real SQLite file and a real
SecantusDB, as the outbox hook and the delivery worker call them.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from fhir_server.store.base import Store
from fhir_server.store.subscriptions import EventRow, SubscriptionState, subscription_store

FAR_FUTURE = "9999-12-31T00:00:00.000Z"


def _state(id: str) -> SubscriptionState:
    return SubscriptionState(id=id, kind="classic", channel="rest-hook", status="active", owner={},
                             spec={"filters": [{"resource_type": "Observation", "query": f"code={id}"}]},
                             keys=[f"Observation|code={id}"])


def _event(k: int) -> EventRow:
    return EventRow("", 0, "Observation", f"o{k}", 1, "create", f"2026-01-01T00:00:{k:02d}.000Z")


async def _register(store: Store, ids: list[str]) -> dict[str, str]:
    """Register the subscriptions; return each one's key as the outbox sees it inside a write."""
    subs = subscription_store(store)
    await subs.open()
    async with store.transaction() as tx:
        for i in ids:
            await subs.register(tx, _state(i))
        found = await subs.candidates(tx, [f"Observation|code={i}" for i in ids])
    keys = {c.filters.split("=", 1)[1]: c.id for c in found}
    assert sorted(keys) == sorted(ids)
    return keys


async def _append(store: Store, batch: list[tuple[list[str], EventRow]]) -> None:
    async with store.transaction() as tx:
        await subscription_store(store).append(tx, batch)


def _outbox_entries(store: Store) -> int:
    if store.name == "sqlite":
        return int(store.reader.execute("SELECT count(*) FROM outbox_event").fetchone()[0])  # type: ignore[attr-defined]
    raise AssertionError("async on MongoDB")


async def _pending_entries(store: Store) -> int:
    if store.name == "sqlite":
        return _outbox_entries(store)
    return int(await store.db["sub_pending"].count_documents({}))  # type: ignore[attr-defined]


async def _deliver_all(store: Store, id: str, keep: Any = lambda e: True) -> int | None:
    """Claim ``id`` and number its pending events as the worker does (``keep``: what the gate lets through)."""
    subs = subscription_store(store)
    now = time.time()
    claimed = await subs.claim("w1", now, 30, 10, [], [])
    assert id in {s.id for s in claimed}
    pending = await subs.pending(id, 500)
    last = await subs.number(id, "w1", [p.token for p in pending if keep(p.event)], [p.token for p in pending],
                             now + 30)
    for s in claimed:
        await subs.finish(s.id, "w1", {"delivered": last} if s.id == id and last is not None else {})
    return last


async def test_a_write_matching_many_subscriptions_records_one_entry_per_version(store: Store) -> None:
    ids = [f"s{i}" for i in range(50)]
    keys = await _register(store, ids)
    every = list(keys.values())
    await _append(store, [(every, _event(1))])  # the first marks all 50 as due
    if store.name == "sqlite":  # rows a later transaction changes: its 3 versions, nothing per subscription
        writer = store._writer  # type: ignore[attr-defined]
        before = writer.total_changes
        await _append(store, [(every, _event(k)) for k in (2, 3, 4)])
        assert writer.total_changes - before == 3
        assert store.reader.execute(  # type: ignore[attr-defined]
            "SELECT 1 FROM sqlite_master WHERE name = 'subscription_pending'").fetchone() is None
    else:
        await _append(store, [(every, _event(k)) for k in (2, 3, 4)])
    assert await _pending_entries(store) == 4  # not 200
    pending = await subscription_store(store).pending("s7", 500)
    assert [p.event.id for p in pending] == ["o1", "o2", "o3", "o4"]


async def test_events_are_numbered_in_write_order_without_gaps_per_subscription(store: Store) -> None:
    keys = await _register(store, ["a", "b"])
    a, b = keys["a"], keys["b"]
    await _append(store, [([a, b], _event(1)), ([b], _event(2))])
    await _append(store, [([a], _event(3))])
    await _append(store, [([a, b], _event(4)), ([a], _event(5))])
    subs = subscription_store(store)
    # the gate withholds o3 from a's owner: no number, no gap
    assert await _deliver_all(store, "a", keep=lambda e: e.id != "o3") == 3
    assert [(e.number, e.id) for e in await subs.events("a", 1, 10, 10)] == [(1, "o1"), (2, "o4"), (3, "o5")]
    assert await subs.pending("a", 500) == []
    assert [p.event.id for p in await subs.pending("b", 500)] == ["o1", "o2", "o4"]  # b's are untouched
    await _append(store, [([a], _event(6))])  # a is due again after it was caught up
    assert await _deliver_all(store, "a") == 4
    assert await _deliver_all(store, "b") == 3
    assert [e.id for e in await subs.events("b", 1, 10, 10)] == ["o1", "o2", "o4"]
    assert await subs.claim("w2", time.time(), 30, 10, [], []) == []  # nothing due any more


async def test_a_second_numbering_of_the_same_events_changes_nothing(store: Store) -> None:
    keys = await _register(store, ["a"])
    await _append(store, [([keys["a"]], _event(k)) for k in (1, 2)])
    subs = subscription_store(store)
    now = time.time()
    await subs.claim("w1", now, 30, 10, [], [])
    pending = await subs.pending("a", 500)
    tokens = [p.token for p in pending]
    assert await subs.number("a", "w1", tokens, tokens, now + 30) == 2
    assert await subs.number("a", "w1", tokens, tokens, now + 30) is None  # already numbered: no 3 and 4
    assert (await subs.get("a")).last_number == 2  # type: ignore[union-attr]


async def test_pruning_drops_numbered_events_and_outbox_entries_nobody_waits_for(store: Store) -> None:
    keys = await _register(store, ["a", "b"])
    a, b = keys["a"], keys["b"]
    await _append(store, [([a], _event(k)) for k in range(1, 6)])
    await _append(store, [([a, b], _event(6))])
    subs = subscription_store(store)
    assert await _deliver_all(store, "a") == 6
    await subs.prune("a", 6, FAR_FUTURE)  # events 1-5 go; 6 stays (and b still waits for o6)
    assert [e.number for e in await subs.events("a", 1, 10, 10)] == [6]
    if store.name == "sqlite":
        assert _outbox_entries(store) == 1
    else:
        assert await _pending_entries(store) == 1  # only o6, which b has not numbered
    assert await _deliver_all(store, "b") == 1
    await subs.prune("a", 7, FAR_FUTURE)
    await subs.prune("b", 2, FAR_FUTURE)
    assert await subs.events("a", 1, 10, 10) == [] and await subs.events("b", 1, 10, 10) == []
    assert await _pending_entries(store) == 0


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
async def test_a_database_with_the_earlier_pending_rows_is_converted(store: Store) -> None:
    """A database written with one ``subscription_pending`` row per (subscription, write) keeps its pending events."""
    keys = await _register(store, ["a", "b"])
    writer = store._writer  # type: ignore[attr-defined]
    await _append(store, [([keys["a"], keys["b"]], _event(1)), ([keys["b"]], _event(2))])
    writer.executescript(  # back to the earlier layout, as that code left it
        "CREATE TABLE subscription_pending (sid INTEGER NOT NULL, eid INTEGER NOT NULL, PRIMARY KEY (sid, eid))"
        " WITHOUT ROWID;"
        f"INSERT INTO subscription_pending VALUES ({keys['a']}, 1), ({keys['b']}, 1), ({keys['b']}, 2);"
        "UPDATE outbox_event SET subs = ''; UPDATE subscription_counter SET due_from = 0;")
    await store.close()
    await store.open()
    assert [p.event.id for p in await subscription_store(store).pending("b", 500)] == ["o1", "o2"]
    assert await _deliver_all(store, "a") == 1
