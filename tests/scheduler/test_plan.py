"""Quiet hours and the cap combined, and sends spaced within a provider's rate."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler import FrequencyCap, QuietHours, earliest_send_time, next_send_time, spread

SH = ZoneInfo("Asia/Shanghai")
QUIET = QuietHours()
CAP = FrequencyCap()


def sh(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0, us: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, us, tzinfo=SH)


def test_without_a_cap_it_is_quiet_hours() -> None:
    now = sh(2025, 3, 3, 22, 0)
    assert earliest_send_time(now, quiet=QUIET, cap=None) == next_send_time(now, QUIET)


def test_cap_pushes_into_quiet_hours_then_quiet_hours_push_to_morning() -> None:
    # The first send of the week went out urgently at 23:00, so the cap frees up at 23:00 a week
    # later, which is quiet: the delivery waits for 08:00.
    sends = [sh(2025, 3, 3, 23, 0), sh(2025, 3, 4, 10, 0), sh(2025, 3, 5, 10, 0)]
    result = earliest_send_time(sh(2025, 3, 6, 12, 0), quiet=QUIET, cap=CAP, previous_sends=sends)
    assert result == sh(2025, 3, 11, 8, 0)


def test_quiet_hours_end_on_a_booked_slot_then_the_cap_moves_it() -> None:
    hourly = FrequencyCap(limit=1, period=timedelta(hours=1))
    booked = [sh(2025, 3, 7, 8, 0)]
    result = earliest_send_time(sh(2025, 3, 6, 22, 0), quiet=QUIET, cap=hourly, previous_sends=booked)
    assert result == sh(2025, 3, 7, 9, 0)


def test_urgent_bypasses_quiet_hours_but_not_the_cap() -> None:
    sends = [sh(2025, 3, 3, 23, 0), sh(2025, 3, 4, 10, 0), sh(2025, 3, 5, 10, 0)]
    now = sh(2025, 3, 5, 23, 0)
    assert earliest_send_time(now, quiet=QUIET, cap=None, urgent=True) == now
    result = earliest_send_time(now, quiet=QUIET, cap=CAP, previous_sends=sends, urgent=True)
    assert result == sh(2025, 3, 10, 23, 0)


@settings(max_examples=200, deadline=None)
@given(
    offsets_h=st.lists(st.integers(-10 * 24, 10 * 24), max_size=12),
    now_h=st.integers(-5 * 24, 5 * 24),
    start=st.integers(0, 23),
    end=st.integers(0, 23),
    urgent=st.booleans(),
)
def test_earliest_send_time_satisfies_both(
    offsets_h: list[int], now_h: int, start: int, end: int, urgent: bool
) -> None:
    base = sh(2025, 3, 3, 0, 0)
    quiet = QuietHours(time(start), time(end))
    sends: list[datetime] = []
    for h in offsets_h:  # a history the cap allowed
        at = base + timedelta(hours=h)
        if CAP.allows(at, sends):
            sends.append(at)
    now = base + timedelta(hours=now_h, minutes=17)
    result = earliest_send_time(now, quiet=quiet, cap=CAP, previous_sends=sends, urgent=urgent)
    assert result >= now
    assert CAP.allows(result, sends)
    assert urgent or not quiet.is_quiet(result)


def test_spread_spacing() -> None:
    start = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
    assert spread(0, 10, start) == []
    assert spread(4, 2, start) == [start + timedelta(seconds=s) for s in (0, 0.5, 1, 1.5)]


@pytest.mark.parametrize("rate", [1, 3, 7, 50, 0.5])
def test_spread_never_exceeds_the_rate_in_any_second(rate: float) -> None:
    start = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
    slots = spread(200, rate, start)
    assert slots == sorted(slots)
    limit = max(1, int(rate))
    for i, slot in enumerate(slots):
        in_window = sum(1 for s in slots[i:] if s < slot + timedelta(seconds=1))
        assert in_window <= limit


def test_spread_skips_quiet_hours() -> None:
    slots = spread(3, 1, sh(2025, 3, 3, 20, 59, 59), quiet=QUIET)
    assert slots == [sh(2025, 3, 3, 20, 59, 59), sh(2025, 3, 4, 8, 0, 0), sh(2025, 3, 4, 8, 0, 1)]
    assert spread(1, 1, sh(2025, 3, 3, 23, 0), quiet=QUIET) == [sh(2025, 3, 4, 8, 0)]


@pytest.mark.parametrize(("n", "rate"), [(-1, 1.0), (1, 0.0), (1, -2.0)])
def test_spread_refuses_bad_arguments(n: int, rate: float) -> None:
    with pytest.raises(ValueError, match="spread"):
        spread(n, rate, datetime(2025, 3, 3, tzinfo=UTC))
