"""Calendar dates turned into instants: deadline reminders and the end of a policy's last day.

A policy's ``apply_until`` is a local calendar date (Asia/Shanghai by default, design.md); these
functions say when, in UTC, things tied to that date happen.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ._localtime import first_instant, zone_of

__all__ = ["end_of_local_day", "reminder_due"]

# 09:00 is inside every sensible send window and early enough that a same-day office visit is possible.
DEFAULT_REMINDER_AT = time(9, 0)


def reminder_due(
    apply_until: date,
    days_before: int,
    tz: str | ZoneInfo = "Asia/Shanghai",
    *,
    at: time = DEFAULT_REMINDER_AT,
) -> datetime:
    """When (UTC) to remind about a deadline: ``days_before`` days before ``apply_until``, at ``at``
    local time. ``days_before=0`` reminds on the last day itself.

    The result is a due time, not a send time: the caller still passes it through quiet hours and
    the cap (``earliest_send_time``), which matters only if ``at`` is set inside quiet hours.
    """
    if isinstance(days_before, bool) or not isinstance(days_before, int) or days_before < 0:
        raise ValueError(f"days_before must be an integer >= 0, got {days_before!r}")
    return first_instant(apply_until - timedelta(days=days_before), at, zone_of(tz))


def end_of_local_day(day: date, tz: str | ZoneInfo = "Asia/Shanghai") -> datetime:
    """The first instant (UTC) after local calendar ``day``: a policy open ``apply_until=day`` is
    closed from this moment, and what is still unsent for it is cancelled."""
    return first_instant(day + timedelta(days=1), time(0, 0), zone_of(tz))
