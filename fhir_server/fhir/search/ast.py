"""The search AST: what a query asks for, independent of any store.

Produced by :func:`fhir_server.fhir.search.parse.parse_search`, compiled by each store. All nodes are frozen
dataclasses so that queries can be cached, compared and printed in tests.

``Consent?patient=Patient/1&status=active,draft&_sort=-date`` becomes::

    SearchQuery(resource_type="Consent",
                filters=(Filter("patient", "reference", values=(ReferenceValue("Patient", "1"),)),
                         Filter("status", "token", values=(TokenValue(None, "active"),
                                                           TokenValue(None, "draft")))),
                sort=(SortKey("date", "date", descending=True),))

Filters are ANDed; the ``values`` of one filter are ORed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import quote

from fhir_server.fhir.outcome import Issue

if TYPE_CHECKING:
    from fhir_server.store.base import ResourceVersion

ANY_SYSTEM = None  # TokenValue.system: any system
NO_SYSTEM = ""  # TokenValue.system: the code must have no system (``|code``)


@dataclass(frozen=True, slots=True)
class DateValue:
    prefix: str  # eq ne gt lt ge le sa eb ap
    low: str  # inclusive UTC instant
    high: str  # inclusive UTC instant


@dataclass(frozen=True, slots=True)
class NumberValue:
    prefix: str
    low: float  # [low, high) implied by the significant digits
    high: float
    value: float


@dataclass(frozen=True, slots=True)
class QuantityValue:
    prefix: str
    low: float
    high: float
    value: float
    system: str | None = None  # None: any
    code: str | None = None  # matches the code, or the unit when no system is given


@dataclass(frozen=True, slots=True)
class TokenValue:
    system: str | None  # ANY_SYSTEM (None) | NO_SYSTEM ("") | a system URI
    code: str | None  # None: any code (``system|``)


@dataclass(frozen=True, slots=True)
class StringValue:
    text: str  # as given (for :exact)
    folded: str  # case/accent folded (default prefix match, :contains, token :text)


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    type: str | None
    id: str | None
    url: str | None = None  # absolute or canonical URL (versions dropped)


@dataclass(frozen=True, slots=True)
class UriValue:
    uri: str


@dataclass(frozen=True, slots=True)
class CompositeValue:
    parts: tuple[Value, ...]


Value = (DateValue | NumberValue | QuantityValue | TokenValue | StringValue | ReferenceValue | UriValue
         | CompositeValue)


@dataclass(frozen=True, slots=True)
class Filter:
    """One ``name[:modifier]=v1,v2`` on ``resource_type`` (values ORed).

    ``type`` is the parameter type, or ``special`` for the resource-table parameters ``_id``,
    ``_lastUpdated`` and ``_list``. ``missing`` is set for ``:missing``. A chained reference
    (``patient.name=x``) has ``chain`` = the filter to apply to resources of ``chain_types``.
    Composite filters carry ``components`` = the component parameter codes and types.
    """

    name: str
    type: str
    values: tuple[Value, ...] = ()
    modifier: str | None = None
    missing: bool | None = None
    resource_type: str | None = None
    target_type: str | None = None  # reference ``:Patient`` modifier
    chain: Filter | Has | None = None
    chain_types: tuple[str, ...] = ()
    components: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Has:
    """``_has:Observation:patient:code=x``: resources referenced by an Observation (via ``patient``) matching."""

    source_type: str
    reference_param: str
    inner: Filter | Has


@dataclass(frozen=True, slots=True)
class Include:
    """``_include=Consent:patient[:Patient]`` / ``_revinclude=Provenance:target`` (``param`` None: ``*``)."""

    source_type: str | None  # None for ``_include=*``
    param: str | None
    target_type: str | None = None
    iterate: bool = False


@dataclass(frozen=True, slots=True)
class SortKey:
    name: str  # a parameter code, ``_id`` or ``_lastUpdated``
    type: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A parsed search. ``resource_type`` is None for a system search (``types`` from ``_type``).

    The first four fields keep the positional order of the original placeholder
    (``SearchQuery("Patient", ids, count, cursor)``) so callers written against it keep working.
    """

    resource_type: str | None
    ids: tuple[str, ...] = ()  # shorthand for an ``_id`` filter (repository lookups)
    count: int = 20
    cursor: str | None = None
    filters: tuple[Filter | Has, ...] = ()
    types: tuple[str, ...] = ()
    includes: tuple[Include, ...] = ()
    revincludes: tuple[Include, ...] = ()
    sort: tuple[SortKey, ...] = ()
    total: str = "accurate"  # none | estimate | accurate
    summary: str | None = None  # true | text | data | count | false
    elements: tuple[str, ...] = ()
    warnings: tuple[Issue, ...] = ()  # for the Bundle's OperationOutcome (dropped parameters, capped _count)
    honoured: tuple[tuple[str, str], ...] = ()  # (name, value) pairs the search honours, in request order

    def self_link_query(self) -> str:
        """Canonical query string of what was honoured: ``status=active&_count=20`` (no ``_cursor``)."""
        return "&".join(f"{_q(n)}={_q(v)}" for n, v in self.honoured)

    def next_link_query(self, cursor: str) -> str:
        """Query string of the next page: the self link plus ``_cursor``."""
        head = self.self_link_query()
        return f"{head}&_cursor={_q(cursor)}" if head else f"_cursor={_q(cursor)}"

    def with_cursor(self, cursor: str | None) -> SearchQuery:
        return replace(self, cursor=cursor)

    def total_wanted(self) -> bool | None:
        """True: count whatever it costs; False: no total; None: ``_total`` absent — the server's choice, which
        both stores make the same way: a total only when it is cheap (fewer than :data:`CHEAP_TOTAL` matches, or
        everything on the first page)."""
        if self.total == "none":
            return False
        if self.summary == "count" or any(name == "_total" for name, _ in self.honoured):
            return True
        return None


def _q(text: str) -> str:
    return quote(text, safe=":/|,$*-_.~")


CHEAP_TOTAL = 1000  # without _total, a search with this many matches or more gets no Bundle.total


@dataclass(slots=True)
class SearchPage:
    matches: list[ResourceVersion]
    includes: list[ResourceVersion] = field(default_factory=list)  # search.mode = include
    next_cursor: str | None = None
    total: int | None = None
    warnings: list[Issue] = field(default_factory=list)  # e.g. includes cut at the server's limit


def includes_truncated(limit: int) -> Issue:
    """The warning a store adds when ``_include``/``_revinclude`` (``:iterate``) stopped at its limits, so a
    client knows the Bundle does not hold everything it asked to include."""
    return Issue("warning", "too-costly", f"_include/_revinclude stopped at this server's limit ({limit} resources "
                 "or a few :iterate rounds); some included resources are not in this Bundle", ("_include",))
