"""Four eyes (invariant 1): approval, the one check of it, scheduling and cancelling.

The approver is not the preparer, and approval records who, when, and a SHA-256 over a canonical JSON
of the recipient list and the message bodies (:func:`approval_hash`). Any change after approval
(``campaigns.editing``) returns the campaign to draft and clears the approval. :func:`verify_approval`
is the one check of an approval: scheduling runs it, and so does the dispatcher before it writes a
single delivery row; a reminder campaign, approved by reference to its announcement, is checked by the
same function against the announcement's approval (see ``campaigns.reminders``).

Every function takes a session inside the caller's transaction and locks the campaign row first
(``FOR UPDATE`` on PostgreSQL; SQLite has one writer), so two staff members acting at once take turns.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.domain.canonical import canonical_json
from policy_push.errors import Conflict, InvalidInput, SelfApproval, WrongState
from policy_push.statuses import CAMPAIGN_EDITABLE, CampaignState, Purpose, can_move
from policy_push.storage import AuditLog
from policy_push.storage import campaigns as campaign_store
from policy_push.storage.campaign_tables import CampaignRow
from policy_push.storage.tables import utcnow

__all__ = [
    "approval_hash",
    "approve",
    "aware",
    "back_to_draft",
    "cancel",
    "canonical",
    "list_hash",
    "same_person",
    "schedule",
    "shown_hash",
    "verify_approval",
]

_APPROVED_STATES = frozenset({CampaignState.APPROVED.value, CampaignState.SCHEDULED.value, CampaignState.SENDING.value})
#: an announcement a reminder refers to may have finished sending since
_REFERENCE_STATES = _APPROVED_STATES | {CampaignState.DONE.value}


def same_person(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def canonical(value: Any) -> bytes:
    return canonical_json(value).encode()


def aware(moment: dt.datetime, field: str) -> dt.datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"{field} needs a time zone offset, e.g. 2026-04-01T09:00:00+08:00", loc=["body", field])
    return moment.astimezone(dt.UTC)


async def back_to_draft(session: AsyncSession, campaign: CampaignRow, actor: str, why: str) -> None:
    """Before a change: refuse it when the campaign is past changing; else drop any approval."""
    state = CampaignState(campaign.state)
    if state not in CAMPAIGN_EDITABLE:
        raise WrongState(campaign.id, state.value, why)
    if state is CampaignState.DRAFT:
        return
    was = campaign.approved_by
    moved = await campaign_store.move_state(
        session, campaign.id, CampaignState.DRAFT, now=utcnow(), expect={state},
        approved_by=None, approved_at=None, approval_sha256=None, list_sha256=None,
    )  # fmt: skip
    if not moved:
        raise WrongState(campaign.id, state.value, why)
    await session.refresh(campaign)
    await AuditLog(session).record(
        actor=actor, action="campaign.back_to_draft", entity_type="campaign", entity_id=campaign.id,
        detail={"from": state.value, "change": why, "approval_cleared": was},
    )  # fmt: skip


async def approval_hash(session: AsyncSession, campaign_id: str) -> str:
    """SHA-256 over the canonical JSON of the campaign's identity, its recipient list (kind, profile id,
    channel, skip reason, reasons, the line a message quotes; by profile id) and its message bodies (by
    channel). The rows are streamed and hashed one by one: memory stays flat whatever the list's length."""
    campaign = await campaign_store.get(session, campaign_id)
    return await list_hash(session, campaign, await campaign_store.bodies(session, campaign_id))


async def list_hash(session: AsyncSession, campaign: Any, bodies: dict[str, dict[str, Any]]) -> str:
    """:func:`approval_hash` of ``campaign`` (id, policy id and version) with these message bodies (a
    draft's last transaction hashes the bodies it is about to store)."""
    digest = hashlib.sha256(
        canonical({"campaign": campaign.id, "policy_id": campaign.policy_id, "policy_version": campaign.policy_version})
    )
    async for kind, pid, channel, skip, reasons, quoted in campaign_store.stream_recipients(session, campaign.id):
        # the line a message quotes is part of what is approved (absent from rows drafted before it existed,
        # whose hashes stay as they were)
        extra = [] if quoted is None else [quoted]
        digest.update(b"\nR" + canonical([kind, pid, channel, skip, list(reasons or []), *extra]))
    for channel in sorted(bodies):
        digest.update(b"\nM" + canonical([channel, bodies[channel]]))
    return digest.hexdigest()


async def shown_hash(session: AsyncSession, campaign: CampaignRow) -> str:
    """The hash a preview shows: the one kept on the campaign since its draft was written (None once
    anything changed), else computed now. An approval computes it afresh all the same."""
    return campaign.list_sha256 or await approval_hash(session, campaign.id)


async def _holds(session: AsyncSession, campaign: CampaignRow, *, states: frozenset[str] = _APPROVED_STATES) -> bool:
    """The campaign's own approval holds: approved by someone other than its preparer, and its list and
    texts still hash to the value recorded."""
    if campaign.state not in states or not campaign.approval_sha256 or not campaign.approved_by:
        return False
    if same_person(campaign.approved_by, campaign.prepared_by):
        return False
    return await approval_hash(session, campaign.id) == campaign.approval_sha256


