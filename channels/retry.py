"""When to try a message again, and how long to wait first.

Exponential backoff with "equal jitter": attempt n waits a random time in [d/2, d] where
d = base * multiplier**(n-1), capped. The lower bound keeps a burst of failures from hammering the
provider again at once; the random half spreads the retries of many senders apart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from channels.base import Outcome, SendResult

__all__ = ["RetryPolicy", "should_retry"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many provider attempts a message gets inside one ``Router.send``, and the waits between.

    A wait the provider asks for (``retry_after_s``) longer than ``max_delay_s`` is not waited out
    here: the result goes back to the caller, whose scheduler can hold the message for hours.
    """

    max_attempts: int = 3
    base_delay_s: float = 0.5
    multiplier: float = 2.0
    max_delay_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.base_delay_s < 0 or self.max_delay_s < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and multiplier >= 1")

    def backoff_s(self, attempt: int, rng: random.Random) -> float:
        """Wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * self.multiplier ** (attempt - 1))
        return rng.uniform(ceiling / 2, ceiling)

    def delay_s(self, attempt: int, results: list[SendResult], rng: random.Random) -> float | None:
        """The wait before the next attempt, or None when the provider asked for more than we wait."""
        asked = max((r.retry_after_s or 0.0 for r in results), default=0.0)
        if asked > self.max_delay_s:
            return None
        return max(asked, self.backoff_s(attempt, rng))


def should_retry(result: SendResult, attempt: int, policy: RetryPolicy) -> bool:
    """Retry only retryable results with attempts left; permanent and unreachable are final."""
    return result.outcome is Outcome.RETRYABLE and attempt < policy.max_attempts
