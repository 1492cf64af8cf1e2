"""Clocks: system, frozen by hand, and scaled for the demo."""

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler import Clock, FrozenClock, ScaledClock, SystemClock

START = datetime(2025, 3, 3, 20, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_all_clocks_are_clocks() -> None:
    for clock in (SystemClock(), FrozenClock(START), ScaledClock(10)):
        assert isinstance(clock, Clock)


def test_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


async def test_frozen_clock_moves_only_by_hand() -> None:
    clock = FrozenClock(START)
    assert clock.now() == START
    assert clock.now().tzinfo is UTC
    assert clock.advance(timedelta(hours=1)) == START + timedelta(hours=1)
    assert clock.advance(30) == START + timedelta(hours=1, seconds=30)
    await clock.sleep(60)
    assert clock.now() == START + timedelta(hours=1, seconds=90)
    clock.set(START)
    assert clock.now() == START
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="aware"):
        FrozenClock(datetime(2025, 3, 3))


def test_scaled_clock_runs_factor_times_faster() -> None:
    real = [100.0]
    clock = ScaledClock(600, START, monotonic=lambda: real[0])
    assert clock.now() == START
    real[0] += 1.5
    assert clock.now() == START + timedelta(seconds=900)
    assert clock.real_seconds(60) == pytest.approx(0.1)


async def test_scaled_clock_sleep_takes_scaled_real_time() -> None:
    clock = ScaledClock(1000)
    before_sim, before_real = clock.now(), time.monotonic()
    await clock.sleep(100)  # 100 simulated seconds = 0.1 real
    elapsed = time.monotonic() - before_real
    assert 0.09 <= elapsed < 1.0
    assert clock.now() - before_sim >= timedelta(seconds=90)


def test_scaled_clock_passes_a_night_in_a_minute() -> None:
    # The demo's arithmetic: an 11-hour quiet period at factor 660 is one real minute.
    assert ScaledClock(660).real_seconds(11 * 3600) == pytest.approx(60)


@pytest.mark.parametrize("factor", [0, -1])
def test_scaled_clock_needs_positive_factor(factor: float) -> None:
    with pytest.raises(ValueError, match="factor"):
        ScaledClock(factor)
