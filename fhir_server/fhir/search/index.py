"""Search index values extracted from a resource at write time: plain data any store can consume.

The shape is fixed per parameter type: always a list of tuples, whatever the element's cardinality, and the
first member of every tuple is the parameter code. Strings are folded (:func:`.normalize.fold`), dates are
inclusive UTC (low, high) instants, numbers and quantities are [low, high) floats from the value's precision.

Composite parameters (``Observation?code-value-quantity=…``) reuse the typed shapes: each component row is the
typed row without its parameter code, tagged with the composite's code, a group number (one per context
element, so a code and a value only match together when they come from the same element) and the component
position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class IndexRows:
    """All index values of one resource version, grouped by search-parameter type."""

    string: list[tuple[str, str, str]] = field(default_factory=list)  # (param, folded, exact)
    token: list[tuple[str, str | None, str | None, str | None]] = field(default_factory=list)
    # (param, system, code, folded display/text); Reference.identifier is indexed as "<param>:identifier"
    reference: list[tuple[str, str | None, str | None, str | None]] = field(default_factory=list)
    # (param, target type, target id, absolute or canonical url)
    date: list[tuple[str, str, str]] = field(default_factory=list)  # (param, low, high) inclusive UTC instants
    number: list[tuple[str, float, float]] = field(default_factory=list)  # (param, low, high) [low, high)
    quantity: list[tuple[str, str | None, str | None, str | None, float, float]] = field(default_factory=list)
    # (param, system, code, unit, low, high)
    uri: list[tuple[str, str]] = field(default_factory=list)  # (param, uri)
    composite: list[tuple[str, int, int, str, tuple[Any, ...]]] = field(default_factory=list)
    # (param, group, component index, component type, typed row without the param code)

    def __len__(self) -> int:
        return sum(len(getattr(self, f)) for f in self.__slots__)  # type: ignore[attr-defined]


def extract(resource: dict[str, Any]) -> IndexRows:
    """Index values for ``resource`` (see :mod:`fhir_server.fhir.search.extract`)."""
    return _extract(resource)


from fhir_server.fhir.search.extract import extract_rows as _extract  # noqa: E402
