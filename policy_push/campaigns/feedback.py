"""What recipients say back: 有用 / 不相关 / 已申报 / 退订 from the page their message links to, and
opt-outs recorded by staff (e.g. an SMS "回复TD" uplink).

A person reaches their page through the delivery's link code (SMS, ``/s/<code>``) or a signed link
token (WeChat, app: ``security.links``); both expire ``link_ttl_days`` after the delivery was made.
The page never shows who they are, and of the reasons only the lines that name no sensitive fact.
Feedback is unique per (policy, profile, kind), so a double click records once; 退订 also records an
opt-out of every channel ("*"), which drafting, claiming, fallbacks and reminders all honour
(``policy_push.reach``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.domain import Policy
from policy_push.errors import InvalidInput
from policy_push.reach import ALL_CHANNELS, OPT_OUT_CHANNELS
from policy_push.statuses import FeedbackKind, OptOutSource
from policy_push.storage import campaigns as campaign_store
from policy_push.storage import contacts, deliveries
from policy_push.storage import feedback as feedback_store
from policy_push.storage.deliveries import Delivery
from policy_push.storage.tables import utcnow

from .messages import policy_is_sensitive, shown_reasons

__all__ = [
    "RecipientContext",
    "delivery_by_code",
    "link_expires",
    "recipient_context",
    "record_feedback",
    "record_opt_out",
]


@dataclass(frozen=True, slots=True)
class RecipientContext:
    """The recipient behind a link, as far as their page may know it: no name, no contact, no sensitive line."""

    delivery: Delivery
    policy_id: str
    reasons: list[str]
    feedback: frozenset[str]
    opted_out: bool


def link_expires(delivery: Delivery, ttl: dt.timedelta) -> dt.datetime:
    """When the links of a delivery stop working."""
    made = delivery.created_at or utcnow()
    return (made if made.tzinfo else made.replace(tzinfo=dt.UTC)) + ttl


async def delivery_by_code(session: AsyncSession, code: str, *, ttl: dt.timedelta, now: dt.datetime) -> Delivery | None:
    """The delivery whose link carries ``code``, or None when none does or its link has expired."""
    delivery = await deliveries.by_link_code(session, code)
    if delivery is None or link_expires(delivery, ttl) < now:
        return None
    return delivery


async def recipient_context(session: AsyncSession, policy: Policy, delivery: Delivery) -> RecipientContext | None:
    """None when the delivery is about another policy."""
    if delivery.policy_id != policy.id:
        return None
    await deliveries.mark_opened(session, delivery.id, utcnow())
    lines = await campaign_store.reasons_of(session, {(delivery.campaign_id, delivery.profile_id)})
    found = lines.get((delivery.campaign_id, delivery.profile_id))
    # a policy whose very title is a sensitive fact: the page says nothing about why this person got it
    shown = [] if found is None or policy_is_sensitive(policy) else shown_reasons(found)
    return RecipientContext(
        delivery, policy.id, shown,
        await feedback_store.given(session, policy.id, delivery.profile_kind, delivery.profile_id),
        await contacts.opted_out_of_all(session, delivery.profile_kind, delivery.profile_id),
    )  # fmt: skip


async def record_opt_out(
    session: AsyncSession,
    *,
    profile_kind: str,
    profile_id: str,
    channel: str = ALL_CHANNELS,
    source: OptOutSource | str,
    actor: str,
    at: dt.datetime | None = None,
) -> bool:
    """Record an opt-out (idempotent). True when it is new."""
    if channel not in OPT_OUT_CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(OPT_OUT_CHANNELS)}", loc=["body", "channel"])
    try:
        origin = OptOutSource(source)
    except ValueError:
        raise InvalidInput(f"source must be one of {', '.join(OptOutSource)}", loc=["body", "source"]) from None
    return await contacts.record_opt_out(
        session, profile_kind=profile_kind, profile_id=profile_id, channel=channel, source=origin, actor=actor,
        at=at or utcnow(),
    )  # fmt: skip


async def record_feedback(session: AsyncSession, *, delivery: Delivery, kind: FeedbackKind) -> bool:
    """Record what the recipient of ``delivery`` said about its policy. True when new."""
    created = await feedback_store.record(
        session, policy_id=delivery.policy_id, profile_kind=delivery.profile_kind, profile_id=delivery.profile_id,
        kind=kind, delivery_id=delivery.id, at=utcnow(),
    )  # fmt: skip
    if kind is FeedbackKind.UNSUBSCRIBE:
        await record_opt_out(
            session, profile_kind=delivery.profile_kind, profile_id=delivery.profile_id,
            source=OptOutSource.FEEDBACK_LINK, actor="recipient",
        )  # fmt: skip
    return created
