"""``fhir-server relabel``: apply the current ``ascmi-sls-*`` ValueSets to everything stored (ACCESS.md §C).

A resource whose labels change gets a **new version** (not an in-place edit): the labels are part of what was
served, so version N must keep answering with the bytes it had — an ETag, a vread, a history page, a
subscription notification and an audit record all name versions, and an in-place change would make them lie
about what a client received. The new version shows in history when and what the server added. Resources whose
labels do not change are not touched. Like every write, relabelling only adds labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.fhir import jsonio
from fhir_server.repository import labels
from fhir_server.repository import resources as repo
from fhir_server.store.base import ResourceVersion, Store, Transaction


@dataclass
class RelabelReport:
    examined: int = 0
    relabelled: int = 0


async def _relabel_one(tx: Transaction, seen: ResourceVersion) -> bool:
    current = await tx.current(seen.resource_type, seen.id)
    if current is None or current.deleted or current.version_id != seen.version_id or current.body is None:
        return False  # written since the scan started: that write was labelled with what it saw
    body = jsonio.loads(current.body)
    if await labels.apply(tx, body, caller=None) is body:
        return False
    await repo.update(tx, seen.resource_type, seen.id, body, check_refs=False, if_match=current.version_id)
    return True


async def relabel(store: Store, resource_type: str | None = None, batch: int = 500) -> RelabelReport:
    """Each batch is one transaction; returns how many resources were examined and given a new version."""
    report = RelabelReport()
    pending: list[ResourceVersion] = []

    async def flush() -> None:
        async with store.transaction() as tx:
            for version in pending:
                report.relabelled += await _relabel_one(tx, version)
        pending.clear()

    async for version in store.export(resource_type):
        report.examined += 1
        pending.append(version)
        if len(pending) >= batch:
            await flush()
    if pending:
        await flush()
    return report
