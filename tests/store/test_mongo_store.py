"""Mongo-only behaviour: topology checks, the retrying transaction runner, document shapes, bad input."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from pymongo import monitoring

from fhir_server.fhir.outcome import PreconditionFailed
from fhir_server.fhir.search.index import extract
from fhir_server.repository.bundle import BundleProcessor
from fhir_server.settings import Settings
from fhir_server.store.base import RaceLost, ResourceVersion
from fhir_server.store.mongo import MongoStore, MongoTransaction, StandaloneNotSupported
from fhir_server.store.mongo.errors import TransactionConflict
from fhir_server.store.mongo.topology import check_topology

pytestmark = pytest.mark.mongo


@pytest.mark.parametrize(("hello", "allowed", "expected"), [
    ({"setName": "rs0"}, False, "replica set rs0"),
    ({"msg": "isdbgrid"}, False, "sharded cluster (mongos)"),
    ({"isWritablePrimary": True}, True, "standalone (allowed by MONGODB_ALLOW_STANDALONE)"),
])
def test_topology_accepts_replica_sets_and_mongos(hello: dict[str, object], allowed: bool, expected: str) -> None:
    assert check_topology(hello, allowed) == expected


def test_topology_refuses_a_standalone_server_with_advice() -> None:
    with pytest.raises(StandaloneNotSupported, match="replica set"):
        check_topology({"isWritablePrimary": True}, allow_standalone=False)


@pytest.fixture
async def mongo(mongo_uri: str) -> MongoStore:
    store = MongoStore(mongo_uri, f"t_{os.getpid()}_{id(object())}")
    await store.open()
    yield store  # type: ignore[misc]
    await store.client.drop_database(store.database)
    await store.close()


def _version(vid: int, **fields: object) -> ResourceVersion:
    data = json.dumps({"resourceType": "Consent", "id": "c1", "status": "active", **fields}).encode()
    return ResourceVersion("Consent", "c1", vid, f"2026-01-01T00:00:0{vid}.000Z", False, data)


async def test_run_transaction_reruns_the_loser_which_then_fails_if_match_with_412(mongo: MongoStore) -> None:
    async with mongo.transaction() as tx:
        await tx.put(_version(1), None)
    attempts: list[int] = []

    async def if_match_1(tx: MongoTransaction) -> str:
        current = await tx.current("Consent", "c1")
        attempts.append(current.version_id if current else 0)
        await asyncio.sleep(0.05)
        if current is None or current.version_id != 1:
            raise PreconditionFailed("If-Match 1 failed")
        await tx.put(_version(2), None)
        return "ok"

    results = await asyncio.gather(mongo.run_transaction(if_match_1), mongo.run_transaction(if_match_1),
                                   return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["PreconditionFailed", "str"]
    # The loser ran again (more than once if it retried before the winner committed) and finally saw version 2.
    assert attempts.count(2) == 1 and attempts.count(1) >= 2


async def test_a_first_version_of_an_existing_resource_is_a_conflict_and_leaves_nothing(mongo: MongoStore) -> None:
    """First versions go out as inserts (issue #16): a create racing one that committed first is refused with
    412, never merged over the stored resource. (The duplicate used to surface from the history insert_many as
    a BulkWriteError, which was not read as a conflict: a 503.)"""
    async with mongo.transaction() as tx:
        await tx.put(_version(1), None)
    other = ResourceVersion("Patient", "p1", 1, "2026-01-01T00:00:02.000Z", False, b'{"resourceType":"Patient"}')
    with pytest.raises(TransactionConflict):
        async with mongo.transaction() as tx:
            await tx.put(other, None)
            await tx.put(_version(1, status="draft"), None)
    current = await mongo.read("Consent", "c1")
    assert current is not None and b'"active"' in (current.body or b"")
    assert await mongo.read("Patient", "p1") is None and await mongo.vread("Patient", "p1", 1) is None


async def test_stored_document_shape_is_fixed_and_server_prefixed(mongo: MongoStore) -> None:
    resource = {"resourceType": "Consent", "id": "c1", "status": "active", "patient": {"reference": "Patient/9"},
                "$weird.key": {"a.b": 1}}
    data = json.dumps(resource).encode()
    async with mongo.transaction() as tx:  # keys with $ and dots never reach MongoDB: the body is bytes
        await tx.put(ResourceVersion("Consent", "c1", 1, "2026-01-01T00:00:00.000Z", False, data), extract(resource))
    doc = await mongo.resources.find_one({"_id": "Consent/c1"})
    assert all(key.startswith("_") for key in doc)
    assert bytes(doc["_body"]) == data and doc["_pc"] == "Patient/9"
    assert doc["_ix"]["reference"] == [{"p": "patient", "t": "Patient", "i": "9", "u": None}]
    hist = await mongo.history_collection.find_one({"_id": "Consent/c1/0000000001"})
    assert hist["_until"] == "9999-12-31T23:59:59.999Z" and hist["_method"] == "PUT"


async def test_a_store_refuses_to_open_on_a_standalone_server() -> None:
    from tests.mongo_server import secantus_server

    with secantus_server("--standalone") as uri:
        with pytest.raises(StandaloneNotSupported):
            await MongoStore(uri, "x", allow_standalone=False).open()
        # SecantusDB runs transactions even as a standalone; a real standalone mongod would refuse them here.
        store = MongoStore(uri, "x", allow_standalone=True)
        await store.open()
        async with store.transaction() as tx:
            await tx.put(_version(1), None)
        assert (await store.read("Consent", "c1")).version_id == 1  # type: ignore[union-attr]
        await store.close()


async def test_an_unreachable_server_fails_open_with_a_clear_message() -> None:
    store = MongoStore("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300", "x")
    with pytest.raises(RuntimeError, match="cannot open the MongoDB store"):
        await store.open()


class _Commands(monitoring.CommandListener):
    """Driver commands by (name, collection)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.seen.append((event.command_name, str(event.command.get(event.command_name))))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_a_bundle_costs_a_few_round_trips_not_a_few_per_entry(mongo_uri: str) -> None:
    """Issue #16: a transaction's writes go out in bulk, its reference checks in one $in, and with no live
    subscription the outbox asks once per transaction — not once per entry."""
    commands = _Commands()
    store = MongoStore(mongo_uri, f"t_{os.getpid()}_{id(object())}", client_options={"event_listeners": [commands]})
    await store.open()
    try:
        processor = BundleProcessor(store, Settings(), "http://test/fhir")
        org = {"resourceType": "Organization", "name": "Clinic"}
        created = await processor.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": org, "request": {"method": "POST", "url": "Organization"}}]}, "minimal")
        org_ref = created["entry"][0]["response"]["location"].split("/_history")[0]
        entries = [{"resource": {"resourceType": "Patient", "name": [{"family": f"F{i}"}],
                                 "managingOrganization": {"reference": org_ref}},
                    "request": {"method": "POST", "url": "Patient"}} for i in range(20)]
        commands.seen.clear()
        response = await processor.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries},
                                               "minimal")
        assert [e["response"]["status"] for e in response["entry"]] == ["201 Created"] * 20
        counts = {key: commands.seen.count(key) for key in set(commands.seen)}
        assert counts[("insert", "resources")] == 1, counts  # creates: one insert_many, no upserts
        assert ("update", "resources") not in counts, counts
        assert counts[("insert", "history")] == 1, counts
        assert counts.get(("find", "sub_state"), 0) <= 1, counts
        assert len(commands.seen) <= 10, counts
    finally:
        await store.client.drop_database(store.database)
        await store.close()


