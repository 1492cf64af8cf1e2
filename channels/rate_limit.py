"""Per-provider rate limiting: a token bucket for requests and a daily quota for messages.

Both are shared by every coroutine sending through one adapter, so the configured rate holds however
many senders run at once. Waiting for a token is not a failure and costs no retry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from channels.errors import QuotaExhaustedError

__all__ = ["CHINA_TZ", "DailyQuota", "Limiter", "RateLimit", "TokenBucket", "seconds_to_midnight"]

#: China has one time zone and no daylight saving, so a fixed offset avoids needing tzdata.
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def seconds_to_midnight(now: datetime) -> float:
    """Seconds from ``now`` to the next midnight in China, when provider daily quotas reset."""
    local = now.astimezone(CHINA_TZ)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - local).total_seconds()


class TokenBucket:
    """Async token bucket: ``rate_per_s`` sustained, up to ``burst`` at once.

    Callers reserve tokens before waiting (the balance may go negative), so waiters are served in
    arrival order, each sleeping exactly until its own token exists: no thundering herd and no way
    for concurrent callers to overdraw the rate.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: float | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate_per_s must be > 0, got {rate_per_s}")
        self.rate_per_s = rate_per_s
        self.burst = burst if burst is not None else max(1.0, rate_per_s / 10)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate_per_s)
        self._stamp = now

    async def acquire(self, tokens: float = 1.0) -> float:
        """Take ``tokens``, waiting as long as needed; returns the seconds waited."""
        self._refill()
        self._tokens -= tokens
        if self._tokens >= 0:
            return 0.0
        wait_s = -self._tokens / self.rate_per_s
        try:
            await self._sleep(wait_s)
        except asyncio.CancelledError:
            self._tokens += tokens  # give the reservation back so later callers do not wait for it
            raise
        return wait_s


class DailyQuota:
    """At most ``limit`` units per China calendar day (providers reset their quotas at midnight)."""

    def __init__(self, limit: int, *, now: Callable[[], datetime] = lambda: datetime.now(CHINA_TZ)) -> None:
        self.limit = limit
        self._now = now
        self._day = now().astimezone(CHINA_TZ).date()
        self.used = 0

    def take(self, units: int = 1) -> None:
        """Spend ``units`` or raise ``QuotaExhaustedError`` (spending nothing) if they do not fit."""
        now = self._now()
        today = now.astimezone(CHINA_TZ).date()
        if today != self._day:
            self._day, self.used = today, 0
        if self.used + units > self.limit:
            raise QuotaExhaustedError(
                f"daily quota of {self.limit} used ({self.used} sent today)",
                code="QUOTA_EXHAUSTED",
                retry_after_s=seconds_to_midnight(now),
            )
        self.used += units

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Configuration of one provider's limits: requests per second (with burst) and messages per day."""

    requests_per_s: float
    burst: float | None = None
    messages_per_day: int | None = None


class Limiter:
    """The pair an adapter holds: quota checked first (fail fast), then the rate waited for."""

    def __init__(
        self,
        config: RateLimit,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(CHINA_TZ),
    ) -> None:
        self.config = config
        self.bucket = TokenBucket(config.requests_per_s, config.burst, clock=clock, sleep=sleep)
        self.quota = DailyQuota(config.messages_per_day, now=now) if config.messages_per_day else None

    async def acquire(self, messages: int = 1) -> float:
        """Reserve one request carrying ``messages``; returns the seconds waited for the rate."""
        if self.quota is not None:
            self.quota.take(messages)
        return await self.bucket.acquire(1.0)


def unlimited() -> Limiter:
    """A limiter that never waits in practice, for tests and simulators."""
    return Limiter(RateLimit(requests_per_s=1e9, burst=1e9))
