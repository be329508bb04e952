"""What the service layer hands the pure ASCMI functions about resources already in the store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fhir_server.fhir import jsonio
from fhir_server.store.base import ResourceVersion


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored resource with its logical id and current ``meta.versionId``."""

    resource: Mapping[str, Any]
    id: str
    version_id: str

    @property
    def reference(self) -> str:
        return f"{self.resource['resourceType']}/{self.id}"


@dataclass(frozen=True, slots=True)
class KnownPartner:
    """A Care Partner Organization found by identifier, with its OrganizationAffiliations to the network."""

    organization: Stored
    affiliations: tuple[Stored, ...] = field(default=())


def from_version(version: ResourceVersion) -> Stored:
    """A stored (non-deleted) version as :class:`Stored`."""
    assert version.body is not None
    return Stored(jsonio.loads(version.body), version.id, str(version.version_id))