async def verify_approval(session: AsyncSession, campaign_id: str) -> bool:
    """True when the campaign may be sent: its approval holds (four eyes, hash unchanged). A reminder
    holds when its announcement's approval does and it adds nobody and no text to it."""
    campaign = await campaign_store.get(session, campaign_id)
    if campaign.purpose != Purpose.REMINDER.value:
        return await _holds(session, campaign)
    ref = (campaign.summary or {}).get("approved_by_reference")
    if not ref or campaign.state not in _APPROVED_STATES:
        return False
    announcement = await campaign_store.get(session, ref)
    if announcement.policy_id != campaign.policy_id or campaign.approval_sha256 != announcement.approval_sha256:
        return False
    if not await _holds(session, announcement, states=_REFERENCE_STATES):
        return False
    if await campaign_store.stray_recipients(session, campaign_id, ref):
        return False
    mine, theirs = await campaign_store.bodies(session, campaign_id), await campaign_store.bodies(session, ref)
    return all(theirs.get(ch) == body for ch, body in mine.items())


async def approve(
    session: AsyncSession,
    campaign_id: str,
    *,
    approver: str,
    and_schedule: bool = False,
    now: dt.datetime | None = None,
    expect_sha256: str | None = None,
) -> CampaignRow:
    """draft -> approved (or -> scheduled with ``and_schedule``); 403 when the approver prepared it, 409
    when nobody would be messaged (the campaign's state, not the request, is what is wrong) or when
    ``expect_sha256`` (what the approver saw) is no longer the list's hash."""
    campaign = await campaign_store.get(session, campaign_id, lock=True)
    state = CampaignState(campaign.state)
    if not can_move(state, CampaignState.APPROVED):
        raise WrongState(campaign.id, state.value, "approve")
    if same_person(approver, campaign.prepared_by):
        raise SelfApproval(campaign.id, campaign.prepared_by)
    if not (campaign.summary or {}).get("to_message_total"):
        raise Conflict(
            f"campaign {campaign.id} would message nobody; there is nothing to approve (cancel it instead)",
            loc=["path", "id"],
        )
    moment = now or utcnow()
    digest = await approval_hash(session, campaign_id)
    if expect_sha256 is not None and expect_sha256 != digest:
        raise Conflict(
            f"campaign {campaign.id} changed since it was shown (recipients or messages); reload it and approve again",
            loc=["query", "sha256"],
        )
    await campaign_store.move_state(
        session, campaign_id, CampaignState.APPROVED, now=moment, expect={state},
        approved_by=approver, approved_at=moment, approval_sha256=digest, list_sha256=digest,
    )  # fmt: skip
    await AuditLog(session).record(
        actor=approver, action="campaign.approve", entity_type="campaign", entity_id=campaign.id,
        detail={"sha256": digest, "prepared_by": campaign.prepared_by,
                "to_message": (campaign.summary or {}).get("to_message", {})},
    )  # fmt: skip
    if and_schedule:
        return await schedule(session, campaign_id, actor=approver, now=moment)
    return await campaign_store.get(session, campaign_id)


async def schedule(
    session: AsyncSession,
    campaign_id: str,
    *,
    actor: str,
    send_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> CampaignRow:
    """approved -> scheduled. The send time is the one set in draft, else ``send_at`` (future), else now.
    A campaign changed since approval goes back to draft (409)."""
    moment = now or utcnow()
    campaign = await campaign_store.get(session, campaign_id, lock=True)
    state = CampaignState(campaign.state)
    if state is not CampaignState.APPROVED:
        raise WrongState(campaign.id, state.value, "schedule (approve it first)" if state is CampaignState.DRAFT else "schedule")
    when = campaign.send_at
    if send_at is not None:
        wanted = aware(send_at, "send_at")
        if when is not None and when != wanted:
            raise WrongState(
                campaign.id, f"approved to send at {when.isoformat()}",
                "schedule at another time; set the send time (returns it to draft)",
            )  # fmt: skip
        if wanted <= moment:
            raise InvalidInput("send_at must be in the future", loc=["body", "send_at"])
        when = wanted
    if not await verify_approval(session, campaign_id):
        await back_to_draft(session, campaign, actor, "schedule: recipients or messages changed since approval")
        raise WrongState(campaign.id, "changed since approval (now draft)", "schedule")
    when = when or moment
    await campaign_store.move_state(session, campaign_id, CampaignState.SCHEDULED, now=moment, expect={state}, send_at=when)
    await AuditLog(session).record(
        actor=actor, action="campaign.schedule", entity_type="campaign", entity_id=campaign.id,
        detail={"send_at": when.isoformat()},
    )  # fmt: skip
    return await campaign_store.get(session, campaign_id)


async def cancel(session: AsyncSession, campaign_id: str, *, actor: str, reason: str = "") -> CampaignRow:
    """Any state but done/cancelled -> cancelled. Its delivery rows still ``created`` are cancelled by
    the dispatcher's claim, which sends only for live campaigns."""
    campaign = await campaign_store.get(session, campaign_id, lock=True)
    state = CampaignState(campaign.state)
    if not can_move(state, CampaignState.CANCELLED):
        raise WrongState(campaign.id, state.value, "cancel")
    await campaign_store.move_state(session, campaign_id, CampaignState.CANCELLED, now=utcnow(), expect={state})
    await AuditLog(session).record(
        actor=actor, action="campaign.cancel", entity_type="campaign", entity_id=campaign.id,
        detail={"from": state.value, "reason": reason[:200]},
    )  # fmt: skip
    return await campaign_store.get(session, campaign_id)
