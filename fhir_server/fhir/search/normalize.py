"""Value normalisation shared by write-time extraction and query parsing.

Both sides must agree exactly, so the folding of strings, the (low, high) bounds of dates and numbers and the
split of references live here and nowhere else.

>>> fold("Ébé  ROSE")
'ebe  rose'
>>> date_bounds("2025")
('2025-01-01T00:00:00.000Z', '2025-12-31T23:59:59.999Z')
>>> number_bounds(Decimal("100"))
(99.5, 100.5)
>>> split_reference("http://x.org/fhir/Patient/1/_history/2")
('Patient', '1', 'http://x.org/fhir/Patient/1')
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache

MIN_INSTANT = "0001-01-01T00:00:00.000Z"
MAX_INSTANT = "9999-12-31T23:59:59.999Z"

_DATE_RE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
# The two caches below catch repeats (a family name, a birth date, a search value) and evict the one-offs (each
# write's own instants): 2,048 entries, ≤ ~0.8 MB each. At 65,536 they took ~20 MB each of a worker's memory
# over a long run, growing with every resource written; at 8,192 the mixed soak still filled them only after
# 5-8 minutes, so they grew a worker for that long after warm-up (docs/deploy.md, *Memory per worker*). A miss
# costs little: ``fold`` of ASCII text is one ``casefold``, ``date_bounds`` one regular-expression match.
CACHE_ENTRIES = 2048
_REFERENCE_RE = re.compile(r"(?:(?P<base>.*)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
                           r"(?:/_history/[^/]+)?")


@lru_cache(maxsize=CACHE_ENTRIES)
def fold(text: str) -> str:
    """Case- and accent-insensitive form: NFKD, drop combining marks, casefold."""
    if text.isascii():
        return text.casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _fmt(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _month_end(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (datetime(year, month + 1, 1) - timedelta(days=1)).day


@lru_cache(maxsize=CACHE_ENTRIES)
def date_bounds(text: str) -> tuple[str, str] | None:
    """UTC (low, high) instants, inclusive to the millisecond, at the value's precision; None if malformed.

    Values without a time zone are taken as UTC. ``2025-03`` → March 2025; ``2025-03-01T10:00+02:00`` →
    ``2025-03-01T08:00:00.000Z`` .. ``2025-03-01T08:00:59.999Z``.
    """
    m = _DATE_RE.fullmatch(text.strip())
    if m is None:
        return None
    try:
        year = int(m["y"])
        if m["m"] is None:
            return _fmt(datetime(year, 1, 1)), _fmt(datetime(year, 12, 31, 23, 59, 59, 999000))
        month = int(m["m"])
        if m["d"] is None:
            last = _month_end(year, month)
            return _fmt(datetime(year, month, 1)), _fmt(datetime(year, month, last, 23, 59, 59, 999000))
        day = int(m["d"])
        if m["H"] is None:
            first = datetime(year, month, day)  # refuses 2025-02-30
            if year >= 1000:  # what _fmt gives, without two strftime calls (dates are most values at ingest)
                text = f"{year:04d}-{month:02d}-{day:02d}"
                return text + "T00:00:00.000Z", text + "T23:59:59.999Z"
            return _fmt(first), _fmt(datetime(year, month, day, 23, 59, 59, 999000))
        tz = UTC
        if m["tz"] and m["tz"] != "Z":
            sign = 1 if m["tz"][0] == "+" else -1
            hours, minutes = int(m["tz"][1:3]), int(m["tz"][4:6])
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        start = datetime(year, month, day, int(m["H"]), int(m["M"]), tzinfo=tz)
        if m["S"] is None:
            span = timedelta(minutes=1)
        elif m["f"] is None:
            start = start.replace(second=int(m["S"]))
            span = timedelta(seconds=1)
        else:
            frac = m["f"][:6]
            start = start.replace(second=int(m["S"]), microsecond=int(frac.ljust(6, "0")))
            span = timedelta(milliseconds=1) if len(m["f"]) <= 3 else timedelta(microseconds=1000)
            start = start.replace(microsecond=start.microsecond // 1000 * 1000)
        low = start.astimezone(UTC)
        high = low + span - timedelta(milliseconds=1)
        return _fmt(low), _fmt(high)
    except (ValueError, OverflowError):
        return None


def to_decimal(value: object) -> Decimal | None:
    """Decimal from JSON numbers (FHIRDecimal, int, float) or query text; None if not a finite number."""
    if isinstance(value, bool):
        return None
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def number_bounds(value: Decimal) -> tuple[float, float]:
    """[low, high) implied by the significant digits: ``100`` → (99.5, 100.5), ``1e2`` → (50, 150)."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(1).scaleb(exponent) / 2
    return float(value - half), float(value + half)


def split_reference(text: str) -> tuple[str | None, str | None, str | None]:
    """(type, id, absolute-url) of a reference string; versions (``/_history/n``) are dropped.

    Relative ``Patient/1`` → ('Patient', '1', None); absolute URLs keep the URL without the version;
    canonical and other URLs that do not end in ``Type/id`` → (None, None, url-without-|version).
    """
    if text.startswith("#") or text.startswith("urn:"):
        return None, None, text if text.startswith("urn:") else None
    m = _REFERENCE_RE.fullmatch(text)
    if m is None:
        return None, None, text.split("|", 1)[0]
    url = None
    if m["base"]:
        url = f"{m['base']}/{m['type']}/{m['id']}"
    return m["type"], m["id"], url


def uri_ancestors(uri: str) -> list[str]:
    """The URI and its parents at ``/`` boundaries, for ``:above`` (never ``http:/``).

    >>> uri_ancestors("http://a/b/c")
    ['http://a/b/c', 'http://a/b', 'http://a']
    """
    out = [uri]
    head = uri
    while "/" in head.rstrip("/"):
        head = head.rstrip("/").rsplit("/", 1)[0]
        if head.endswith(":/") or head.endswith(":"):
            break
        out.append(head)
    return out
