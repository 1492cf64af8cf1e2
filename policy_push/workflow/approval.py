"""A campaign's life after preparation: exclude/include, send time, approval, schedule, cancel.

Every function takes a session inside the caller's transaction and locks the campaign row
first (``FOR UPDATE`` on PostgreSQL; SQLite has one writer), so two staff members acting at
once are serialised.  State moves are checked with :func:`policy_push.statuses.can_move`.

Four eyes (design.md, invariant 1): the approver is not the preparer, and approval records
who, when, and a SHA-256 over a canonical JSON of the recipient list and the message bodies
(:func:`approval_hash`).  Any change after approval (recipients, send time, re-rendered
messages) returns the campaign to draft and clears the approval; the dispatcher calls
:func:`verify_approval` and refuses a campaign whose hash no longer matches.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.config import Settings
from policy_push.statuses import CAMPAIGN_EDITABLE, CampaignState, SkipReason, can_move
from policy_push.storage import AuditLog
from policy_push.storage.campaign_tables import CampaignMessageRow, CampaignRecipientRow, CampaignRow
from policy_push.storage.tables import utcnow

from .campaigns import _version_document, recount_summary
from .errors import BadWorkflowInput, CampaignNotFound, SelfApproval, WrongState
from .messages import MessageSettings, build_message_bodies

__all__ = [
    "MAX_PROFILE_IDS",
    "approval_hash",
    "approve",
    "cancel",
    "exclude_recipients",
    "get_campaign",
    "include_recipients",
    "rerender_messages",
    "schedule",
    "set_send_time",
    "verify_approval",
]

#: profile ids per exclude/include call
MAX_PROFILE_IDS = 10_000
#: skip reasons staff may lift by including a recipient; the others are the rules (consent,
#: opt-out, reachability, told before) and no staff decision overrides them
_INCLUDABLE = frozenset({SkipReason.EXCLUDED.value, SkipReason.MAY_QUALIFY.value})
_EXCLUDABLE = frozenset({None, SkipReason.MAY_QUALIFY.value})
_APPROVED_STATES = frozenset({CampaignState.APPROVED.value, CampaignState.SCHEDULED.value, CampaignState.SENDING.value})


def _same_person(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


async def get_campaign(session: AsyncSession, campaign_id: str, *, lock: bool = False) -> CampaignRow:
    stmt = select(CampaignRow).where(CampaignRow.id == campaign_id).execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    campaign = await session.scalar(stmt)
    if campaign is None:
        raise CampaignNotFound("campaign", campaign_id)
    return campaign


def _canonical(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


async def approval_hash(session: AsyncSession, campaign_id: str) -> str:
    """SHA-256 over the canonical JSON of the campaign's identity, its recipient list
    (kind, profile id, channel, skip reason, reasons; by profile id) and its message bodies
    (by channel).  Hashed row by row, so a 100k-recipient list is never one string."""
    campaign = await get_campaign(session, campaign_id)
    digest = hashlib.sha256(
        _canonical({"campaign": campaign.id, "policy_id": campaign.policy_id, "policy_version": campaign.policy_version})
    )
    rows = await session.stream(
        select(
            CampaignRecipientRow.profile_kind,
            CampaignRecipientRow.profile_id,
            CampaignRecipientRow.channel,
            CampaignRecipientRow.skip_reason,
            CampaignRecipientRow.reasons,
        )
        .where(CampaignRecipientRow.campaign_id == campaign_id)
        .order_by(CampaignRecipientRow.profile_id)
    )
    async for kind, pid, channel, skip, reasons in rows:
        digest.update(b"\nR" + _canonical([kind, pid, channel, skip, list(reasons or [])]))
    messages = await session.execute(
        select(CampaignMessageRow.channel, CampaignMessageRow.body)
        .where(CampaignMessageRow.campaign_id == campaign_id)
        .order_by(CampaignMessageRow.channel)
    )
    for channel, body in messages:
        digest.update(b"\nM" + _canonical([channel, body]))
    return digest.hexdigest()


async def verify_approval(session: AsyncSession, campaign_id: str) -> bool:
    """True when the campaign is approved (approved, scheduled or sending) by someone other than
    its preparer and its recipients and messages still hash to the recorded value."""
    campaign = await get_campaign(session, campaign_id)
    if campaign.state not in _APPROVED_STATES or not campaign.approval_sha256 or not campaign.approved_by:
        return False
    if _same_person(campaign.approved_by, campaign.prepared_by):
        return False
    return await approval_hash(session, campaign_id) == campaign.approval_sha256


async def _back_to_draft(session: AsyncSession, campaign: CampaignRow, actor: str, why: str) -> None:
    """Before a change: refuse it when the campaign is past changing; else drop any approval."""
    state = CampaignState(campaign.state)
    if state not in CAMPAIGN_EDITABLE:
        raise WrongState(campaign.id, state.value, why)
    if state is CampaignState.DRAFT:
        return
    if not can_move(state, CampaignState.DRAFT):
        raise WrongState(campaign.id, state.value, why)
    was = campaign.approved_by
    campaign.state = CampaignState.DRAFT.value
    campaign.approved_by = None
    campaign.approved_at = None
    campaign.approval_sha256 = None
    campaign.updated_at = utcnow()
    await AuditLog(session).record(
        actor=actor, action="campaign.back_to_draft", entity_type="campaign", entity_id=campaign.id,
        detail={"from": state.value, "change": why, "approval_cleared": was},
    )  # fmt: skip


def _check_ids(profile_ids: Sequence[str]) -> list[str]:
    if not isinstance(profile_ids, list | tuple) or not profile_ids:
        raise BadWorkflowInput("profile_ids must be a non-empty list of profile ids", loc=["body", "profile_ids"])
    if len(profile_ids) > MAX_PROFILE_IDS:
        raise BadWorkflowInput(f"at most {MAX_PROFILE_IDS} profile ids per call", loc=["body", "profile_ids"])
    for i, pid in enumerate(profile_ids):
        if not isinstance(pid, str) or not 1 <= len(pid) <= 64:
            raise BadWorkflowInput("each profile id must be a string of 1-64 characters", loc=["body", "profile_ids", i])
    return list(dict.fromkeys(profile_ids))


async def _recipients(session: AsyncSession, campaign_id: str, ids: list[str]) -> dict[str, CampaignRecipientRow]:
    found: dict[str, CampaignRecipientRow] = {}
    for start in range(0, len(ids), 500):
        rows = await session.scalars(
            select(CampaignRecipientRow)
            .where(CampaignRecipientRow.campaign_id == campaign_id, CampaignRecipientRow.profile_id.in_(ids[start : start + 500]))
            .execution_options(populate_existing=True)
        )
        found.update({r.profile_id: r for r in rows})
    missing = [i for i in ids if i not in found]
    if missing:
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        raise BadWorkflowInput(
            f"{len(missing)} profile id(s) are not recipients of campaign {campaign_id}: {shown}",
            loc=["body", "profile_ids"], missing=missing[:100],
        )  # fmt: skip
    return found


async def exclude_recipients(
    session: AsyncSession, campaign_id: str, profile_ids: Sequence[str], *, actor: str
) -> dict[str, Any]:
    """Take recipients off the list (recorded as ``excluded`` with who).  Recipients already
    not messaged for a rule (no consent, opted out …) stay as they are.  Returns the counts."""
    return await _change_recipients(session, campaign_id, profile_ids, actor=actor, exclude=True)


async def include_recipients(
    session: AsyncSession, campaign_id: str, profile_ids: Sequence[str], *, actor: str
) -> dict[str, Any]:
    """Put excluded recipients back, or include may-qualify ones.  A recipient skipped for a rule
    (no consent, opted out, unreachable, told before) cannot be included: 422 naming them."""
    return await _change_recipients(session, campaign_id, profile_ids, actor=actor, exclude=False)


async def _change_recipients(
    session: AsyncSession, campaign_id: str, profile_ids: Sequence[str], *, actor: str, exclude: bool
) -> dict[str, Any]:
    ids = _check_ids(profile_ids)
    campaign = await get_campaign(session, campaign_id, lock=True)
    action = "exclude recipients" if exclude else "include recipients"
    if CampaignState(campaign.state) not in CAMPAIGN_EDITABLE:
        raise WrongState(campaign.id, campaign.state, action)
    rows = await _recipients(session, campaign_id, ids)
    if exclude:
        targets = [r for r in rows.values() if r.skip_reason in _EXCLUDABLE]
    else:
        refused = {pid: r.skip_reason for pid, r in rows.items() if r.skip_reason not in _INCLUDABLE | {None}}
        if refused:
            raise BadWorkflowInput(
                f"{len(refused)} recipient(s) cannot be included: the rules skip them "
                + ", ".join(f"{pid} ({why})" for pid, why in list(refused.items())[:10]),
                loc=["body", "profile_ids"], refused=dict(list(refused.items())[:100]),
            )  # fmt: skip
        targets = [r for r in rows.values() if r.skip_reason in _INCLUDABLE and r.channel is not None]
    if targets:
        await _back_to_draft(session, campaign, actor, action)
        for r in targets:
            r.skip_reason = SkipReason.EXCLUDED.value if exclude else None
            r.excluded_by = actor if exclude else None
        await session.flush()
        campaign.updated_at = utcnow()
        await AuditLog(session).record(
            actor=actor, action="campaign.exclude" if exclude else "campaign.include", entity_type="campaign",
            entity_id=campaign.id, detail={"profile_ids": [r.profile_id for r in targets][:1000], "count": len(targets)},
        )  # fmt: skip
    summary = await recount_summary(session, campaign_id)
    return {"changed": len(targets), "unchanged": len(ids) - len(targets), "state": campaign.state, "summary": summary}


def _aware(moment: dt.datetime, field: str) -> dt.datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise BadWorkflowInput(f"{field} needs a time zone offset, e.g. 2026-04-01T09:00:00+08:00", loc=["body", field])
    return moment.astimezone(dt.UTC)


async def set_send_time(
    session: AsyncSession, campaign_id: str, send_at: dt.datetime | None, *, actor: str, now: dt.datetime | None = None
) -> CampaignRow:
    """Set (or clear, with None: "as soon as scheduled") the send time; it must be in the future."""
    when = None if send_at is None else _aware(send_at, "send_at")
    if when is not None and when <= (now or utcnow()):
        raise BadWorkflowInput("send_at must be in the future", loc=["body", "send_at"])
    campaign = await get_campaign(session, campaign_id, lock=True)
    if campaign.send_at == when:
        if CampaignState(campaign.state) not in CAMPAIGN_EDITABLE:
            raise WrongState(campaign.id, campaign.state, "set the send time")
        return campaign
    await _back_to_draft(session, campaign, actor, "set the send time")
    campaign.send_at = when
    campaign.updated_at = utcnow()
    await AuditLog(session).record(
        actor=actor, action="campaign.send_time", entity_type="campaign", entity_id=campaign.id,
        detail={"send_at": None if when is None else when.isoformat()},
    )  # fmt: skip
    return campaign


async def approve(
    session: AsyncSession, campaign_id: str, *, approver: str, and_schedule: bool = False, now: dt.datetime | None = None
) -> CampaignRow:
    """draft -> approved (or -> scheduled with ``and_schedule``); 403 when the approver prepared it."""
    campaign = await get_campaign(session, campaign_id, lock=True)
    state = CampaignState(campaign.state)
    if not can_move(state, CampaignState.APPROVED):
        raise WrongState(campaign.id, state.value, "approve")
    if _same_person(approver, campaign.prepared_by):
        raise SelfApproval(campaign.id, campaign.prepared_by)
    moment = now or utcnow()
    campaign.approval_sha256 = await approval_hash(session, campaign_id)
    campaign.approved_by = approver
    campaign.approved_at = moment
    campaign.state = CampaignState.APPROVED.value
    campaign.updated_at = moment
    await AuditLog(session).record(
        actor=approver, action="campaign.approve", entity_type="campaign", entity_id=campaign.id,
        detail={"sha256": campaign.approval_sha256, "prepared_by": campaign.prepared_by,
                "to_message": (campaign.summary or {}).get("to_message", {})},
    )  # fmt: skip
    if and_schedule:
        return await schedule(session, campaign_id, actor=approver, now=moment)
    return campaign


async def schedule(
    session: AsyncSession,
    campaign_id: str,
    *,
    actor: str,
    send_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> CampaignRow:
    """approved -> scheduled.  The send time is the one set in draft, else ``send_at`` (future),
    else now.  A campaign changed since approval goes back to draft (409)."""
    moment = now or utcnow()
    campaign = await get_campaign(session, campaign_id, lock=True)
    state = CampaignState(campaign.state)
    if not can_move(state, CampaignState.SCHEDULED) or state is not CampaignState.APPROVED:
        raise WrongState(campaign.id, state.value, "schedule (approve it first)" if state is CampaignState.DRAFT else "schedule")
    if send_at is not None:
        when = _aware(send_at, "send_at")
        if campaign.send_at is not None and campaign.send_at != when:
            raise WrongState(
                campaign.id, f"approved to send at {campaign.send_at.isoformat()}", "schedule at another time; set the send time (returns it to draft)"
            )
        if when <= moment:
            raise BadWorkflowInput("send_at must be in the future", loc=["body", "send_at"])
        campaign.send_at = when
    if not await verify_approval(session, campaign_id):
        await _back_to_draft(session, campaign, actor, "schedule: recipients or messages changed since approval")
        raise WrongState(campaign.id, "changed since approval (now draft)", "schedule")
    campaign.state = CampaignState.SCHEDULED.value
    if campaign.send_at is None:
        campaign.send_at = moment
    campaign.updated_at = moment
    await AuditLog(session).record(
        actor=actor, action="campaign.schedule", entity_type="campaign", entity_id=campaign.id,
        detail={"send_at": campaign.send_at.isoformat()},
    )  # fmt: skip
    return campaign


async def cancel(session: AsyncSession, campaign_id: str, *, actor: str, reason: str = "") -> CampaignRow:
    """Any state but done/cancelled -> cancelled.  Delivery rows of a sending campaign that are
    still ``created`` are the dispatcher's to cancel: it claims only from live campaigns."""
    campaign = await get_campaign(session, campaign_id, lock=True)
    state = CampaignState(campaign.state)
    if not can_move(state, CampaignState.CANCELLED):
        raise WrongState(campaign.id, state.value, "cancel")
    campaign.state = CampaignState.CANCELLED.value
    campaign.updated_at = utcnow()
    await AuditLog(session).record(
        actor=actor, action="campaign.cancel", entity_type="campaign", entity_id=campaign.id,
        detail={"from": state.value, "reason": reason[:200]},
    )  # fmt: skip
    return campaign


