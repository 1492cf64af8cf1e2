"""Quiet hours and per-channel send windows, as pure functions of ``now``.

Nothing here reads a clock (arq's ``next_cron`` habit): the caller passes ``now`` and gets back the
earliest moment a message may go out, so tests use fixed datetimes and never sleep.

A quiet period is the half-open local interval ``[start, end)``: at exactly 21:00 it is quiet, at
exactly 08:00 sending may resume. ``start > end`` crosses midnight (21:00-08:00); ``start < end``
lies within one day (12:00-14:00); ``start == end`` is an empty window (never quiet).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

from ._localtime import as_utc, instants_of, zone_of

__all__ = ["QuietHours", "SendWindows", "next_send_time"]

# Each step of next_send_time lands on a quiet period's end; more than a few steps means the zone
# data is doing something no real zone does, and looping forever would hide it.
_MAX_STEPS = 8


@dataclass(frozen=True)
class QuietHours:
    """Local hours during which nothing is sent unless the policy is urgent (design.md invariant 5).

    >>> QuietHours()  # the default: 21:00-08:00 Asia/Shanghai
    QuietHours(start=datetime.time(21, 0), end=datetime.time(8, 0), tz='Asia/Shanghai')
    """

    start: time = time(21, 0)
    end: time = time(8, 0)
    tz: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None:
                raise ValueError(f"QuietHours.{name} must be a naive local time, got {value!r}")
        zone_of(self.tz)  # raises ZoneInfoNotFoundError naming the zone, now rather than at 21:00

    @property
    def zone(self) -> ZoneInfo:
        return zone_of(self.tz)

    @property
    def is_empty(self) -> bool:
        return self.start == self.end

    def is_quiet(self, now: datetime) -> bool:
        """Whether ``now`` (aware) falls inside the quiet period, judged by the local wall clock."""
        return self._is_quiet_at(as_utc(now).astimezone(self.zone).time())

    def _is_quiet_at(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        if self.start > self.end:
            return local >= self.start or local < self.end
        return False

    def _end_after(self, now_utc: datetime) -> datetime:
        """The first instant after ``now_utc`` (which is quiet) at which the wall clock reaches the end."""
        local = now_utc.astimezone(self.zone)
        day = local.date()
        if self.start > self.end and local.time() >= self.start:
            day += timedelta(days=1)  # evening part of an overnight window: it ends tomorrow
        candidates = instants_of(datetime.combine(day, self.end), self.zone)
        # In a fold the end time happens twice; the first occurrence may already be behind us.
        later = [c for c in candidates if c > now_utc]
        return later[0] if later else candidates[-1]


def next_send_time(now: datetime, quiet: QuietHours | None, *, urgent: bool = False) -> datetime:
    """The earliest instant at or after ``now`` outside ``quiet`` hours, in UTC.

    ``quiet=None`` means the channel has no quiet hours; ``urgent=True`` bypasses them (design.md
    invariant 5 allows it for policies marked urgent). Returns ``now`` (as UTC) when sending is
    already allowed. DST-safe: a quiet end that falls in a gap resolves to the jump, one that falls
    in a fold to its first occurrence after ``now``.
    """
    t = as_utc(now)
    if quiet is None or urgent or quiet.is_empty:
        return t
    for _ in range(_MAX_STEPS):
        if not quiet.is_quiet(t):
            return t
        t = quiet._end_after(t)
    raise RuntimeError(f"no send time found after {now.isoformat()} for {quiet!r}; check the zone data")


@dataclass(frozen=True)
class SendWindows:
    """Quiet hours per channel, with a default for channels not named.

    ``SendWindows({"sms": QuietHours(), "app": None}, default=QuietHours(time(22), time(8)))``:
    a channel mapped to ``None`` has no quiet hours.
    """

    windows: Mapping[str, QuietHours | None] = field(default_factory=dict)
    default: QuietHours | None = QuietHours()

    def __post_init__(self) -> None:
        for channel, quiet in {**self.windows, "(default)": self.default}.items():
            if quiet is not None and not isinstance(quiet, QuietHours):
                raise TypeError(f"SendWindows[{channel!r}] must be QuietHours or None, got {quiet!r}")
        # A read-only copy: the caller's dict changing later must not change a frozen value.
        object.__setattr__(self, "windows", MappingProxyType(dict(self.windows)))

    def for_channel(self, channel: str) -> QuietHours | None:
        return self.windows.get(channel, self.default)

    def next_send_time(self, channel: str, now: datetime, *, urgent: bool = False) -> datetime:
        """``next_send_time`` with this channel's quiet hours."""
        return next_send_time(now, self.for_channel(channel), urgent=urgent)
