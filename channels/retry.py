"""When to try a message again, and how long to wait first.

The router makes one call per batch and never retries: a message worth retrying waits in the caller's
durable outbox, which uses this policy to decide whether it gets another attempt and when.

Exponential backoff with "equal jitter": attempt n waits a random time in [d/2, d] where
d = base * multiplier**(n-1), capped. The lower bound keeps a burst of failures from hammering the
provider again at once; the random half spreads the retries of many senders apart. A provider that
asks for a longer pause (``retry_after_s``) gets it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from channels.base import Outcome, SendResult

__all__ = ["RetryPolicy", "should_retry"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many provider attempts a message gets, and the waits between them."""

    max_attempts: int = 5
    base_delay_s: float = 60.0
    multiplier: float = 2.0
    max_delay_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.base_delay_s < 0 or self.max_delay_s < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and multiplier >= 1")

    def backoff_s(self, attempt: int, rng: random.Random) -> float:
        """Wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * self.multiplier ** max(0, attempt - 1))
        return rng.uniform(ceiling / 2, ceiling)

    def delay_s(self, attempt: int, result: SendResult, rng: random.Random, *, clock_per_real_s: float = 1.0) -> float:
        """The wait before the next attempt: the backoff, or longer if the provider asked for it.

        The provider's pause is in real seconds; ``clock_per_real_s`` turns it into the caller's clock's
        seconds (a simulated clock that runs faster), in which the backoff is already counted."""
        return max((result.retry_after_s or 0.0) * clock_per_real_s, self.backoff_s(attempt, rng))

    def exhausted(self, attempts: int) -> bool:
        """Whether ``attempts`` provider attempts are all a message gets."""
        return attempts >= self.max_attempts


def should_retry(result: SendResult, attempt: int, policy: RetryPolicy) -> bool:
    """Retry only retryable results with attempts left; permanent and unreachable are final."""
    return result.outcome is Outcome.RETRYABLE and not policy.exhausted(attempt)
