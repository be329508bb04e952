"""Server timestamps: FHIR instants in UTC at millisecond precision, and their HTTP-date form.

The fixed format (``2026-11-23T14:41:28.123Z``) makes text order equal time order, which both stores rely on.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

_FHIR_DATETIME = re.compile(
    r"^(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})(T(?P<H>\d{2}):(?P<M>\d{2})(:(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def now() -> str:
    return format_instant(datetime.now(UTC))


def format_instant(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_datetime(value: str) -> datetime | None:
    """A FHIR date/dateTime/instant → an aware datetime (start of its precision; no zone → UTC)."""
    match = _FHIR_DATETIME.match(value.strip()) if isinstance(value, str) else None
    if not match:
        return None
    g = match.groupdict()
    text = f"{g['y']}-{g['m'] or '01'}-{g['d'] or '01'}T{g['H'] or '00'}:{g['M'] or '00'}:{g['S'] or '00'}"
    if g["f"]:
        text += (g["f"] + "000000")[:7]
    tz = g["tz"] or "Z"
    text += "+00:00" if tz == "Z" else tz
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def to_instant(value: str) -> str | None:
    """Normalise a client-given date/dateTime/instant to the stored instant format, or None if invalid."""
    parsed = parse_datetime(value)
    try:
        return None if parsed is None else format_instant(parsed)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is past year 9999 in UTC
        return None


def http_date(instant: str) -> str:
    """``Last-Modified`` value for a stored instant."""
    return format_datetime(datetime.fromisoformat(instant.replace("Z", "+00:00")), usegmt=True)


def parse_http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
