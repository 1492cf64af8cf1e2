"""What validation needs besides the record: reference tables, limits, and "today"."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from policy_push.refdata import ReferenceData, load_reference_data

__all__ = ["LOCAL_TZ", "ValidationContext", "local_today"]

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def local_today() -> dt.date:
    return dt.datetime.now(LOCAL_TZ).date()


@dataclass(frozen=True, slots=True)
class ValidationContext:
    ref: ReferenceData = field(default_factory=load_reference_data)
    max_text_chars: int = 200_000
    max_short_text_chars: int = 2_000
    max_criteria_depth: int = 32
    today: dt.date = field(default_factory=local_today)
    #: records read back from storage: codes withdrawn since they were stored must not fail
    trusted: bool = False
