"""Closing policies past their deadline: nothing more goes out about a policy nobody can apply to.

A policy open ``apply_until = D`` closes at the end of local day D (``scheduler.end_of_local_day``).
Then its unsent deliveries (``created``) are cancelled, and its campaigns not yet finished (draft,
approved, scheduled, sending) are cancelled with an audit entry. Rows already with a provider
(``sending``, ``sent``) finish normally. Idempotent: a second run finds nothing to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.statuses import CampaignState, DeliveryStatus
from policy_push.storage import AuditLog
from policy_push.storage.tables import PolicyRow
from scheduler import end_of_local_day

from .outbox import EventSource, Move, begin_write, campaigns, deliveries, move

__all__ = ["CloseReport", "close_expired_policies"]

log = logging.getLogger("policy_push.closing")
_OPEN = [s.value for s in (CampaignState.DRAFT, CampaignState.APPROVED, CampaignState.SCHEDULED, CampaignState.SENDING)]
_BATCH = 5000


@dataclass(frozen=True, slots=True)
class CloseReport:
    policies: int
    deliveries_cancelled: int
    campaigns_cancelled: int


async def close_expired_policies(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, tz: str = "Asia/Shanghai"
) -> CloseReport:
    local_today = now.astimezone(ZoneInfo(tz)).date()
    async with sessions() as s:
        candidates = (
            await s.execute(select(PolicyRow.id, PolicyRow.apply_until).where(PolicyRow.apply_until.is_not(None), PolicyRow.apply_until <= local_today))
        ).all()
        closed = [pid for pid, until in candidates if end_of_local_day(until, tz) <= now]
        if not closed:
            return CloseReport(0, 0, 0)
        c = campaigns.c
        open_campaigns = (
            await s.execute(select(c.id, c.policy_id).where(c.policy_id.in_(closed), c.state.in_(_OPEN)))
        ).all()
    d = deliveries.c
    cancelled = 0
    while True:
        async with sessions() as s, s.begin():
            await begin_write(s)
            ids = list(
                (
                    await s.execute(
                        select(d.id).where(d.policy_id.in_(closed), d.status == DeliveryStatus.CREATED.value).limit(_BATCH)
                    )
                ).scalars()
            )
            if not ids:
                break
            moves = [Move(i, DeliveryStatus.CANCELLED, {"waiting_for": None}, code="POLICY_CLOSED") for i in ids]
            cancelled += len(await move(s, moves, allowed_from={DeliveryStatus.CREATED}, source=EventSource.CLOSE, now=now))
    done = 0
    if open_campaigns:
        async with sessions() as s, s.begin():
            await begin_write(s)
            for campaign_id, policy_id in open_campaigns:
                result = await s.execute(
                    update(campaigns)
                    .where(c.id == campaign_id, c.state.in_(_OPEN))
                    .values(state=CampaignState.CANCELLED.value, updated_at=now)
                )
                if getattr(result, "rowcount", 0):
                    done += 1
                    await AuditLog(s).record(
                        actor="scheduler", action="campaign.cancel", entity_type="campaign", entity_id=campaign_id,
                        detail={"reason": "policy_closed", "policy_id": policy_id},
                    )  # fmt: skip
    if cancelled or done:
        log.info("closed %d polic(ies): %d deliveries and %d campaigns cancelled", len(closed), cancelled, done)
    return CloseReport(len(closed), cancelled, done)
