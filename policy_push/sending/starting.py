"""Starting due campaigns (a delivery row for every recipient) and finishing those with nothing left.

A campaign is due when it is ``scheduled`` and its ``send_at`` has come (or it has none). Before any row
is written its approval is checked again (``campaigns.verify_approval``, the one check: four eyes and the
SHA-256 over the recipient list and texts, invariant 1); a campaign that no longer matches is refused,
logged and left alone for staff to look at.

Rows are written in batches, each in its own transaction, with INSERT … ON CONFLICT DO NOTHING on
``uq_deliveries_once``: a crash half-way leaves some rows, and the next tick adds only the missing ones.
Only when every batch is in does the campaign move to ``sending``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.campaigns import verify_approval
from policy_push.statuses import CampaignState
from policy_push.storage import campaigns as campaign_store
from policy_push.storage import deliveries, delivery_history
from policy_push.storage.sql import begin_write

from .rules import SendRules

__all__ = ["RECEIPT_CHANNELS", "finish_campaigns", "start_campaign", "start_due_campaigns"]

log = logging.getLogger("policy_push.sending")
_BATCH = 1000
#: channels whose providers push receipts: a sent row there may still fail and fall back
RECEIPT_CHANNELS = ("sms", "wechat")


async def start_due_campaigns(sessions: async_sessionmaker[AsyncSession], *, now: datetime, rules: SendRules) -> list[str]:
    """Write the delivery rows of every due campaign; returns the ids of the campaigns started."""
    async with sessions() as s:
        due = await campaign_store.due_scheduled(s, now=now)
    started = []
    for campaign_id, _purpose in due:
        async with sessions() as s:
            ok = await verify_approval(s, campaign_id)
        if not ok:
            log.error("campaign %s: the approval no longer matches its recipients and texts; not sending", campaign_id,
                      extra={"campaign_id": campaign_id})  # a field of its own in JSON logs
            continue
        if await start_campaign(sessions, campaign_id, now=now, rules=rules):
            started.append(campaign_id)
    return started


async def start_campaign(sessions: async_sessionmaker[AsyncSession], campaign_id: str, *, now: datetime, rules: SendRules) -> bool:
    """Write one delivery per messaged recipient (batch by batch), then move the campaign to sending."""
    async with sessions() as s:
        camp = await campaign_store.get(s, campaign_id)
        if camp.state != CampaignState.SCHEDULED.value:
            return False
        after = await deliveries.resume_point(s, campaign_id)
    while True:
        async with sessions() as s, s.begin():
            await begin_write(s)
            batch = await campaign_store.recipients_after(s, campaign_id, after, _BATCH)
            if not batch:
                break
            prev = await delivery_history.previous_sends_of_recipients(s, campaign_id, after, batch[-1].profile_id)
            rows = []
            for kind, pid, channel in batch:
                at, waiting = rules.plan(now, channel, prev.get((kind, pid), []), urgent=bool(camp.urgent))
                rows.append(deliveries.new_row(campaign_id, camp.policy_id, kind, pid, channel, camp.purpose, at, waiting, now))
            await deliveries.insert(s, rows)
            after = batch[-1].profile_id
    async with sessions() as s, s.begin():
        await begin_write(s)
        moved = await campaign_store.move_state(s, campaign_id, CampaignState.SENDING, now=now, expect={CampaignState.SCHEDULED})
        await finish_campaigns(s, [campaign_id], now=now, rules=rules)
    log.info("campaign %s: outbox written, sending", campaign_id, extra={"campaign_id": campaign_id})
    return moved


async def finish_campaigns(session: AsyncSession, campaign_ids: Iterable[str], *, now: datetime, rules: SendRules) -> list[str]:
    """Move ``sending`` campaigns with nothing left to do to ``done``; returns those moved.

    Nothing left: no row created or sending, and no SMS/WeChat row sent less than ``receipt_wait_s`` ago
    (its receipt may still say it failed, which starts a fallback). A receipt arriving later still moves
    its row; a fallback it starts is sent all the same (rows, not campaigns, are claimed)."""
    horizon = now - timedelta(seconds=rules.receipt_wait_s)
    done = await campaign_store.finish(session, campaign_ids, now=now, receipt_horizon=horizon, receipt_channels=RECEIPT_CHANNELS)
    for campaign_id in done:
        log.info("campaign %s: done", campaign_id, extra={"campaign_id": campaign_id})
    return done
