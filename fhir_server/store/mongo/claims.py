"""Conditional-create claims: what makes ``If-None-Exist`` atomic on MongoDB (HAPI's ``HFJ_RES_SEARCH_URL``).

A snapshot transaction does not serialise a *search* with a concurrent *insert*: two requests with the same
``If-None-Exist`` can both search, both find nothing and both create. So, once the condition has found nothing,
the transaction also writes the claim document of its criteria (``_id`` = a hash of type + normalised criteria:
no identifier value, no PHI, is stored). Two transactions writing one document conflict in MongoDB: the loser
gets ``WriteConflict``/``DuplicateKey`` → :class:`TransactionConflict`, is rolled back, and its caller re-runs it
(``run_transaction``), now finding the winner's resource — a 200 instead of a duplicate.

The claim is a lock on the criteria, not a uniqueness record: the condition is evaluated again by every
request, so a deleted match, or one updated so that it no longer matches, never blocks a later create; the
claim document then just counts one more create (compare-and-set on ``n``, which conflicts exactly like an
insert). A TTL index drops claims an hour after their last use, far beyond MongoDB's 60 s transaction lifetime,
so the collection holds about one small document per criteria created under in the last hour.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from fhir_server.store.mongo.errors import TransactionConflict

CLAIM_TTL_SECONDS = 3600
CLAIM_INDEXES = [IndexModel([("at", ASCENDING)], name="claims_ttl", expireAfterSeconds=CLAIM_TTL_SECONDS)]


async def claim(collection: Any, key: str, session: AsyncClientSession) -> None:
    """Write the claim ``key`` inside the session's transaction; a concurrent claimer makes one of them fail.

    The read comes first so that the update of an existing claim is a compare-and-set on what this snapshot
    saw (``matched_count`` 0: another transaction moved it on since → lost). Driver errors propagate; the
    caller translates them (a write conflict or duplicate key → :class:`TransactionConflict`).
    """
    now = datetime.now(UTC)
    found = await collection.find_one({"_id": key}, {"n": 1}, session=session)
    if found is None:
        await collection.insert_one({"_id": key, "n": 1, "at": now}, session=session)
        return
    seen = int(found.get("n", 0))
    done = await collection.update_one({"_id": key, "n": seen}, {"$set": {"n": seen + 1, "at": now}},
                                       session=session)
    if done.matched_count != 1:
        raise TransactionConflict("a concurrent conditional create with the same criteria won the race")
