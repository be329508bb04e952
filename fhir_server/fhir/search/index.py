"""Search index values extracted from a resource at write time (placeholder: the search issue fills it in).

The shape is fixed per parameter type: always a list of rows, whatever the element's cardinality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class IndexRows:
    """All index values of one resource version, grouped by search-parameter type."""

    string: list[tuple[str, str]] = field(default_factory=list)  # (param, folded value)
    token: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # (param, system, code)
    reference: list[tuple[str, str | None, str | None, str | None]] = field(default_factory=list)
    date: list[tuple[str, str, str]] = field(default_factory=list)  # (param, low, high) UTC instants
    number: list[tuple[str, float, float]] = field(default_factory=list)
    quantity: list[tuple[str, str | None, str | None, float, float]] = field(default_factory=list)
    uri: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(getattr(self, f)) for f in self.__slots__)  # type: ignore[attr-defined]


def extract(resource: dict[str, Any]) -> IndexRows:
    """Index values for ``resource`` (placeholder: none yet)."""
    return IndexRows()
