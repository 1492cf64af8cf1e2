"""Clocks: where "now" comes from, so that tests and the demo can bend time.

``SystemClock`` is real time. ``FrozenClock`` stands still until a test moves it. ``ScaledClock``
runs simulated time ``factor`` times faster than real time, so the demo's overnight quiet period
(11 hours) passes in about a minute at factor 660.

Every ``now()`` is an aware UTC datetime (storage is UTC, design.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from ._checks import positive
from ._localtime import as_utc

__all__ = ["Clock", "FrozenClock", "ScaledClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Where the application and the ticks get the time."""

    def now(self) -> datetime:
        """The current simulated instant, aware, in UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of simulated time."""
        ...

    def real_seconds(self, seconds: float) -> float:
        """How many real seconds ``seconds`` of simulated time take (used to scale tick intervals)."""
        ...


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def real_seconds(self, seconds: float) -> float:
        return seconds

    def __repr__(self) -> str:
        return "SystemClock()"


class FrozenClock:
    """Time that moves only when told: ``advance`` / ``set`` by hand, or ``sleep``.

    ``sleep`` advances the clock by the requested time and yields once to the event loop instead of
    waiting, so code that sleeps until a quiet period ends runs instantly in tests. Tick intervals
    are not scaled (``real_seconds`` is the identity): with a frozen clock, tests call
    ``TickScheduler.run_once`` after moving the clock rather than waiting for the timer.
    """

    def __init__(self, at: datetime) -> None:
        self._now = as_utc(at, "at")

    def now(self) -> datetime:
        return self._now

    def set(self, at: datetime) -> None:
        self._now = as_utc(at, "at")

    def advance(self, by: timedelta | float) -> datetime:
        """Move forward by a timedelta or a number of seconds; returns the new now."""
        delta = by if isinstance(by, timedelta) else timedelta(seconds=by)
        if delta < timedelta(0):
            raise ValueError(f"a clock does not run backwards: advance({by!r})")
        self._now += delta
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)

    def real_seconds(self, seconds: float) -> float:
        return seconds

    def __repr__(self) -> str:
        return f"FrozenClock({self._now.isoformat()})"


class ScaledClock:
    """Simulated time running ``factor`` times faster than real time, from ``start`` (default: the
    real now at construction).

    Elapsed time is measured with a monotonic counter, so a wall-clock step (NTP, a suspended
    laptop) does not make simulated time jump. ``monotonic`` is injectable for tests.
    """

    def __init__(
        self,
        factor: float,
        start: datetime | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.factor = positive(factor, "ScaledClock factor")
        self._start = as_utc(start, "start") if start is not None else datetime.now(UTC)
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> datetime:
        elapsed_real = self._monotonic() - self._origin
        return self._start + timedelta(seconds=elapsed_real * self.factor)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(self.real_seconds(max(seconds, 0.0)))

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.factor

    def __repr__(self) -> str:
        return f"ScaledClock(factor={self.factor}, start={self._start.isoformat()})"