async def rerender_messages(session: AsyncSession, campaign_id: str, *, settings: Settings, actor: str) -> bool:
    """Render the messages again (e.g. after a change of signature or link settings).  True when
    a text changed; that, like any change, returns an approved campaign to draft."""
    campaign = await get_campaign(session, campaign_id, lock=True)
    if CampaignState(campaign.state) not in CAMPAIGN_EDITABLE:
        raise WrongState(campaign.id, campaign.state, "re-render the messages")
    policy = await _version_document(session, campaign.policy_id, campaign.policy_version)
    if policy is None:
        raise CampaignNotFound("policy version", f"{campaign.policy_id}@{campaign.policy_version}")
    rows = (
        await session.execute(
            select(CampaignRecipientRow.channel, CampaignRecipientRow.skip_reason, CampaignRecipientRow.reasons)
            .where(CampaignRecipientRow.campaign_id == campaign_id, CampaignRecipientRow.channel.is_not(None))
            .order_by(CampaignRecipientRow.score.desc(), CampaignRecipientRow.profile_id)
        )
    ).all()
    sample = [list(r.reasons or []) for r in rows if r.skip_reason is None] or [list(r.reasons or []) for r in rows][:1]
    stored = dict(
        (
            await session.execute(
                select(CampaignMessageRow.channel, CampaignMessageRow.body).where(CampaignMessageRow.campaign_id == campaign_id)
            )
        ).all()
    )
    # the stored set includes the fallback channels' texts, approved up front with the first choices
    channels = set(stored) | {r.channel for r in rows}
    bodies = build_message_bodies(policy, channels, MessageSettings.from_settings(settings), sample_reasons=sample)
    if _canonical(stored) == _canonical(bodies):
        return False
    await _back_to_draft(session, campaign, actor, "re-render the messages")
    for channel, body in bodies.items():
        if channel in stored:
            await session.execute(
                update(CampaignMessageRow)
                .where(CampaignMessageRow.campaign_id == campaign_id, CampaignMessageRow.channel == channel)
                .values(body=body)
            )
        else:
            session.add(CampaignMessageRow(campaign_id=campaign_id, channel=channel, body=body))
    campaign.updated_at = utcnow()
    await AuditLog(session).record(
        actor=actor, action="campaign.rerender", entity_type="campaign", entity_id=campaign.id, detail={"channels": sorted(bodies)}
    )
    return True
