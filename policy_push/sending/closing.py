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

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.statuses import CAMPAIGN_OPEN, CampaignState, Code, DeliveryStatus, EventSource
from policy_push.storage import AuditLog, deliveries
from policy_push.storage import campaigns as campaign_store
from policy_push.storage.deliveries import Move
from policy_push.storage.sql import begin_write
from scheduler import end_of_local_day

__all__ = ["CloseReport", "close_expired_policies"]

log = logging.getLogger("policy_push.closing")
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
        candidates = await campaign_store.policies_closed_by(s, local_today)
        closed = [pid for pid, until in candidates if end_of_local_day(until, tz) <= now]
        if not closed:
            return CloseReport(0, 0, 0)
        open_campaigns = await campaign_store.open_of_policies(s, closed)
    cancelled = 0
    while True:
        async with sessions() as s, s.begin():
            await begin_write(s)
            ids = await deliveries.unsent_of_policies(s, closed, limit=_BATCH)
            if not ids:
                break
            moves = [Move(i, DeliveryStatus.CANCELLED, {"waiting_for": None}, code=Code.POLICY_CLOSED) for i in ids]
            cancelled += len(await deliveries.move(s, moves, allowed_from={DeliveryStatus.CREATED}, source=EventSource.CLOSE, now=now))
    done = 0
    if open_campaigns:
        async with sessions() as s, s.begin():
            await begin_write(s)
            for campaign_id, policy_id in open_campaigns:
                if await campaign_store.move_state(s, campaign_id, CampaignState.CANCELLED, now=now, expect=CAMPAIGN_OPEN):
                    done += 1
                    await AuditLog(s).record(
                        actor="scheduler", action="campaign.cancel", entity_type="campaign", entity_id=campaign_id,
                        detail={"reason": "policy_closed", "policy_id": policy_id},
                    )  # fmt: skip
    if cancelled or done:
        log.info("closed %d polic(ies): %d deliveries and %d campaigns cancelled", len(closed), cancelled, done)
    return CloseReport(len(closed), cancelled, done)
