"""What staff change on a campaign before it is sent: recipients excluded or included, the send time,
the messages rendered again. Any change of an approved or scheduled campaign returns it to draft and
clears the approval (``back_to_draft``), so what is sent is always what the approver saw."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.config import Settings
from policy_push.errors import Conflict, InvalidInput, NotFound, WrongState
from policy_push.statuses import CAMPAIGN_EDITABLE, CampaignState, SkipReason
from policy_push.storage import AuditLog
from policy_push.storage import campaigns as campaign_store
from policy_push.storage.campaign_tables import CampaignRow
from policy_push.storage.tables import utcnow

from .approval import aware, back_to_draft, canonical
from .drafting import version_document
from .messages import MessageSettings, build_message_bodies, quoted_reason
from .recipients import recount_summary

__all__ = [
    "MAX_PROFILE_IDS",
    "exclude_recipients",
    "include_recipients",
    "rerender_messages",
    "set_send_time",
]

#: profile ids per exclude/include call
MAX_PROFILE_IDS = 10_000
#: skip reasons staff may lift by including a recipient; the others are the rules (consent, opt-out,
#: reachability, told before) and no staff decision overrides them
_INCLUDABLE = frozenset({SkipReason.EXCLUDED.value, SkipReason.MAY_QUALIFY.value})
_EXCLUDABLE = frozenset({None, SkipReason.MAY_QUALIFY.value})


def _check_ids(profile_ids: Sequence[str]) -> list[str]:
    if not isinstance(profile_ids, list | tuple) or not profile_ids:
        raise InvalidInput("profile_ids must be a non-empty list of profile ids", loc=["body", "profile_ids"])
    if len(profile_ids) > MAX_PROFILE_IDS:
        raise InvalidInput(f"at most {MAX_PROFILE_IDS} profile ids per call", loc=["body", "profile_ids"])
    for i, pid in enumerate(profile_ids):
        if not isinstance(pid, str) or not 1 <= len(pid) <= 64:
            raise InvalidInput("each profile id must be a string of 1-64 characters", loc=["body", "profile_ids", i])
    return list(dict.fromkeys(profile_ids))


async def exclude_recipients(session: AsyncSession, campaign_id: str, profile_ids: Sequence[str], *, actor: str) -> dict[str, Any]:
    """Take recipients off the list (recorded as ``excluded`` with who). Recipients already not messaged
    for a rule (no consent, opted out …) stay as they are. Returns the counts."""
    return await _change_recipients(session, campaign_id, profile_ids, actor=actor, exclude=True)


async def include_recipients(session: AsyncSession, campaign_id: str, profile_ids: Sequence[str], *, actor: str) -> dict[str, Any]:
    """Put excluded recipients back, or include may-qualify ones. A recipient skipped for a rule (no
    consent, opted out, unreachable, told before) cannot be included: 409 naming them (the recipients'
    state, not the request, is what stands in the way)."""
    return await _change_recipients(session, campaign_id, profile_ids, actor=actor, exclude=False)


async def _change_recipients(
    session: AsyncSession, campaign_id: str, profile_ids: Sequence[str], *, actor: str, exclude: bool
) -> dict[str, Any]:
    ids = _check_ids(profile_ids)
    campaign = await campaign_store.get(session, campaign_id, lock=True)
    action = "exclude recipients" if exclude else "include recipients"
    if CampaignState(campaign.state) not in CAMPAIGN_EDITABLE:
        raise WrongState(campaign.id, campaign.state, action)
    rows = await campaign_store.recipient_rows(session, campaign_id, ids)
    missing = [i for i in ids if i not in rows]
    if missing:
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        # the ids are well formed; they name no recipient of this campaign (a 404, like any unknown record)
        raise NotFound(
            f"{len(missing)} profile id(s) are not recipients of campaign {campaign_id}: {shown}",
            loc=["body", "profile_ids"], missing=missing[:100],
        )  # fmt: skip
    if exclude:
        targets = [r for r in rows.values() if r.skip_reason in _EXCLUDABLE]
    else:
        refused = {pid: r.skip_reason for pid, r in rows.items() if r.skip_reason not in _INCLUDABLE | {None}}
        if refused:
            raise Conflict(
                f"{len(refused)} recipient(s) cannot be included: the rules skip them "
                + ", ".join(f"{pid} ({why})" for pid, why in list(refused.items())[:10]),
                loc=["body", "profile_ids"], refused=dict(list(refused.items())[:100]),
            )  # fmt: skip
        targets = [r for r in rows.values() if r.skip_reason in _INCLUDABLE and r.channel is not None]
    if targets:
        await back_to_draft(session, campaign, actor, action)
        for r in targets:
            r.skip_reason = SkipReason.EXCLUDED.value if exclude else None
            r.excluded_by = actor if exclude else None
        campaign.updated_at = utcnow()
        campaign.list_sha256 = None  # the list changed: a preview hashes it again
        await session.flush()
        await AuditLog(session).record(
            actor=actor, action="campaign.exclude" if exclude else "campaign.include", entity_type="campaign",
            entity_id=campaign.id, detail={"profile_ids": [r.profile_id for r in targets][:1000], "count": len(targets)},
        )  # fmt: skip
    summary = await recount_summary(session, campaign_id)
    return {"changed": len(targets), "unchanged": len(ids) - len(targets), "state": campaign.state, "summary": summary}


async def set_send_time(
    session: AsyncSession, campaign_id: str, send_at: dt.datetime | None, *, actor: str, now: dt.datetime | None = None
) -> CampaignRow:
    """Set (or clear, with None: "as soon as scheduled") the send time; it must be in the future."""
    when = None if send_at is None else aware(send_at, "send_at")
    if when is not None and when <= (now or utcnow()):
        raise InvalidInput("send_at must be in the future", loc=["body", "send_at"])
    campaign = await campaign_store.get(session, campaign_id, lock=True)
    if campaign.send_at == when:
        if CampaignState(campaign.state) not in CAMPAIGN_EDITABLE:
            raise WrongState(campaign.id, campaign.state, "set the send time")
        return campaign
    await back_to_draft(session, campaign, actor, "set the send time")
    campaign.send_at = when
    campaign.updated_at = utcnow()
    await AuditLog(session).record(
        actor=actor, action="campaign.send_time", entity_type="campaign", entity_id=campaign.id,
        detail={"send_at": None if when is None else when.isoformat()},
    )  # fmt: skip
    return campaign


async def rerender_messages(session: AsyncSession, campaign_id: str, *, settings: Settings, actor: str) -> bool:
    """Render the messages again (e.g. after a change of signature or link settings). True when a text
    changed; that, like any change, returns an approved campaign to draft."""
    campaign = await campaign_store.get(session, campaign_id, lock=True)
    if CampaignState(campaign.state) not in CAMPAIGN_EDITABLE:
        raise WrongState(campaign.id, campaign.state, "re-render the messages")
    policy = await version_document(session, campaign.policy_id, campaign.policy_version)
    if policy is None:
        raise NotFound.of("policy version", f"{campaign.policy_id}@{campaign.policy_version}")
    rows = await campaign_store.recipient_page(
        session, [*campaign_store.recipient_filters(campaign_id)], limit=1_000_000, offset=0
    )
    messaged = [r for r in rows if r.channel is not None]
    to_message = [r for r in messaged if r.skip_reason is None]
    sample = [quoted_reason(r) for r in to_message or messaged[:1]]
    stored = await campaign_store.bodies(session, campaign_id)
    # the stored set includes the fallback channels' texts, approved up front with the first choices
    channels = set(stored) | {r.channel for r in messaged if r.channel}
    bodies = build_message_bodies(policy, channels, MessageSettings.from_settings(settings), sample_reasons=sample)
    if canonical(stored) == canonical(bodies):
        return False
    await back_to_draft(session, campaign, actor, "re-render the messages")
    await campaign_store.put_bodies(session, campaign_id, bodies)
    campaign.updated_at = utcnow()
    campaign.list_sha256 = None  # the texts changed: a preview hashes them again
    await AuditLog(session).record(
        actor=actor, action="campaign.rerender", entity_type="campaign", entity_id=campaign.id, detail={"channels": sorted(bodies)}
    )
    return True
