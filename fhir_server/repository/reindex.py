"""Re-extract the search index values of every current resource (no new versions).

Needed when the search parameter definitions change — a new SearchParameter in ``profiles/``, a new release of
the derived R4 data — because index values are extracted at write time.
"""

from __future__ import annotations

from fhir_server.fhir import jsonio
from fhir_server.fhir.search.index import extract
from fhir_server.store.base import ResourceVersion, Store


async def reindex(store: Store, resource_type: str | None = None, batch: int = 500) -> int:
    """Returns how many resources were re-indexed; each batch is one transaction."""
    done = 0
    pending: list[ResourceVersion] = []

    async def flush() -> None:
        async with store.transaction() as tx:
            for version in pending:
                assert version.body is not None
                await tx.reindex(version, extract(jsonio.loads(version.body)))
        pending.clear()

    async for version in store.export(resource_type):
        pending.append(version)
        done += 1
        if len(pending) >= batch:
            await flush()
    if pending:
        await flush()
    return done
