"""Wall-clock helpers shared by the pure time functions (private).

Everything here turns a *local wall-clock reading* into UTC instants without guessing: a wall time
may happen twice (a DST fold), or never (a DST gap, or a whole skipped day as in Pacific/Apia on
2011-12-30), and the callers need to know which instants are real.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__: list[str] = []

# A send time or a due time is stored in UTC (design.md), so every function hands back UTC.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def zone_of(tz: str | ZoneInfo) -> ZoneInfo:
    """The ZoneInfo for ``tz``; ZoneInfo caches instances, so this is cheap to call often."""
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def as_utc(value: datetime, name: str = "now") -> datetime:
    """``value`` converted to UTC; a naive datetime is refused, because guessing its zone is how
    a 21:00 Shanghai quiet hour turns into 05:00 in the morning."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a time-zone aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def instants_of(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants, in order, at which a clock in ``zone`` first reads ``wall`` (naive).

    Usually one instant; two in a DST fold (the hour repeats); in a gap, where the wall time never
    appears, the single instant at which the clock jumps past it.
    """
    found: list[datetime] = []
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == wall and instant not in found:
            found.append(instant)
    if found:
        return sorted(found)
    return [_gap_end(wall, zone)]


def first_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The first UTC instant at which the local clock reads ``day`` ``at`` (or has jumped past it)."""
    return instants_of(datetime.combine(day, at), zone)[0]


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The transition instant that skips over ``wall``.

    zoneinfo maps a skipped wall time with fold=0 through the offset before the jump and with
    fold=1 through the offset after it; the transition lies between the two results. zoneinfo does
    not expose transitions, so bisect on whole seconds (real transitions fall on whole seconds).
    """
    a = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    b = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    lo, hi = min(a, b), max(a, b)
    after = hi.astimezone(zone).utcoffset()
    lo_s = math.floor((lo - _EPOCH).total_seconds())
    hi_s = math.ceil((hi - _EPOCH).total_seconds())
    # Invariant: the offset at lo_s is the old one, the offset at hi_s is the new one.
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if (_EPOCH + timedelta(seconds=mid)).astimezone(zone).utcoffset() == after:
            hi_s = mid
        else:
            lo_s = mid
    return _EPOCH + timedelta(seconds=hi_s)
