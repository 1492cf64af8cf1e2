"""Quiet hours and send windows: fixed datetimes, then properties over many zones."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler import QuietHours, SendWindows, next_send_time

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
DEFAULT = QuietHours()


def sh(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0, us: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, us, tzinfo=SH)


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(sh(2025, 3, 3, 20, 59, 59), sh(2025, 3, 3, 20, 59, 59), id="just-before-21"),
        pytest.param(sh(2025, 3, 3, 21, 0), sh(2025, 3, 4, 8, 0), id="exactly-21-is-quiet"),
        pytest.param(sh(2025, 3, 3, 23, 30), sh(2025, 3, 4, 8, 0), id="evening-waits-for-tomorrow"),
        pytest.param(sh(2025, 3, 4, 0, 0), sh(2025, 3, 4, 8, 0), id="midnight-waits-for-today"),
        pytest.param(sh(2025, 3, 4, 7, 59, 59, 999999), sh(2025, 3, 4, 8, 0), id="just-before-08"),
        pytest.param(sh(2025, 3, 4, 8, 0), sh(2025, 3, 4, 8, 0), id="exactly-08-may-send"),
        pytest.param(sh(2025, 3, 4, 12, 0), sh(2025, 3, 4, 12, 0), id="midday"),
        pytest.param(sh(2025, 12, 31, 22, 0), sh(2026, 1, 1, 8, 0), id="new-year"),
        pytest.param(sh(2024, 2, 28, 21, 0), sh(2024, 2, 29, 8, 0), id="leap-day"),
        pytest.param(utc(2025, 3, 3, 13, 30), utc(2025, 3, 4, 0, 0), id="utc-input-judged-in-shanghai"),
    ],
)
def test_default_quiet_hours(now: datetime, expected: datetime) -> None:
    result = next_send_time(now, DEFAULT)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        (time(20, 59, 59), False),
        (time(21, 0), True),
        (time(23, 59, 59), True),
        (time(0, 0), True),
        (time(7, 59, 59), True),
        (time(8, 0), False),
        (time(14, 0), False),
    ],
)
def test_is_quiet_edges(local: time, quiet: bool) -> None:
    assert DEFAULT.is_quiet(datetime.combine(datetime(2025, 3, 3), local, tzinfo=SH)) is quiet


def test_urgent_bypasses_quiet_hours() -> None:
    now = sh(2025, 3, 3, 23, 0)
    assert next_send_time(now, DEFAULT, urgent=True) == now


def test_no_quiet_hours() -> None:
    now = sh(2025, 3, 3, 23, 0)
    assert next_send_time(now, None) == now


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (sh(2025, 3, 3, 11, 59), sh(2025, 3, 3, 11, 59)),
        (sh(2025, 3, 3, 12, 0), sh(2025, 3, 3, 14, 0)),
        (sh(2025, 3, 3, 13, 59), sh(2025, 3, 3, 14, 0)),
        (sh(2025, 3, 3, 14, 0), sh(2025, 3, 3, 14, 0)),
        (sh(2025, 3, 3, 23, 0), sh(2025, 3, 3, 23, 0)),
    ],
)
def test_window_within_one_day(now: datetime, expected: datetime) -> None:
    assert next_send_time(now, QuietHours(time(12, 0), time(14, 0))) == expected


@pytest.mark.parametrize("hour", [0, 8, 12, 21, 23])
def test_empty_window_is_never_quiet(hour: int) -> None:
    empty = QuietHours(time(8, 0), time(8, 0))
    now = sh(2025, 3, 3, hour, 0)
    assert empty.is_empty
    assert not empty.is_quiet(now)
    assert next_send_time(now, empty) == now


@pytest.mark.parametrize(
    ("quiet", "now", "expected"),
    [
        pytest.param(
            QuietHours(time(21), time(8), "America/New_York"),
            datetime(2024, 3, 9, 22, 0, tzinfo=NY),
            utc(2024, 3, 10, 12, 0),  # 08:00 EDT, the clocks went forward overnight
            id="ny-overnight-across-spring-forward",
        ),
        pytest.param(
            QuietHours(time(21), time(2, 30), "America/New_York"),
            datetime(2024, 3, 9, 23, 0, tzinfo=NY),
            utc(2024, 3, 10, 7, 0),  # 02:30 never happens: the jump to 03:00 EDT ends quiet
            id="ny-end-in-gap",
        ),
        pytest.param(
            QuietHours(time(21), time(1, 30), "America/New_York"),
            datetime(2024, 11, 2, 23, 0, tzinfo=NY),
            utc(2024, 11, 3, 5, 30),  # first 01:30 (EDT)
            id="ny-end-in-fold-first",
        ),
        pytest.param(
            QuietHours(time(21), time(1, 30), "America/New_York"),
            utc(2024, 11, 3, 6, 10),  # 01:10 EST, the repeated hour: quiet again
            utc(2024, 11, 3, 6, 30),  # second 01:30 (EST)
            id="ny-end-in-fold-second",
        ),
        pytest.param(
            QuietHours(time(21), time(8), "Pacific/Apia"),
            datetime(2011, 12, 29, 22, 0, tzinfo=ZoneInfo("Pacific/Apia")),
            utc(2011, 12, 30, 18, 0),  # Samoa skipped 30 December: 08:00 on the 31st (+14)
            id="apia-skipped-day",
        ),
    ],
)
def test_dst_and_skipped_days(quiet: QuietHours, now: datetime, expected: datetime) -> None:
    result = next_send_time(now, quiet)
    assert result == expected
    assert not quiet.is_quiet(result)
    assert quiet.is_quiet(result - timedelta(seconds=1))


def test_send_windows_per_channel() -> None:
    windows = SendWindows(
        {"sms": QuietHours(), "wechat": QuietHours(time(22), time(7)), "app": None},
        default=QuietHours(time(20), time(9)),
    )
    now = sh(2025, 3, 3, 21, 30)
    assert windows.next_send_time("sms", now) == sh(2025, 3, 4, 8, 0)
    assert windows.next_send_time("wechat", now) == now
    assert windows.next_send_time("app", now) == now
    assert windows.next_send_time("email", now) == sh(2025, 3, 4, 9, 0)
    assert windows.next_send_time("sms", now, urgent=True) == now
    assert windows.for_channel("app") is None


def test_send_windows_default_is_shanghai_21_to_08() -> None:
    assert SendWindows().for_channel("sms") == QuietHours(time(21), time(8), "Asia/Shanghai")


def test_send_windows_copy_their_mapping() -> None:
    mapping: dict[str, QuietHours | None] = {"sms": QuietHours()}
    windows = SendWindows(mapping)
    mapping["sms"] = None
    assert windows.for_channel("sms") == QuietHours()


def test_send_windows_refuse_other_values() -> None:
    with pytest.raises(TypeError, match="sms"):
        SendWindows({"sms": "21:00-08:00"})  # type: ignore[dict-item]


def test_bad_quiet_hours() -> None:
    with pytest.raises(ZoneInfoNotFoundError):
        QuietHours(tz="Asia/Nowhere")
    with pytest.raises(ValueError, match="naive local time"):
        QuietHours(start=time(21, tzinfo=UTC))


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_send_time(datetime(2025, 3, 3, 22, 0), DEFAULT)


# -- properties -------------------------------------------------------------------------------

ZONES = [
    "Asia/Shanghai",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Pacific/Apia",  # skipped a whole day in 2011
    "America/Santiago",
    "Asia/Kolkata",
]
# Instants where the listed zone changes offset, to aim the properties at the hard cases.
TRANSITIONS = [
    ("America/New_York", utc(2024, 3, 10, 7)),
    ("America/New_York", utc(2024, 11, 3, 6)),
    ("Europe/London", utc(2024, 3, 31, 1)),
    ("Europe/London", utc(2024, 10, 27, 1)),
    ("Australia/Lord_Howe", utc(2024, 4, 6, 15)),
    ("Australia/Lord_Howe", utc(2024, 10, 5, 15, 30)),
    ("Pacific/Apia", utc(2011, 12, 30, 10)),
]

local_times = st.builds(time, st.integers(0, 23), st.integers(0, 59))
instants = st.datetimes(
    min_value=datetime(1995, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)
near_transitions = st.sampled_from(TRANSITIONS).flatmap(
    lambda zt: st.tuples(
        st.just(zt[0]), st.integers(-36 * 3600, 36 * 3600).map(lambda s: zt[1] + timedelta(seconds=s))
    )
)
zone_and_now = st.one_of(st.tuples(st.sampled_from(ZONES), instants), near_transitions)


@settings(max_examples=400, deadline=None)
@given(zone_now=zone_and_now, start=local_times, end=local_times, urgent=st.booleans())
def test_next_send_time_is_never_quiet_never_early_and_earliest(
    zone_now: tuple[str, datetime], start: time, end: time, urgent: bool
) -> None:
    tz, now = zone_now
    quiet = QuietHours(start, end, tz)
    result = next_send_time(now, quiet, urgent=urgent)
    assert result >= now
    assert result.tzinfo is UTC
    if urgent:
        assert result == now
        return
    assert not quiet.is_quiet(result)
    if result > now:
        # Earliest: everything between now and the result was quiet.
        assert quiet.is_quiet(now)
        assert quiet.is_quiet(result - timedelta(microseconds=1))
