"""The one gate: may this caller see this resource now? (ACCESS.md §B)

Every path that returns resources calls this module — read, vread, search (matches and includes), history,
``$everything``, transaction/batch GET entries, conditional interactions, subscription notifications, bulk export.
No path filters on its own.

Interface (stable; other rooms build on it):

- ``await gate.visible(caller, versions)`` → the subset of ``versions`` the caller may see, in the same order.
  Administrators see everything. Apply it *before* paging (fetch until the page is full) so pages stay full and
  totals count only what is visible.
- ``gate.disclosed(caller, version)`` → the bytes to send: stored bytes for an administrator; for a Care
  Partner the disclosed copy with its obligation codes added to ``meta.security`` (stored bytes never change).

This file starts as the interface with the administrator behaviour; the consent enforcement work fills in the
Care Partner rules behind the same two calls.
"""

from __future__ import annotations

from collections.abc import Sequence

from fhir_server.security.caller import Caller
from fhir_server.settings import Settings
from fhir_server.store.base import ResourceVersion, Store


class Gate:
    """Decides visibility for one server (one store); holds the decision cache."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    async def visible(self, caller: Caller, versions: Sequence[ResourceVersion]) -> list[ResourceVersion]:
        """The versions ``caller`` may see now, in order; delete markers pass (they disclose nothing)."""
        return list(versions)

    def disclosed(self, caller: Caller, version: ResourceVersion) -> bytes:
        """What ``caller`` receives of a visible ``version``: the stored bytes, plus obligations for partners."""
        assert version.body is not None
        return version.body
