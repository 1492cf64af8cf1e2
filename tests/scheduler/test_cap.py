"""The frequency cap: fixed cases at the edges, then properties against a brute-force check."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler import FrequencyCap

CAP = FrequencyCap()  # 3 in any 7 days
MON = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
US = timedelta(microseconds=1)


def within_cap(sends: Sequence[datetime], limit: int, period: timedelta) -> bool:
    """Brute force: no half-open window of length period holds more than limit sends."""
    s = sorted(sends)
    return all(s[i + limit] - s[i] >= period for i in range(len(s) - limit))


THREE = [MON, MON + DAY, MON + 2 * DAY]


@pytest.mark.parametrize(
    ("now", "sends", "expected"),
    [
        pytest.param(MON, [], MON, id="no-sends"),
        pytest.param(MON + 3 * DAY, THREE[:2], MON + 3 * DAY, id="two-of-three"),
        pytest.param(MON + 3 * DAY, THREE, MON + 7 * DAY, id="fourth-waits-for-first-to-leave"),
        pytest.param(MON + 7 * DAY - US, THREE, MON + 7 * DAY, id="a-microsecond-early"),
        pytest.param(MON + 7 * DAY, THREE, MON + 7 * DAY, id="exactly-a-week-later"),
        pytest.param(MON + 3 * DAY, list(reversed(THREE)), MON + 7 * DAY, id="any-order"),
        pytest.param(MON + 9 * DAY, [MON - 30 * DAY, *THREE], MON + 9 * DAY, id="old-sends-do-not-count"),
        pytest.param(
            MON + 3 * DAY, [*THREE, MON + 7 * DAY], MON + 8 * DAY, id="an-already-booked-slot-is-taken"
        ),
        pytest.param(
            MON,
            [MON + DAY, MON + 2 * DAY, MON + 3 * DAY],
            MON + 8 * DAY,  # only once the earliest booked send is a week behind
            id="three-booked-ahead",
        ),
    ],
)
def test_default_cap(now: datetime, sends: list[datetime], expected: datetime) -> None:
    result = CAP.next_allowed(now, sends)
    assert result == expected
    assert within_cap([*sends, result], 3, timedelta(days=7))


def test_over_cap_waits_rather_than_drops() -> None:
    """The fourth, fifth and sixth deliveries of a week each get a later slot, none is lost."""
    sends = list(THREE)
    now = MON + 2 * DAY + timedelta(hours=1)
    for expected in (MON + 7 * DAY, MON + 8 * DAY, MON + 9 * DAY):
        slot = CAP.next_allowed(now, sends)
        assert slot == expected
        sends.append(slot)
    assert within_cap(sends, 3, timedelta(days=7))


@pytest.mark.parametrize(
    ("sends", "expected"),
    [
        pytest.param([MON - 6 * DAY, MON + 6 * DAY], MON, id="neighbours-far-enough-apart"),
        pytest.param([MON - DAY, MON + DAY], MON + 6 * DAY, id="squeezed-between-neighbours"),
    ],
)
def test_past_and_booked_sends_together(sends: list[datetime], expected: datetime) -> None:
    cap = FrequencyCap(limit=2)
    assert cap.next_allowed(MON, sends) == expected


def test_allows() -> None:
    assert CAP.allows(MON + 7 * DAY, THREE)
    assert not CAP.allows(MON + 7 * DAY - US, THREE)


@pytest.mark.parametrize(
    ("limit", "period"),
    [(0, timedelta(days=7)), (True, timedelta(days=7)), (3, timedelta(0)), (3, timedelta(days=-1))],
)
def test_bad_cap(limit: int, period: timedelta) -> None:
    with pytest.raises(ValueError, match="FrequencyCap"):
        FrequencyCap(limit, period)


def test_naive_send_is_refused() -> None:
    with pytest.raises(ValueError, match="previous_sends"):
        CAP.next_allowed(MON, [datetime(2025, 3, 3)] * 3)


# -- properties -------------------------------------------------------------------------------


def _greedy_within_cap(offsets_min: list[int], cap: FrequencyCap) -> list[datetime]:
    """Sends at MON + offset, keeping only those that stay within the cap (the stored history is
    always one the cap allowed)."""
    sends: list[datetime] = []
    for offset in offsets_min:
        candidate = MON + timedelta(minutes=offset)
        if within_cap([*sends, candidate], cap.limit, cap.period):
            sends.append(candidate)
    return sends


caps = st.builds(
    FrequencyCap,
    st.integers(1, 4),
    st.sampled_from([timedelta(hours=3), timedelta(days=1), timedelta(days=7)]),
)
offsets = st.lists(st.integers(-15 * 24 * 60, 15 * 24 * 60), max_size=25)


@settings(max_examples=300, deadline=None)
@given(cap=caps, offsets_min=offsets, now_offset_min=st.integers(-10 * 24 * 60, 10 * 24 * 60))
def test_next_allowed_keeps_every_window_within_limit_and_is_earliest(
    cap: FrequencyCap, offsets_min: list[int], now_offset_min: int
) -> None:
    sends = _greedy_within_cap(offsets_min, cap)
    now = MON + timedelta(minutes=now_offset_min)
    result = cap.next_allowed(now, sends)
    assert result >= now
    assert within_cap([*sends, result], cap.limit, cap.period)
    if result > now:
        assert not within_cap([*sends, result - US], cap.limit, cap.period)
