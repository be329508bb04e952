"""Writing test resources straight into a store: version 1, canonical bytes, index values extracted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_server.fhir import jsonio
from fhir_server.fhir.search.index import extract
from fhir_server.store.base import ResourceVersion, Store


async def put_all(store: Store, resources: Iterable[dict[str, Any]],
                  last_updated: str = "2025-01-01T00:00:00.000Z") -> None:
    async with store.transaction() as tx:
        for r in resources:
            await tx.put(ResourceVersion(r["resourceType"], r["id"], 1, last_updated, False, jsonio.dumps(r),
                                         "POST"), extract(r))