async def test_two_snapshot_transactions_claiming_one_condition_cannot_both_commit(mongo: MongoStore) -> None:
    """The claim is what makes If-None-Exist atomic on MongoDB: without it, two snapshot transactions that both
    searched and found nothing would both create. Whichever order the writes take, the second claimer loses
    (before the first commits: a write conflict; after: a conflict with a document changed since its snapshot)."""
    for first_commits_before_second_claims in (False, True):
        key = f"k-{first_commits_before_second_claims}"
        one, two = mongo.transaction(), mongo.transaction()
        t1, t2 = await one.__aenter__(), await two.__aenter__()
        await t1.current("Consent", "none")  # both snapshots start before either claim
        await t2.current("Consent", "none")
        await t1.claim(key)
        if first_commits_before_second_claims:
            await one.__aexit__(None, None, None)
        with pytest.raises(RaceLost):
            await t2.claim(key)
        await two.__aexit__(RaceLost, RaceLost("lost"), None)
        if not first_commits_before_second_claims:
            await one.__aexit__(None, None, None)
        # the claim is a lock, not a record: a later create under the same condition may claim it again
        async with mongo.transaction() as t3:
            await t3.claim(key)
        async with mongo.transaction() as t4:
            await t4.claim(key)
        claim = await mongo.db["conditional_claims"].find_one({"_id": key})
        assert claim is not None and claim["n"] == 3


async def test_a_conditional_create_costs_two_claim_commands_and_a_match_none(mongo_uri: str) -> None:
    """What the claim adds on MongoDB: a find and an insert on conditional_claims when the condition creates
    (a find and an update when the criteria created before), nothing when it matches."""
    commands = _Commands()
    store = MongoStore(mongo_uri, f"t_{os.getpid()}_{id(object())}", client_options={"event_listeners": [commands]})
    await store.open()
    try:
        processor = BundleProcessor(store, Settings(), "http://test/fhir")

        async def post(value: str) -> tuple[str, list[tuple[str, str]]]:
            commands.seen.clear()
            response = await processor.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": {"resourceType": "Patient", "identifier": [{"system": "urn:c", "value": value}]},
                 "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier=urn:c|{value}"}}]},
                "minimal")
            return response["entry"][0]["response"]["status"], [c for c in commands.seen
                                                                  if c[1] == "conditional_claims"]

        assert await post("1") == ("201 Created", [("find", "conditional_claims"), ("insert", "conditional_claims")])
        assert await post("1") == ("200 OK", [])
        assert await post("2") == ("201 Created", [("find", "conditional_claims"), ("insert", "conditional_claims")])
    finally:
        await store.client.drop_database(store.database)
        await store.close()
