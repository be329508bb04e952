"""Re-indexing: resources written before a search parameter existed become findable by it, with no new
version, on both stores."""

from __future__ import annotations

from fhir_server.fhir import jsonio
from fhir_server.fhir.search.api import parse_search
from fhir_server.fhir.search.index import IndexRows
from fhir_server.repository.reindex import reindex
from fhir_server.store.base import ResourceVersion, Store

PATIENT = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Okafor"}], "gender": "female"}


async def test_reindex_makes_unindexed_resources_searchable_without_new_versions(store: Store) -> None:
    version = ResourceVersion("Patient", "p1", 1, "2026-01-01T00:00:00.000Z", False, jsonio.dumps(PATIENT), "POST")
    async with store.transaction() as tx:
        await tx.put(version, IndexRows())  # as if written before the parameters existed
    query = parse_search("Patient", [("family", "okafor")], strict=True)
    assert (await store.search(query)).matches == []

    assert await reindex(store) == 1

    found = (await store.search(query)).matches
    assert [v.id for v in found] == ["p1"]
    current = await store.read("Patient", "p1")
    assert current is not None and current.version_id == 1


async def test_reindex_gives_code_tokens_written_without_a_system_their_bound_system(store: Store) -> None:
    """Index rows from before code elements carried their binding's system (issue #17) gain it on reindex."""
    version = ResourceVersion("Patient", "p1", 1, "2026-01-01T00:00:00.000Z", False, jsonio.dumps(PATIENT), "POST")
    async with store.transaction() as tx:
        await tx.put(version, IndexRows(token=[("gender", None, "female", None)]))  # the old shape
    query = parse_search("Patient", [("gender", "http://hl7.org/fhir/administrative-gender|female")], strict=True)
    assert (await store.search(query)).matches == []

    await reindex(store)

    assert [v.id for v in (await store.search(query)).matches] == ["p1"]
    plain = parse_search("Patient", [("gender", "female")], strict=True)
    assert [v.id for v in (await store.search(plain)).matches] == ["p1"]
