"""Planning send times: quiet hours and the frequency cap together, and spacing within a rate.

Pure functions of their arguments, like ``_windows`` and ``_cap``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from ._cap import FrequencyCap
from ._localtime import as_utc
from ._windows import QuietHours, next_send_time

__all__ = ["earliest_send_time", "spread"]

# Each round moves the time strictly forward to a cap boundary or a quiet-hours end; the cap's
# boundaries are finite (one per send), so real inputs settle in a handful of rounds.
_MAX_ROUNDS = 10_000


def earliest_send_time(
    now: datetime,
    *,
    quiet: QuietHours | None,
    cap: FrequencyCap | None,
    previous_sends: Sequence[datetime] = (),
    urgent: bool = False,
) -> datetime:
    """The earliest instant at or after ``now`` (UTC) that is outside quiet hours and within the cap.

    ``urgent`` bypasses quiet hours only: the cap still holds (design.md invariant 5 names no
    exception to it). Moving past quiet hours can land on a time the cap forbids (scheduled sends
    count) and the reverse, so the two are applied in turn until neither moves the time.
    """
    t = as_utc(now)
    sends = [as_utc(s, "previous_sends item") for s in previous_sends]
    for _ in range(_MAX_ROUNDS):
        allowed = cap.next_allowed(t, sends) if cap is not None else t
        settled = next_send_time(allowed, quiet, urgent=urgent)
        if settled == t:
            return t
        t = settled
    raise RuntimeError(f"no send time settled after {now.isoformat()} within {_MAX_ROUNDS} rounds")


def spread(n: int, rate_per_s: float, start: datetime, *, quiet: QuietHours | None = None) -> list[datetime]:
    """``n`` send times (UTC) from ``start`` spaced so no more than ``rate_per_s`` fall in any second.

    Slot ``k`` sits at ``start + ceil(k / rate_per_s)`` microseconds, computed from the anchor rather
    than by adding a rounded step ``n`` times, so rounding never drifts above the rate. With
    ``quiet``, a slot that lands in quiet hours moves to their end and the spacing restarts there.
    """
    if n < 0:
        raise ValueError(f"spread needs n >= 0, got {n}")
    if not rate_per_s > 0:
        raise ValueError(f"spread needs rate_per_s > 0, got {rate_per_s}")
    anchor = next_send_time(start, quiet)
    slots: list[datetime] = []
    k = 0
    for _ in range(n):
        slot = anchor + timedelta(microseconds=math.ceil(k * 1_000_000 / rate_per_s))
        if quiet is not None and quiet.is_quiet(slot):
            anchor, k = next_send_time(slot, quiet), 0
            slot = anchor
        slots.append(slot)
        k += 1
    return slots
