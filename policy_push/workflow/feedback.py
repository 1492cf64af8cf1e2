"""What recipients say back: 有用 / 不相关 / 已申报 / 退订 from the link in their message, and
opt-outs recorded by staff (e.g. an SMS "回复TD" uplink).

The link carries the delivery id (``/p/<policy>?d=<delivery>``): that id, unguessable and tied to
one recipient of one policy, is what identifies them; the page never shows who they are.
Feedback is unique per (policy, profile, kind), so a double click records once; 退订 also
inserts an opt-out of every channel ("*"), which preparing campaigns and dispatch both honour.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.statuses import FeedbackKind
from policy_push.storage import AuditLog
from policy_push.storage.campaign_tables import CampaignRecipientRow, DeliveryRow, FeedbackRow, OptOutRow
from policy_push.storage.tables import utcnow

from .errors import BadWorkflowInput, CampaignNotFound
from .messages import code_candidates
from .recipients import ALL_CHANNELS, CONTACT_FIELD

__all__ = ["OPT_OUT_CHANNELS", "RecipientContext", "find_delivery", "recipient_context", "record_feedback", "record_opt_out"]

#: what an opt-out may name: one channel, or "*" for all
OPT_OUT_CHANNELS = (ALL_CHANNELS, *CONTACT_FIELD)
_OPT_OUT_SOURCES = ("feedback_link", "sms_uplink", "staff", "api")


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


def _insert_ignore(session: AsyncSession, table: Table, keys: list[str]) -> Any:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=keys)


async def find_delivery(session: AsyncSession, delivery_id_or_code: str) -> DeliveryRow | None:
    """The delivery for an id from a link, or for an SMS short code (the id without dashes)."""
    if not 1 <= len(delivery_id_or_code) <= 36:
        return None
    return await session.scalar(select(DeliveryRow).where(DeliveryRow.id.in_(code_candidates(delivery_id_or_code))))


async def recipient_context(session: AsyncSession, policy_id: str, delivery_id: str) -> RecipientContext | None:
    """None when the delivery id is unknown or belongs to another policy."""
    delivery = await find_delivery(session, delivery_id)
    if delivery is None or delivery.policy_id != policy_id:
        return None
    reasons = await session.scalar(
        select(CampaignRecipientRow.reasons).where(
            CampaignRecipientRow.campaign_id == delivery.campaign_id,
            CampaignRecipientRow.profile_id == delivery.profile_id,
        )
    )
    given = await session.scalars(
        select(FeedbackRow.kind).where(
            FeedbackRow.policy_id == policy_id,
            FeedbackRow.profile_kind == delivery.profile_kind,
            FeedbackRow.profile_id == delivery.profile_id,
        )
    )
    opted = await session.scalar(
        select(OptOutRow.channel).where(
            OptOutRow.profile_kind == delivery.profile_kind,
            OptOutRow.profile_id == delivery.profile_id,
            OptOutRow.channel == ALL_CHANNELS,
        )
    )
    return RecipientContext(
        delivery.id, policy_id, delivery.profile_kind, delivery.profile_id, delivery.channel,
        list(reasons or []), frozenset(given), opted is not None,
    )  # fmt: skip


async def record_opt_out(
    session: AsyncSession,
    *,
    profile_kind: str,
    profile_id: str,
    channel: str = ALL_CHANNELS,
    source: str,
    actor: str,
    at: dt.datetime | None = None,
) -> bool:
    """Record an opt-out (idempotent).  True when it is new."""
    if channel not in OPT_OUT_CHANNELS:
        raise BadWorkflowInput(f"channel must be one of {', '.join(OPT_OUT_CHANNELS)}", loc=["body", "channel"])
    if source not in _OPT_OUT_SOURCES:
        raise BadWorkflowInput(f"source must be one of {', '.join(_OPT_OUT_SOURCES)}", loc=["body", "source"])
    stmt = _insert_ignore(session, OptOutRow.__table__, ["profile_kind", "profile_id", "channel"]).values(  # type: ignore[arg-type]
        profile_kind=profile_kind, profile_id=profile_id, channel=channel, at=at or utcnow(), source=source
    )
    result = await session.execute(stmt)
    created = bool(getattr(result, "rowcount", 0))
    if created:
        await AuditLog(session).record(
            actor=actor, action="opt_out.create", entity_type=profile_kind, entity_id=profile_id,
            detail={"channel": channel, "source": source},
        )  # fmt: skip
    return created


async def record_feedback(session: AsyncSession, *, policy_id: str, delivery_id: str, kind: FeedbackKind) -> bool:
    """Record what the recipient of ``delivery_id`` said about ``policy_id``.  True when new;
    404 for a delivery id that is unknown or not about this policy."""
    delivery = await find_delivery(session, delivery_id)
    if delivery is None or delivery.policy_id != policy_id:
        raise CampaignNotFound("message link", delivery_id, loc=["form", "d"])
    stmt = _insert_ignore(session, FeedbackRow.__table__, ["policy_id", "profile_kind", "profile_id", "kind"]).values(  # type: ignore[arg-type]
        policy_id=policy_id, profile_kind=delivery.profile_kind, profile_id=delivery.profile_id,
        kind=kind.value, delivery_id=delivery.id, at=utcnow(),
    )  # fmt: skip
    created = bool(getattr(await session.execute(stmt), "rowcount", 0))
    if kind is FeedbackKind.UNSUBSCRIBE:
        await record_opt_out(
            session, profile_kind=delivery.profile_kind, profile_id=delivery.profile_id,
            source="feedback_link", actor="recipient",
        )  # fmt: skip
    return created
