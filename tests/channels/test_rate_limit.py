"""Token bucket and daily quota: never exceeded, however many senders run at once."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import aiohttp
import pytest

from channels import (
    CHINA_TZ,
    AliyunSms,
    AliyunSmsConfig,
    DailyQuota,
    Limiter,
    Outcome,
    QuotaExhaustedError,
    RateLimit,
    TokenBucket,
    seconds_to_midnight,
)
from channels.simulators import AliyunSimConfig, AliyunSimulator
from tests.channels.helpers import FakeClock, sms


class FakeSleep:
    """Records requested sleeps and advances the fake clock instead of waiting."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.advance(seconds)


async def test_burst_is_free_then_each_token_waits_its_turn() -> None:
    clock = FakeClock(0.0)
    sleep = FakeSleep(clock)
    bucket = TokenBucket(10.0, burst=3, clock=clock, sleep=sleep)
    waits = [await bucket.acquire() for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(0.1) and waits[4] == pytest.approx(0.1)


async def test_concurrent_waiters_are_spaced_by_the_rate() -> None:
    clock = FakeClock(0.0)
    wakeups: list[float] = []

    async def sleep(seconds: float) -> None:
        wakeups.append(clock.now + seconds)  # each waiter sleeps until its own slot; the clock stays put

    bucket = TokenBucket(100.0, burst=1, clock=clock, sleep=sleep)
    await asyncio.gather(*(bucket.acquire() for _ in range(50)))
    assert sorted(wakeups) == pytest.approx([i / 100 for i in range(1, 50)])


async def test_cancelled_waiter_returns_its_reservation() -> None:
    bucket = TokenBucket(1.0, burst=1)
    await bucket.acquire()
    waiter = asyncio.ensure_future(bucket.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert bucket._tokens > -0.5  # the cancelled reservation was handed back


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        TokenBucket(0)


def test_daily_quota_resets_at_china_midnight() -> None:
    now = datetime(2024, 3, 1, 23, 59, tzinfo=CHINA_TZ)
    quota = DailyQuota(2, now=lambda: now)
    quota.take()
    quota.take()
    with pytest.raises(QuotaExhaustedError) as err:
        quota.take()
    assert err.value.retry_after_s == pytest.approx(60)
    assert quota.remaining == 0
    now += timedelta(minutes=2)
    quota.take(2)
    assert quota.remaining == 0


def test_quota_refuses_units_that_do_not_fit_without_spending() -> None:
    quota = DailyQuota(5)
    quota.take(4)
    with pytest.raises(QuotaExhaustedError):
        quota.take(2)
    quota.take(1)


def test_seconds_to_midnight_uses_china_time() -> None:
    utc_noon = datetime.fromisoformat("2024-03-01T12:00:00+00:00")  # 20:00 in China
    assert seconds_to_midnight(utc_noon) == 4 * 3600


async def test_measured_rate_at_the_simulator_stays_under_the_configured_rate() -> None:
    """Counted where the requests land. What the limiter guarantees whatever the load: by any moment T,
    at most ``burst + rate * (T - t0)`` requests have passed it (t0: its creation), so at most that many
    can have arrived. A busy machine only delays requests, which never breaks this bound, whereas a
    sliding window at the receiver would (requests held up together arrive together)."""
    rate, burst = 40.0, 4
    sim = AliyunSimulator(AliyunSimConfig())
    await sim.start()
    try:
        async with aiohttp.ClientSession() as session:
            t0 = time.monotonic()
            limiter = Limiter(RateLimit(requests_per_s=rate, burst=burst))
            config = AliyunSmsConfig("sim-access-key", "sim-access-secret", "盘锦政务", {"policy_notice": "SMS_900001"},
                                     base_url=sim.url + "/", use_batch=False)
            # several adapters (senders) share one limiter, as one process's workers would
            senders = [AliyunSms(config, session, limiter=limiter) for _ in range(4)]
            started = time.monotonic()
            batches = await asyncio.gather(*(senders[i % 4].send([sms(i)]) for i in range(40)))
            elapsed = time.monotonic() - started
    finally:
        await sim.close()
    assert all(b[0].outcome is Outcome.ACCEPTED for b in batches)  # waiting is not failing
    times = sorted(sim.request_times)
    assert len(times) == 40
    # the k-th arrival (1-based) came no sooner than the k-th token existed (1 ms: the clock's resolution)
    early = [(k, round(t - t0, 4)) for k, t in enumerate(times, 1) if k > burst + rate * (t - t0 + 0.001)]
    assert early == [], early
    assert elapsed >= (40 - burst) / rate * 0.95
