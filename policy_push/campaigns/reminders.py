"""Deadline reminders: N days before ``apply_until``, the approved message once more, to those who were
told and have not answered.

Who: recipients of the policy's announcement campaign who were eligible (not "may qualify"), whose
announcement reached a provider (``sent`` or ``delivered``) and who have said neither 已申报
(``applied``) nor 不相关 (``irrelevant``), and whom ``policy_push.reach`` still allows on the channel
that carried the announcement. Each gets the reminder on that channel. Purpose ``reminder`` has its
own row in ``uq_deliveries_once``, so a reminder goes at most once per person and channel, however
often the tick runs.

Approval: a reminder is not a new decision. It repeats the approved texts (the announcement's bodies,
copied unchanged) to a subset of the approved recipient list, so it is approved *by reference*:
``approved_by`` is the announcement's approver, ``summary.approved_by_reference`` the announcement's
id and ``approval_sha256`` its hash. ``approval.verify_approval`` checks, before anything is sent, that
the announcement's approval still holds and that the reminder adds nobody and no text to it. Staff can
cancel a reminder campaign like any other.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.statuses import CampaignState, FeedbackKind, Purpose, SkipReason
from policy_push.storage import AuditLog, contacts, delivery_history
from policy_push.storage import campaigns as campaign_store
from policy_push.storage import feedback as feedback_store
from policy_push.storage.campaigns import RecipientLines
from policy_push.storage.sql import begin_write
from scheduler import end_of_local_day, reminder_due

__all__ = ["create_due_reminders"]

log = logging.getLogger("policy_push.reminders")
_ANSWERED = (FeedbackKind.APPLIED, FeedbackKind.IRRELEVANT)


async def create_due_reminders(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, days_before: int, tz: str = "Asia/Shanghai"
) -> list[str]:
    """Create (scheduled, approved by reference) the reminder campaigns now due; returns their ids."""
    local_today = now.astimezone(ZoneInfo(tz)).date()
    async with sessions() as s:
        rows = await campaign_store.policies_closing(s, first=local_today, last=local_today + timedelta(days=days_before))
    created = []
    for policy_id, until in rows:
        if not reminder_due(until, days_before, tz) <= now < end_of_local_day(until, tz):
            continue
        async with sessions() as s, s.begin():
            await begin_write(s)
            if await campaign_store.has_campaign(s, policy_id, Purpose.REMINDER):
                continue
            announcement = await campaign_store.latest_announcement(
                s, policy_id, states=(CampaignState.SENDING, CampaignState.DONE)
            )
            if announcement is None:
                continue
            campaign_id = await _create(s, announcement, now=now)
            if campaign_id:
                created.append(campaign_id)
    return created


async def _create(s: AsyncSession, announcement: Any, *, now: datetime) -> str | None:
    told = await delivery_history.reached(s, announcement.id, Purpose.ANNOUNCE)
    answered = await feedback_store.answered(s, announcement.policy_id, _ANSWERED)
    listed = await campaign_store.recipients_of(s, announcement.id)
    reach = await contacts.load_reach(s, {(kind, pid) for kind, pid, _ in told})
    campaign_id = str(uuid.uuid4())
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for kind, pid, channel in told:
        key = (kind, pid)
        eligible, lines = listed.get(key, (False, RecipientLines([])))
        if key in seen or not eligible:
            continue
        seen.add(key)
        refusal = reach[key].refusal(channel) if key in reach else SkipReason.UNREACHABLE
        skip = SkipReason.FEEDBACK if key in answered else refusal
        rows.append({
            "campaign_id": campaign_id, "profile_id": pid, "profile_kind": kind, "eligible": True, "score": 1.0,
            "reasons": lines.reasons, "message_reason": lines.message_reason, "public_reasons": lines.public_reasons,
            "missing": [], "channel": channel, "skip_reason": None if skip is None else skip.value,
            "excluded_by": None,
        })  # fmt: skip
    to_remind = sum(1 for r in rows if r["skip_reason"] is None)
    if not to_remind:
        return None
    summary = {
        "approved_by_reference": announcement.id,
        "note": "reminder: the announcement's approved texts to its recipients who have not answered",
        "recipients": to_remind,
        "skipped_feedback_or_opt_out": len(rows) - to_remind,
    }
    campaign = {
        "id": campaign_id, "policy_id": announcement.policy_id, "policy_version": announcement.policy_version,
        "audience": announcement.audience, "purpose": Purpose.REMINDER.value, "state": CampaignState.SCHEDULED.value,
        "urgent": announcement.urgent, "prepared_by": "scheduler", "approved_by": announcement.approved_by,
        "approved_at": now, "approval_sha256": announcement.approval_sha256, "send_at": now, "summary": summary,
        "created_at": now, "updated_at": now,
    }  # fmt: skip
    await campaign_store.insert_campaign(s, campaign, rows, await campaign_store.bodies(s, announcement.id))
    await AuditLog(s).record(
        actor="scheduler", action="campaign.reminder", entity_type="campaign", entity_id=campaign_id,
        detail={"approved_by_reference": announcement.id, "recipients": to_remind},
    )  # fmt: skip
    log.info("reminder campaign %s for policy %s: %d recipient(s)", campaign_id, announcement.policy_id, to_remind)
    return campaign_id
