"""What recipients say back: 有用 / 不相关 / 已申报 / 退订 from the link in their message, and opt-outs
recorded by staff (e.g. an SMS "回复TD" uplink).

The link carries the delivery id (``/p/<policy>?d=<delivery>``): that id, unguessable and tied to one
recipient of one policy, is what identifies them; the page never shows who they are. Feedback is unique
per (policy, profile, kind), so a double click records once; 退订 also records an opt-out of every
channel ("*"), which drafting, claiming, fallbacks and reminders all honour (``policy_push.reach``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.errors import InvalidInput, NotFound
from policy_push.reach import ALL_CHANNELS, OPT_OUT_CHANNELS
from policy_push.statuses import FeedbackKind, OptOutSource
from policy_push.storage import campaigns as campaign_store
from policy_push.storage import contacts, deliveries
from policy_push.storage import feedback as feedback_store
from policy_push.storage.deliveries import Delivery
from policy_push.storage.tables import utcnow

from .messages import code_candidates

__all__ = ["RecipientContext", "find_delivery", "recipient_context", "record_feedback", "record_opt_out"]


@dataclass(frozen=True, slots=True)
class RecipientContext:
    """The recipient behind a delivery id, as far as the public page may know it."""

    delivery_id: str
    policy_id: str
    profile_kind: str
    profile_id: str
    channel: str
    reasons: list[str]
    feedback: frozenset[str]
    opted_out: bool


async def find_delivery(session: AsyncSession, delivery_id_or_code: str) -> Delivery | None:
    """The delivery for an id from a link, or for an SMS short code."""
    if not 1 <= len(delivery_id_or_code) <= 36:
        return None
    return await deliveries.find(session, code_candidates(delivery_id_or_code))


async def recipient_context(session: AsyncSession, policy_id: str, delivery_id: str) -> RecipientContext | None:
    """None when the delivery id is unknown or belongs to another policy."""
    delivery = await find_delivery(session, delivery_id)
    if delivery is None or delivery.policy_id != policy_id:
        return None
    reasons = await campaign_store.reasons_of(session, {(delivery.campaign_id, delivery.profile_id)})
    return RecipientContext(
        delivery.id, policy_id, delivery.profile_kind, delivery.profile_id, delivery.channel,
        reasons.get((delivery.campaign_id, delivery.profile_id), []),
        await feedback_store.given(session, policy_id, delivery.profile_kind, delivery.profile_id),
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


async def record_feedback(session: AsyncSession, *, policy_id: str, delivery_id: str, kind: FeedbackKind) -> bool:
    """Record what the recipient of ``delivery_id`` said about ``policy_id``. True when new; NotFound for a
    delivery id that is unknown or not about this policy."""
    delivery = await find_delivery(session, delivery_id)
    if delivery is None or delivery.policy_id != policy_id:
        raise NotFound.of("message link", delivery_id, loc=["form", "d"])
    created = await feedback_store.record(
        session, policy_id=policy_id, profile_kind=delivery.profile_kind, profile_id=delivery.profile_id,
        kind=kind, delivery_id=delivery.id, at=utcnow(),
    )  # fmt: skip
    if kind is FeedbackKind.UNSUBSCRIBE:
        await record_opt_out(
            session, profile_kind=delivery.profile_kind, profile_id=delivery.profile_id,
            source=OptOutSource.FEEDBACK_LINK, actor="recipient",
        )  # fmt: skip
    return created
