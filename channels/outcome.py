"""What happened to one message at the provider's door: the four outcomes every adapter maps its codes to.

A module of its own so that receipts and queries can speak of outcomes without importing the adapters' base.
"""

from __future__ import annotations

import enum

__all__ = ["Outcome"]


class Outcome(enum.StrEnum):
    """What happened to one message at the provider's door."""

    #: The provider took the message; a receipt may still report failure later.
    ACCEPTED = "accepted"
    #: Not taken now; the same message may succeed later (timeouts, throttling, system errors).
    RETRYABLE = "retryable"
    #: Not taken and never will be as sent (bad template, bad credentials, content rules).
    PERMANENT = "permanent"
    #: This recipient cannot be reached on this channel (bad number, unfollowed, blocked); try another channel.
    UNREACHABLE = "unreachable"
