"""Every status of campaigns and deliveries, their groups, and the transitions allowed.

One place, as notifications-api keeps ``app/constants.py``; the database stores these values
and code compares against the enums, never against bare strings.

A delivery's life (one row per recipient, channel and purpose)::

    created --claim--> sending --provider accepted--> sent --receipt--> delivered
       ^                  |                            +--receipt--> permanent_failure | unreachable
       |                  +--retryable error (attempts left)--> created (not_before = backoff)
       |                  +--permanent error--> permanent_failure
       |                  +--recipient unreachable--> unreachable
       |                  +--retries used up--> technical_failure
       +--stuck in sending past the timeout: settle (SMS: QuerySendDetails first; WeChat/JPush: resend,
       |  same idempotency key) --> created | sent | delivered | permanent_failure
    created --campaign cancelled / policy closed--> cancelled

Final statuses never change (design.md, invariant 4).  A permanent failure or an unreachable
recipient on one channel lets the next channel of the recipient's preference be tried
(invariant 2: a fallback only after the first channel failed for good).
"""

from __future__ import annotations

import enum

__all__ = [
    "CAMPAIGN_EDITABLE",
    "CAMPAIGN_FINAL",
    "CAMPAIGN_TRANSITIONS",
    "DELIVERY_FAILED_FOR_GOOD",
    "DELIVERY_FINAL",
    "DELIVERY_IN_FLIGHT",
    "DELIVERY_TRANSITIONS",
    "CampaignState",
    "DeliveryStatus",
    "FeedbackKind",
    "Purpose",
    "SkipReason",
    "can_move",
]


class CampaignState(enum.StrEnum):
    #: prepared from a match run; staff may exclude recipients and set the send time
    DRAFT = "draft"
    #: a second staff member approved this exact recipient list and these texts (hash recorded)
    APPROVED = "approved"
    #: approved and given a send time; the dispatch tick starts it when that time comes
    SCHEDULED = "scheduled"
    #: delivery rows exist; the dispatcher works through them
    SENDING = "sending"
    #: every delivery row is final
    DONE = "done"
    CANCELLED = "cancelled"


CAMPAIGN_FINAL = frozenset({CampaignState.DONE, CampaignState.CANCELLED})
#: a change in these states (recipients, texts, send time) returns the campaign to draft
CAMPAIGN_EDITABLE = frozenset({CampaignState.DRAFT, CampaignState.APPROVED, CampaignState.SCHEDULED})
CAMPAIGN_TRANSITIONS: dict[CampaignState, frozenset[CampaignState]] = {
    CampaignState.DRAFT: frozenset({CampaignState.APPROVED, CampaignState.CANCELLED}),
    CampaignState.APPROVED: frozenset({CampaignState.SCHEDULED, CampaignState.DRAFT, CampaignState.CANCELLED}),
    CampaignState.SCHEDULED: frozenset({CampaignState.SENDING, CampaignState.DRAFT, CampaignState.CANCELLED}),
    CampaignState.SENDING: frozenset({CampaignState.DONE, CampaignState.CANCELLED}),
    CampaignState.DONE: frozenset(),
    CampaignState.CANCELLED: frozenset(),
}


class Purpose(enum.StrEnum):
    #: the first message about a policy
    ANNOUNCE = "announce"
    #: "N days left to apply", to eligible recipients who have not said 已申报 or 不相关
    REMINDER = "reminder"


class DeliveryStatus(enum.StrEnum):
    CREATED = "created"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    PERMANENT_FAILURE = "permanent_failure"
    UNREACHABLE = "unreachable"
    TECHNICAL_FAILURE = "technical_failure"
    CANCELLED = "cancelled"


DELIVERY_FINAL = frozenset(
    {
        DeliveryStatus.DELIVERED,
        DeliveryStatus.PERMANENT_FAILURE,
        DeliveryStatus.UNREACHABLE,
        DeliveryStatus.TECHNICAL_FAILURE,
        DeliveryStatus.CANCELLED,
    }
)
#: the channel failed for good: the recipient's next channel may be tried
DELIVERY_FAILED_FOR_GOOD = frozenset(
    {DeliveryStatus.PERMANENT_FAILURE, DeliveryStatus.UNREACHABLE, DeliveryStatus.TECHNICAL_FAILURE}
)
#: handed to a provider (or about to be): counts towards the frequency cap
DELIVERY_IN_FLIGHT = frozenset({DeliveryStatus.SENDING, DeliveryStatus.SENT, DeliveryStatus.DELIVERED})

DELIVERY_TRANSITIONS: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    DeliveryStatus.CREATED: frozenset({DeliveryStatus.SENDING, DeliveryStatus.CANCELLED}),
    DeliveryStatus.SENDING: frozenset(
        {
            DeliveryStatus.CREATED,
            DeliveryStatus.SENT,
            DeliveryStatus.DELIVERED,
            DeliveryStatus.PERMANENT_FAILURE,
            DeliveryStatus.UNREACHABLE,
            DeliveryStatus.TECHNICAL_FAILURE,
        }
    ),
    DeliveryStatus.SENT: frozenset(
        {DeliveryStatus.DELIVERED, DeliveryStatus.PERMANENT_FAILURE, DeliveryStatus.UNREACHABLE}
    ),
    **{s: frozenset() for s in DELIVERY_FINAL},
}


def can_move(current: DeliveryStatus | CampaignState, new: DeliveryStatus | CampaignState) -> bool:
    table: dict = DELIVERY_TRANSITIONS if isinstance(current, DeliveryStatus) else CAMPAIGN_TRANSITIONS  # type: ignore[type-arg]
    return new in table[current]


class SkipReason(enum.StrEnum):
    """Why a matched profile gets no message from a campaign (shown in the preview)."""

    NO_CONSENT = "no_consent"
    OPTED_OUT = "opted_out"
    UNREACHABLE = "unreachable"  #: no channel of its preference has an address
    ALREADY_NOTIFIED = "already_notified"  #: told about this policy on that channel before
    EXCLUDED = "excluded"  #: a staff member took it off the list
    MAY_QUALIFY = "may_qualify"  #: missing data; listed for staff, not messaged unless included
    FEEDBACK = "feedback"  #: said 已申报 or 不相关 (reminders only)


class FeedbackKind(enum.StrEnum):
    USEFUL = "useful"  #: 有用
    IRRELEVANT = "irrelevant"  #: 不相关
    APPLIED = "applied"  #: 已申报
    UNSUBSCRIBE = "unsubscribe"  #: 退订
