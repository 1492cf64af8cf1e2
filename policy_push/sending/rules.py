"""The send rules from settings: quiet hours, the frequency cap, retries and leases.

Quiet hours and the cap decide a new row's ``not_before`` (:meth:`SendRules.plan`); the retry policy
(``channels.RetryPolicy``) how long a retryable failure waits and when attempts are used up; the lease
how long a claim outlives its worker's last sign of life (real seconds, on the database's clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from channels import RetryPolicy
from policy_push.config import Settings, hours_range
from policy_push.errors import ConfigurationError
from policy_push.statuses import Waiting
from scheduler import FrequencyCap, QuietHours, SendWindows, earliest_send_time, next_send_time

__all__ = ["SendRules", "parse_quiet_hours"]


def parse_quiet_hours(spec: str, tz: str) -> QuietHours | None:
    """``"21:00-08:00"`` -> QuietHours; empty -> None (no quiet hours)."""
    try:
        hours = hours_range(spec)  # the settings checked it at load; a caller's own spec is checked here
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    return None if hours is None else QuietHours(hours[0], hours[1], tz)


@dataclass(frozen=True)
class SendRules:
    """What the send room needs from the settings."""

    windows: SendWindows = field(default_factory=SendWindows)
    cap: FrequencyCap = field(default_factory=FrequencyCap)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: real seconds a claim stays valid after its worker last renewed it
    lease_s: float = 30.0
    #: simulated seconds a sent SMS/WeChat row waits for its receipt before its campaign may finish
    receipt_wait_s: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SendRules:
        tz = settings.local_timezone
        default = parse_quiet_hours(settings.quiet_hours, tz)
        per = {ch: parse_quiet_hours(v, tz) for ch, v in settings.quiet_hours_by_channel.items()}
        return cls(
            windows=SendWindows(per, default=default),
            cap=FrequencyCap(settings.frequency_cap, timedelta(days=settings.frequency_cap_days)),
            retry=RetryPolicy(
                max_attempts=settings.retry_max_attempts,
                base_delay_s=settings.retry_base_delay_s,
                max_delay_s=settings.retry_max_delay_s,
            ),
            lease_s=settings.claim_lease_s,
            receipt_wait_s=settings.receipt_wait_s,
        )

    def plan(
        self, now: datetime, channel: str, previous: Sequence[datetime], *, urgent: bool
    ) -> tuple[datetime, Waiting | None]:
        """The earliest send time of a new delivery, and why it is later than ``now`` (if it is)."""
        quiet = self.windows.for_channel(channel)
        outside_quiet = next_send_time(now, quiet, urgent=urgent)
        if len(previous) < self.cap.limit:  # the cap cannot bite: skip its search
            at = outside_quiet
        else:
            at = earliest_send_time(now, quiet=quiet, cap=self.cap, previous_sends=previous, urgent=urgent)
        if at <= now:
            return now, None
        return at, Waiting.QUIET_HOURS if at == outside_quiet else Waiting.FREQUENCY_CAP

    def quiet_until(self, now: datetime, channel: str) -> datetime | None:
        """The end of ``channel``'s quiet hours when they are on now (for non-urgent messages), else None."""
        quiet = self.windows.for_channel(channel)
        return next_send_time(now, quiet) if quiet is not None and quiet.is_quiet(now) else None

