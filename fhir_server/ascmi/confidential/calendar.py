"""Due dates in California calendar days (ASCMI.md §5 "Calendar", §6).

A plan must act within 7 calendar days of an electronic or phone request and 14 of one by first-class mail.
Calendar days, not business days: weekends and holidays count. "The day" is a date in the server's time zone
(default America/Los_Angeles), so an instant late on a December evening in California is still that day there,
though it is already the next day in UTC.

>>> due_date(date(2026, 12, 4), "mail")  # a Friday in December
datetime.date(2026, 12, 18)
>>> due_date(date(2026, 12, 4), "phone")
datetime.date(2026, 12, 11)
>>> local_day(datetime(2026, 12, 5, 6, 30, tzinfo=UTC), "America/Los_Angeles")  # 22:30 on the 4th in LA
datetime.date(2026, 12, 4)
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

#: Calendar days to act, by how the request arrived (Civil Code §56.107(b)(2)).
DAYS_TO_ACT = {"electronic": 7, "phone": 7, "mail": 14}

__all__ = ["DAYS_TO_ACT", "UTC", "due_date", "local_day"]


def due_date(received: date, via: str) -> date:
    """The last day to act on a request received on ``received`` by ``via``."""
    return received + timedelta(days=DAYS_TO_ACT[via])


def local_day(instant: datetime, tz: str) -> date:
    """The calendar date of ``instant`` in ``tz`` (a naive instant is read in ``tz``)."""
    zone = ZoneInfo(tz)
    if instant.tzinfo is None:
        return instant.date()
    return instant.astimezone(zone).date()
