"""Starting due campaigns (outbox rows for every recipient) and finishing the ones with nothing left.

A campaign is due when it is ``scheduled`` and its ``send_at`` has come (or it has none). Before any
row is written the approval is verified again (the SHA-256 over the recipient list and texts that
the second staff member approved, invariant 1); a campaign that no longer matches is refused, logged
and left alone for staff to look at.

Rows are written in batches, each in its own transaction, with INSERT … ON CONFLICT DO NOTHING on
``uq_deliveries_once``: a crash half-way leaves some rows, and the next tick adds only the missing
ones. Only when every batch is in does the campaign move to ``sending``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.statuses import CampaignState, DeliveryStatus, Purpose
from policy_push.storage.campaign_tables import CampaignRecipientRow

from .outbox import (
    SendRules,
    begin_write,
    campaigns,
    deliveries,
    insert_deliveries,
    new_row,
    previous_sends_of_recipients,
)
from .reminders import verify_reminder

__all__ = ["Verify", "finish_campaigns", "resolve_verify", "start_campaign", "start_due_campaigns"]

log = logging.getLogger("policy_push.dispatch")
recipients = CampaignRecipientRow.__table__
Verify = Callable[[AsyncSession, str], Awaitable[bool]]
_BATCH = 1000
#: channels whose providers push receipts: a sent row there may still fail and fall back
RECEIPT_CHANNELS = ("sms", "wechat")


async def _minimal_verify(session: AsyncSession, campaign_id: str) -> bool:
    """Used only until the campaign workflow's ``verify_approval`` exists: four eyes, a hash recorded."""
    row = (await session.execute(select(campaigns).where(campaigns.c.id == campaign_id))).first()
    return bool(row and row.approval_sha256 and row.approved_by and row.approved_by != row.prepared_by)


def resolve_verify() -> Verify:
    """The campaign workflow's ``verify_approval(session, campaign_id) -> bool``."""
    for name in ("policy_push.workflow.approval", "policy_push.workflow.campaigns"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        fn = getattr(module, "verify_approval", None)
        if fn is not None:
            return fn  # type: ignore[no-any-return]
    log.warning("verify_approval not found; checking only that a different staff member approved")
    return _minimal_verify


async def start_due_campaigns(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, rules: SendRules, verify: Verify
) -> list[str]:
    """Create the outbox rows of every due campaign; returns the ids of the campaigns started."""
    c = campaigns.c
    async with sessions() as s:
        due = (
            await s.execute(
                select(c.id, c.purpose)
                .where(c.state == CampaignState.SCHEDULED.value, or_(c.send_at.is_(None), c.send_at <= now))
                .order_by(c.send_at, c.id)
            )
        ).all()
    started = []
    for campaign_id, purpose in due:
        async with sessions() as s:
            # a reminder is approved by reference to its announcement (see reminders.py)
            ok = await (verify_reminder if purpose == Purpose.REMINDER.value else verify)(s, campaign_id)
        if not ok:
            log.error("campaign %s: the approval no longer matches its recipients and texts; not sending", campaign_id)
            continue
        if await start_campaign(sessions, campaign_id, now=now, rules=rules):
            started.append(campaign_id)
    return started


async def start_campaign(
    sessions: async_sessionmaker[AsyncSession], campaign_id: str, *, now: datetime, rules: SendRules
) -> bool:
    """Write one delivery per messaged recipient (batch by batch), then move the campaign to sending."""
    async with sessions() as s:
        camp = (await s.execute(select(campaigns).where(campaigns.c.id == campaign_id))).first()
    if camp is None or camp.state != CampaignState.SCHEDULED.value:
        return False
    r = recipients.c
    d = deliveries.c
    async with sessions() as s:
        # batches commit in profile order: after a crash, resume past the last one saved
        after = await s.scalar(
            select(func.max(d.profile_id)).where(d.campaign_id == campaign_id, d.fallback_of.is_(None))
        ) or ""
    while True:
        async with sessions() as s, s.begin():
            await begin_write(s)
            batch = (
                await s.execute(
                    select(r.profile_kind, r.profile_id, r.channel)
                    .where(r.campaign_id == campaign_id, r.channel.is_not(None), r.skip_reason.is_(None), r.profile_id > after)
                    .order_by(r.profile_id)
                    .limit(_BATCH)
                )
            ).all()
            if not batch:
                break
            prev = await previous_sends_of_recipients(s, recipients, campaign_id, after, batch[-1].profile_id)
            rows = []
            for kind, pid, channel in batch:
                at, waiting = rules.plan(now, channel, prev.get((kind, pid), []), urgent=bool(camp.urgent))
                rows.append(new_row(campaign_id, camp.policy_id, kind, pid, channel, camp.purpose, at, waiting, now))
            await insert_deliveries(s, rows)
            after = batch[-1].profile_id
    async with sessions() as s, s.begin():
        await begin_write(s)
        moved = await s.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id, campaigns.c.state == CampaignState.SCHEDULED.value)
            .values(state=CampaignState.SENDING.value, updated_at=now)
        )
        await finish_campaigns(s, [campaign_id], now=now, rules=rules)
    log.info("campaign %s: outbox written, sending", campaign_id)
    return bool(getattr(moved, "rowcount", 0))


async def finish_campaigns(session: AsyncSession, campaign_ids: list[str] | set[str], *, now: datetime, rules: SendRules) -> list[str]:
    """Move ``sending`` campaigns with nothing left to do to ``done``; returns those moved.

    Nothing left: no row created or sending, and no SMS/WeChat row sent less than ``receipt_wait_s``
    ago (its receipt may still say it failed, which starts a fallback). A receipt arriving later
    still moves its row; a fallback it starts is sent all the same (rows, not campaigns, are claimed).
    """
    done = []
    d = deliveries.c
    horizon = now - timedelta(seconds=rules.receipt_wait_s)
    for campaign_id in sorted(set(campaign_ids)):
        busy = exists().where(
            d.campaign_id == campaign_id,
            or_(
                d.status.in_([DeliveryStatus.CREATED.value, DeliveryStatus.SENDING.value]),
                and_(d.status == DeliveryStatus.SENT.value, d.channel.in_(RECEIPT_CHANNELS), d.sent_at > horizon),
            ),
        )
        result = await session.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id, campaigns.c.state == CampaignState.SENDING.value, ~busy)
            .values(state=CampaignState.DONE.value, updated_at=now)
        )
        if getattr(result, "rowcount", 0):
            done.append(campaign_id)
            log.info("campaign %s: done", campaign_id)
    return done


async def sending_campaigns(session: AsyncSession) -> list[str]:
    rows = await session.execute(select(campaigns.c.id).where(campaigns.c.state == CampaignState.SENDING.value))
    return list(rows.scalars())
