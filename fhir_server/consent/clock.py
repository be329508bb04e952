"""Business time: ASCMI compares calendar dates in the server's time zone (ASCMI.md §5 Calendar).

A form is in force for whole days, so T, a Consent's period and a membership's period are all reduced to dates
before they are compared; inclusive at both ends.

>>> local_date("2025-03-01T07:30:00Z", "America/Los_Angeles")
datetime.date(2025, 2, 28)
>>> local_date("2025-03-01", "America/Los_Angeles")
datetime.date(2025, 3, 1)
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

# FHIR dateTime: YYYY, YYYY-MM, YYYY-MM-DD, or with time and (optionally, here) an offset.
DATETIME_RE = re.compile(
    r"^(?P<y>[0-9]{4})(-(?P<m>0[1-9]|1[0-2])(-(?P<d>0[1-9]|[12][0-9]|3[01])"
    r"(T(?P<t>[01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(?P<tz>Z|[+-](?:0[0-9]|1[0-4]):[0-5][0-9])?)?)?)?$"
)


@lru_cache(maxsize=16)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def parse_datetime(text: str) -> date | datetime:
    """A FHIR date/dateTime string → ``date`` (date-only) or ``datetime`` (naive when no offset).

    Partial dates (``2025``, ``2025-03``) stand for their first day. Raises ValueError when not a dateTime.
    """
    m = DATETIME_RE.match(text)
    if not m:
        raise ValueError(f"not a FHIR dateTime: {text!r}")
    if m.group("t") is None:
        return date(int(m.group("y")), int(m.group("m") or 1), int(m.group("d") or 1))
    value = text.replace("Z", "+00:00")
    parsed = datetime.fromisoformat(value)
    if parsed.second == 60:  # pragma: no cover - leap second, keep the day
        parsed = parsed.replace(second=59)
    return parsed


def to_local_date(value: date | datetime, tz: str) -> date:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.date()
        return value.astimezone(zone(tz)).date()
    return value


def local_date(text: str | None, tz: str) -> date | None:
    """The calendar date, in ``tz``, of a FHIR date/dateTime string; None for absent or unreadable text."""
    if not text:
        return None
    try:
        return to_local_date(parse_datetime(text), tz)
    except ValueError:
        return None


def sort_instant(text: str | None, tz: str) -> tuple[date, str]:
    """A key that orders signed dates: the local date first, then the time of day when one was given."""
    day = local_date(text, tz) or date.min
    if text and "T" in text:
        parsed = parse_datetime(text)
        if isinstance(parsed, datetime):
            aware = parsed if parsed.tzinfo else parsed.replace(tzinfo=zone(tz))
            return (day, aware.astimezone(zone(tz)).time().isoformat())
    return (day, "")


def within(day: date, start: date | None, end: date | None) -> bool:
    """Whether ``day`` lies in [start, end], an absent bound being open."""
    return (start is None or start <= day) and (end is None or day <= end)


def now_date(tz: str) -> date:
    return datetime.now(zone(tz)).date()
