"""Every status, event source, waiting reason and code the application stores, and the transitions.

One place, as notifications-api keeps ``app/constants.py``: the database stores these values (CHECK
constraints in migration 0004 hold it to them), code compares against the enums, and a test fails on
a bare status string anywhere else in ``policy_push``.

A delivery's life (one row per recipient, channel and purpose)::

    created --claim (a lease held by a live worker)--> sending --provider accepted--> sent --receipt--> delivered
       ^                 |                                                          +--receipt--> permanent_failure | unreachable
       |                 +--retryable, attempts left--> created (not_before = backoff)
       |                 +--permanent / unreachable / retries used up--> permanent_failure | unreachable | technical_failure
       |                 +--lease lapsed (the worker died): settle asks the provider --> sent | delivered | failed,
       |                    or "certainly not sent" --> created; an outcome nobody can learn --> technical_failure
       |                    (UNKNOWN_OUTCOME), never resent on that channel; the next channel takes over
    created --campaign cancelled / policy closed / opted out--> cancelled

Final statuses never change (invariant 4). A failure for good on one channel lets the recipient's
next channel be tried (invariant 2: a fallback only after the first channel failed for good).
"""

from __future__ import annotations

import enum

__all__ = [
    "CAMPAIGN_EDITABLE",
    "CAMPAIGN_FINAL",
    "CAMPAIGN_OPEN",
    "CAMPAIGN_TRANSITIONS",
    "DELIVERY_FAILED_FOR_GOOD",
    "DELIVERY_FINAL",
    "DELIVERY_IN_FLIGHT",
    "DELIVERY_REACHED",
    "DELIVERY_TRANSITIONS",
    "DELIVERY_UNSENT",
    "CampaignState",
    "ChangeOp",
    "Code",
    "DeliveryStatus",
    "EventSource",
    "FeedbackKind",
    "InboundKind",
    "OptOutSource",
    "Purpose",
    "SkipReason",
    "Waiting",
    "can_move",
]


