"""Deadline reminders: N days before ``apply_until``, the approved message once more, to those who
were told and have not answered.

Who: recipients of the policy's announcement campaign who were eligible (not "may qualify"), whose
announcement reached a provider (``sent`` or ``delivered``) and who have said neither 已申报
(``applied``) nor 不相关 (``irrelevant``), nor opted out. Each gets the reminder on the channel that
carried the announcement. Purpose ``reminder`` has its own row in ``uq_deliveries_once``, so a
reminder goes at most once per person and channel, however often the tick runs.

Approval: a reminder is not a new decision. It repeats the approved texts (the announcement's
``campaign_messages`` bodies, copied unchanged) to a subset of the approved recipient list, so it
is approved *by reference*: ``approved_by`` is the announcement's approver, ``summary`` records
``approved_by_reference`` (the announcement's id) and ``approval_sha256`` the announcement's hash.
Before sending, :func:`verify_reminder` checks that the announcement's approval still verifies
(its hash, four eyes) and that every reminder recipient is on the announcement's list with the
same channel or a fallback one. Staff can still cancel a reminder campaign like any other.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.statuses import CampaignState, DeliveryStatus, FeedbackKind, Purpose
from policy_push.storage import AuditLog
from policy_push.storage.campaign_tables import CampaignMessageRow, CampaignRecipientRow, FeedbackRow
from policy_push.storage.tables import PolicyRow
from scheduler import end_of_local_day, reminder_due

from .outbox import begin_write, campaigns, deliveries, opt_outs

__all__ = ["create_due_reminders", "verify_reminder"]

log = logging.getLogger("policy_push.reminders")
recipients = CampaignRecipientRow.__table__
messages = CampaignMessageRow.__table__
feedback = FeedbackRow.__table__
_REACHED = [DeliveryStatus.SENT.value, DeliveryStatus.DELIVERED.value]
_ANSWERED = [FeedbackKind.APPLIED.value, FeedbackKind.IRRELEVANT.value]


async def create_due_reminders(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, days_before: int, tz: str = "Asia/Shanghai"
) -> list[str]:
    """Create (scheduled, approved by reference) the reminder campaigns now due; returns their ids."""
    local_today = now.astimezone(ZoneInfo(tz)).date()
    c = campaigns.c
    async with sessions() as s:
        rows = (
            await s.execute(
                select(PolicyRow.id, PolicyRow.apply_until).where(
                    PolicyRow.apply_until.is_not(None),
                    PolicyRow.apply_until >= local_today,
                    PolicyRow.apply_until <= local_today + timedelta(days=days_before),
                )
            )
        ).all()
    created = []
    for policy_id, until in rows:
        if not reminder_due(until, days_before, tz) <= now < end_of_local_day(until, tz):
            continue
        async with sessions() as s, s.begin():
            await begin_write(s)
            has_reminder = await s.scalar(
                select(func.count()).select_from(campaigns).where(c.policy_id == policy_id, c.purpose == Purpose.REMINDER.value)
            )
            if has_reminder:
                continue
            announce = (
                await s.execute(
                    select(campaigns)
                    .where(c.policy_id == policy_id, c.purpose == Purpose.ANNOUNCE.value,
                           c.state.in_([CampaignState.SENDING.value, CampaignState.DONE.value]))
                    .order_by(c.created_at.desc())
                    .limit(1)
                )
            ).first()  # fmt: skip
            if announce is None:
                continue
            campaign_id = await _create(s, announce, now=now, send_at=now)
            if campaign_id:
                created.append(campaign_id)
    return created


async def _create(s: AsyncSession, announce: Any, *, now: datetime, send_at: datetime) -> str | None:
    r, d, f, o = recipients.c, deliveries.c, feedback.c, opt_outs.c
    reached = (
        select(d.profile_kind, d.profile_id, d.channel)
        .where(d.campaign_id == announce.id, d.purpose == Purpose.ANNOUNCE.value, d.status.in_(_REACHED))
        .order_by(d.profile_id)
    )
    answered = {
        (k, p)
        for k, p in await s.execute(
            select(f.profile_kind, f.profile_id).where(f.policy_id == announce.policy_id, f.kind.in_(_ANSWERED))
        )
    }
    listed = {
        (k, p): (eligible, reasons)
        for k, p, eligible, reasons in await s.execute(
            select(r.profile_kind, r.profile_id, r.eligible, r.reasons).where(r.campaign_id == announce.id)
        )
    }
    blocked = {(k, p) for k, p in await s.execute(select(o.profile_kind, o.profile_id).where(o.channel == "*"))}
    campaign_id = str(uuid.uuid4())
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    skipped = 0
    for kind, pid, channel in await s.execute(reached):
        key = (kind, pid)
        eligible, reasons = listed.get(key, (False, []))
        if key in seen or not eligible:
            continue
        seen.add(key)
        skip = "feedback" if key in answered else ("opted_out" if key in blocked else None)
        skipped += skip is not None
        rows.append({
            "campaign_id": campaign_id, "profile_id": pid, "profile_kind": kind, "eligible": True, "score": 1.0,
            "reasons": list(reasons or []), "missing": [], "channel": channel, "skip_reason": skip, "excluded_by": None,
        })  # fmt: skip
    if not any(row["skip_reason"] is None for row in rows):
        return None
    summary = {
        "approved_by_reference": announce.id,
        "note": "reminder: the announcement's approved texts to its recipients who have not answered",
        "recipients": len(rows) - skipped,
        "skipped_feedback_or_opt_out": skipped,
    }
    await s.execute(
        insert(campaigns),
        [{
            "id": campaign_id, "policy_id": announce.policy_id, "policy_version": announce.policy_version,
            "audience": announce.audience, "purpose": Purpose.REMINDER.value, "state": CampaignState.SCHEDULED.value,
            "urgent": announce.urgent, "prepared_by": "scheduler", "approved_by": announce.approved_by,
            "approved_at": now, "approval_sha256": announce.approval_sha256, "send_at": send_at, "summary": summary,
            "created_at": now, "updated_at": now,
        }],
    )  # fmt: skip
    for start in range(0, len(rows), 1000):
        await s.execute(insert(recipients), rows[start : start + 1000])
    m = messages.c
    bodies = (await s.execute(select(m.channel, m.body).where(m.campaign_id == announce.id))).all()
    await s.execute(insert(messages), [{"campaign_id": campaign_id, "channel": ch, "body": body} for ch, body in bodies])
    await AuditLog(s).record(
        actor="scheduler", action="campaign.reminder", entity_type="campaign", entity_id=campaign_id,
        detail={"approved_by_reference": announce.id, "recipients": len(rows) - skipped},
    )  # fmt: skip
    log.info("reminder campaign %s for policy %s: %d recipient(s)", campaign_id, announce.policy_id, len(rows) - skipped)
    return campaign_id


async def verify_reminder(session: AsyncSession, campaign_id: str) -> bool:
    """The announcement's approval still holds, and the reminder adds nobody and no text to it."""
    from .approval import approval_hash  # the campaign workflow's hash, the one the approver signed

    c = campaigns.c
    row = (await session.execute(select(campaigns).where(c.id == campaign_id))).first()
    ref = (row.summary or {}).get("approved_by_reference") if row is not None else None
    if row is None or not ref:
        return False
    announce = (await session.execute(select(campaigns).where(c.id == ref))).first()
    if announce is None or announce.policy_id != row.policy_id or not announce.approval_sha256:
        return False
    if not announce.approved_by or announce.approved_by.strip().casefold() == announce.prepared_by.strip().casefold():
        return False
    if await approval_hash(session, ref) != announce.approval_sha256 or row.approval_sha256 != announce.approval_sha256:
        return False
    r = recipients.c
    a = recipients.alias("a")
    stray = await session.scalar(
        select(func.count())
        .select_from(recipients)
        .where(r.campaign_id == campaign_id, ~exists().where(and_(a.c.campaign_id == ref, a.c.profile_id == r.profile_id)))
    )
    m, m2 = messages.c, messages.alias("m2")
    changed = await session.scalar(
        select(func.count())
        .select_from(messages)
        .where(m.campaign_id == campaign_id,
               ~exists().where(and_(m2.c.campaign_id == ref, m2.c.channel == m.channel)))
    )  # fmt: skip
    if stray or changed:
        return False
    mine = dict((await session.execute(select(m.channel, m.body).where(m.campaign_id == campaign_id))).all())
    theirs = dict((await session.execute(select(m.channel, m.body).where(m.campaign_id == ref))).all())
    return all(theirs.get(ch) == body for ch, body in mine.items())
