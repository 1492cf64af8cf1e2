"""Deadline reminders and the end of a policy's last day."""

from datetime import UTC, date, datetime, time
from typing import Any

import pytest

from scheduler import end_of_local_day, reminder_due


@pytest.mark.parametrize(
    ("apply_until", "days_before", "kwargs", "expected"),
    [
        pytest.param(date(2025, 6, 30), 3, {}, datetime(2025, 6, 27, 1, 0, tzinfo=UTC), id="09-shanghai"),
        pytest.param(date(2025, 6, 30), 0, {}, datetime(2025, 6, 30, 1, 0, tzinfo=UTC), id="last-day"),
        pytest.param(date(2025, 3, 2), 1, {}, datetime(2025, 3, 1, 1, 0, tzinfo=UTC), id="month-edge"),
        pytest.param(
            date(2025, 6, 30), 7, {"at": time(10, 30)}, datetime(2025, 6, 23, 2, 30, tzinfo=UTC), id="at"
        ),
        pytest.param(
            date(2024, 3, 12),
            2,
            {"tz": "America/New_York", "at": time(2, 30)},
            datetime(2024, 3, 10, 7, 0, tzinfo=UTC),  # 02:30 skipped: the jump to 03:00 EDT
            id="gap",
        ),
    ],
)
def test_reminder_due(
    apply_until: date, days_before: int, kwargs: dict[str, Any], expected: datetime
) -> None:
    assert reminder_due(apply_until, days_before, **kwargs) == expected


@pytest.mark.parametrize("days_before", [-1, True, 1.5])
def test_reminder_due_refuses_bad_days(days_before: int) -> None:
    with pytest.raises(ValueError, match="days_before"):
        reminder_due(date(2025, 6, 30), days_before)


def test_end_of_local_day() -> None:
    assert end_of_local_day(date(2025, 6, 30)) == datetime(2025, 6, 30, 16, 0, tzinfo=UTC)
    # Samoa skipped 2011-12-30, so the 29th ended when the clocks jumped to the 31st.
    assert end_of_local_day(date(2011, 12, 29), "Pacific/Apia") == datetime(2011, 12, 30, 10, 0, tzinfo=UTC)