class CampaignState(enum.StrEnum):
    #: its recipient list is still being written, chunk by chunk (``campaigns.drafting``): nobody may
    #: approve, edit or send it until the last chunk is in and it becomes a draft
    DRAFTING = "drafting"
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
CAMPAIGN_OPEN = frozenset(set(CampaignState) - CAMPAIGN_FINAL)
#: a change in these states (recipients, texts, send time) returns the campaign to draft
CAMPAIGN_EDITABLE = frozenset({CampaignState.DRAFT, CampaignState.APPROVED, CampaignState.SCHEDULED})
CAMPAIGN_TRANSITIONS: dict[CampaignState, frozenset[CampaignState]] = {
    CampaignState.DRAFTING: frozenset({CampaignState.DRAFT, CampaignState.CANCELLED}),
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
#: the provider took the message
DELIVERY_REACHED = frozenset({DeliveryStatus.SENT, DeliveryStatus.DELIVERED})
#: work not done yet: a campaign with such rows is still sending
DELIVERY_UNSENT = frozenset({DeliveryStatus.CREATED, DeliveryStatus.SENDING})

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


class EventSource(enum.StrEnum):
    """Who moved a delivery (``delivery_events.source``)."""

    CLAIM = "claim"
    DISPATCH = "dispatch"
    RECEIPT = "receipt"
    SETTLE = "settle"
    CANCEL = "cancel"
    CLOSE = "close"
    OPT_OUT = "opt_out"


class Waiting(enum.StrEnum):
    """Why a delivery's ``not_before`` was pushed on (``deliveries.waiting_for``)."""

    QUIET_HOURS = "quiet_hours"
    FREQUENCY_CAP = "frequency_cap"
    RETRY = "retry"
    THROTTLED = "throttled"


class Code(enum.StrEnum):
    """Our own codes in ``delivery_events.code`` and ``deliveries.provider_code`` (providers' codes
    are stored as they come)."""

    #: cancelled at claim: the profile is gone, withdrew consent or opted out since approval
    PROFILE_DELETED = "PROFILE_DELETED"
    NO_CONSENT = "NO_CONSENT"
    OPTED_OUT = "OPTED_OUT"
    #: cancelled at claim: the phone changed since approval to one nobody proved (``policy_push.reach``)
    PHONE_UNPROVEN = "PHONE_UNPROVEN"
    #: the policy closed (apply_until passed) before the row went out
    POLICY_CLOSED = "POLICY_CLOSED"
    #: the campaign was cancelled before the row went out
    CAMPAIGN_CANCELLED = "CAMPAIGN_CANCELLED"
    #: the profile has no address for the channel any more
    NO_ADDRESS = "NO_ADDRESS"
    #: the campaign has no approved text for the channel
    NO_APPROVED_MESSAGE = "NO_APPROVED_MESSAGE"
    #: the provider may have taken the message; the lease is left to lapse and settle decides
    MAYBE_SENT = "MAYBE_SENT"
    #: settle: the provider has the message
    FOUND_AT_PROVIDER = "FOUND_AT_PROVIDER"
    #: settle: the provider certainly does not have it; safe to send again
    NOT_AT_PROVIDER = "NOT_AT_PROVIDER"
    #: settle: the claim lapsed before any provider call of the row; safe to send again
    NOT_CALLED = "NOT_CALLED"
    #: settle: resent with the same idempotency key inside the provider's deduplication window
    RESEND_SAME_KEY = "RESEND_SAME_KEY"
    #: settle: nobody can learn whether it went out; never resent on this channel
    UNKNOWN_OUTCOME = "UNKNOWN_OUTCOME"
    #: the sender found its lease gone before the provider call; it did not send
    LEASE_LOST = "LEASE_LOST"
    #: released unsent when the worker stopped
    RELEASED = "RELEASED"
    #: settle: the provider cannot tell yet, but its records may show the send soon; asked again later
    AWAITING_PROVIDER = "AWAITING_PROVIDER"


class SkipReason(enum.StrEnum):
    """Why a matched profile gets no message from a campaign (shown in the preview)."""

    NO_CONSENT = "no_consent"
    OPTED_OUT = "opted_out"
    UNREACHABLE = "unreachable"  #: no channel of its preference has an address
    #: unreachable because its only usable address is a phone nobody proved (``policy_push.reach``)
    PHONE_UNPROVEN = "phone_unproven"
    ALREADY_NOTIFIED = "already_notified"  #: told about this policy on that channel before
    EXCLUDED = "excluded"  #: a staff member took it off the list
    MAY_QUALIFY = "may_qualify"  #: missing data; listed for staff, not messaged unless included
    FEEDBACK = "feedback"  #: said 已申报 or 不相关 (reminders only)


class FeedbackKind(enum.StrEnum):
    USEFUL = "useful"  #: 有用
    IRRELEVANT = "irrelevant"  #: 不相关
    APPLIED = "applied"  #: 已申报
    UNSUBSCRIBE = "unsubscribe"  #: 退订


class OptOutSource(enum.StrEnum):
    """Where an opt-out came from (``opt_outs.source``)."""

    FEEDBACK_LINK = "feedback_link"  #: 退订 on the policy page
    SMS_UPLINK = "sms_uplink"  #: an SMS reply such as 回复TD
    STAFF = "staff"
    API = "api"
    WECHAT_UNFOLLOW = "wechat_unfollow"  #: the person unfollowed the official account (a re-follow keeps it)
    WECHAT_MESSAGE = "wechat_message"  #: the person wrote 退订 (or TD …) to the official account
    #: a WeChat send was answered 43004 "require subscribe": the person unfollowed though no unfollow event
    #: reached us (WeChat stops pushing one after its last retry); recorded as an unfollow is
    WECHAT_NOT_FOLLOWING = "wechat_not_following"


class InboundKind(enum.StrEnum):
    """What a person sent us through a provider (``inbound_messages.kind``)."""

    OPT_OUT = "opt_out"  #: a reply that opts out (TD, 退订 …): recorded as an opt-out of that channel
    MESSAGE = "message"  #: any other reply or message: kept for staff to read
    FOLLOW = "follow"  #: followed the WeChat account (again): reachable, but no consent restored
    UNFOLLOW = "unfollow"  #: unfollowed the WeChat account: no more WeChat messages
    SUBSCRIPTION = "subscription"  #: accepted or rejected WeChat subscription templates


class ChangeOp(enum.StrEnum):
    """What happened to a record in the change feed (``changes.op``)."""

    PUT = "put"  #: created or updated
    DELETE = "delete"
