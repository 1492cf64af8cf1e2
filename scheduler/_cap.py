"""The per-person frequency cap, as a pure function of ``now`` and the person's sends.

The cap counts every campaign and every channel together (the issue: "3 in any 7 days across all
campaigns"). A delivery over the cap is not dropped: it waits for ``next_allowed``.

"Any 7 days" means every half-open window ``[x, x + period)``: a send made exactly ``period`` after
another no longer shares a window with it. Equivalently, any ``limit + 1`` sends in time order
span at least ``period``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ._localtime import as_utc

__all__ = ["FrequencyCap"]


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``limit`` sends to one person in any window of length ``period``."""

    limit: int = 3
    period: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise ValueError(f"FrequencyCap.limit must be an integer >= 1, got {self.limit!r}")
        if not isinstance(self.period, timedelta) or self.period <= timedelta(0):
            raise ValueError(f"FrequencyCap.period must be a positive timedelta, got {self.period!r}")

    def next_allowed(self, now: datetime, previous_sends: Sequence[datetime]) -> datetime:
        """The earliest instant at or after ``now`` (UTC) at which one more send keeps every
        window within the limit; ``now`` itself when the send is allowed.

        ``previous_sends`` are the person's sends made *or already scheduled*, in any order: a
        delivery booked for tomorrow counts, so two planners cannot both take the last slot.
        Only windows containing the new send are checked; an older breach elsewhere is not ours
        to repair.
        """
        start = as_utc(now)
        sends = sorted(as_utc(s, "previous_sends item") for s in previous_sends)
        if len(sends) < self.limit:
            return start
        # Validity only changes from "no" to "yes" where some send drops out of reach, i.e. at
        # s + period, so those (and now) are the only candidates. The last one is always free.
        candidates = [start, *sorted({s + self.period for s in sends if s + self.period > start})]
        for candidate in candidates:
            if self._fits(candidate, sends):
                return candidate
        raise AssertionError("unreachable: the last candidate is a full period after every send")

    def allows(self, at: datetime, previous_sends: Sequence[datetime]) -> bool:
        """Whether a send at ``at`` keeps every window containing it within the limit."""
        return self._fits(as_utc(at, "at"), sorted(as_utc(s, "previous_sends item") for s in previous_sends))

    def _fits(self, t: datetime, sends: list[datetime]) -> bool:
        """``allows`` for UTC ``t`` and UTC ``sends`` already sorted."""
        near = [s for s in sends if abs(s - t) < self.period]
        # A window of length period holding t and `limit` others exists iff some `limit`
        # consecutive neighbours together with t span less than period (consecutive ones give the
        # tightest span).
        for i in range(len(near) - self.limit + 1):
            group = near[i : i + self.limit]
            if max(group[-1], t) - min(group[0], t) < self.period:
                return False
        return True
