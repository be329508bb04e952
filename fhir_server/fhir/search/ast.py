"""Search query AST (placeholder: the search issue replaces it with the full parser's dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fhir_server.store.base import ResourceVersion


@dataclass(frozen=True, slots=True)
class SearchQuery:
    resource_type: str
    ids: tuple[str, ...] = ()
    count: int = 20
    cursor: str | None = None


@dataclass(slots=True)
class SearchPage:
    matches: list[ResourceVersion]
    includes: list[ResourceVersion] = field(default_factory=list)
    next_cursor: str | None = None
    total: int | None = None
