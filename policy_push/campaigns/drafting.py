"""Drafting campaigns: a match run turned into a draft with its recipient list and messages.

``prepare_campaign`` reads the policy, runs the match outside any write transaction (a match
over many profiles must not hold SQLite's write lock), then writes the campaign, its recipients
and its messages in one transaction.  Older drafts of the same policy are cancelled in that same
transaction, so a policy has at most one open draft.

A policy version needs a new campaign only when it differs *materially* from the version of
the policy's latest campaign (:data:`MATERIAL_FIELDS`: what a recipient would be told, or who
qualifies); a corrected issuer or a new category changes nothing for recipients.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import ChannelError
from policy_push.config import Settings
from policy_push.domain import Policy, ValidationContext, local_today, parse_policy
from policy_push.errors import InvalidInput, MatchIndexUnavailable, NotFound, PolicyPushError, WrongState
from policy_push.matching.results import PolicyMatchResult
from policy_push.statuses import CampaignState, Purpose
from policy_push.storage import AuditLog, PolicyRepository, contacts, delivery_history
from policy_push.storage import campaigns as campaign_store
from policy_push.storage.campaigns import RecipientLines
from policy_push.storage.tables import PolicyRow, utcnow

from .messages import MessageSettings, build_message_bodies, quoted_reason
from .recipients import choose_channel, summary_counts

__all__ = [
    "MATERIAL_FIELDS",
    "PolicyMatcher",
    "PreparedCampaign",
    "is_material_change",
    "prepare_campaign",
    "prepare_pending_campaigns",
    "version_document",
]

log = logging.getLogger("policy_push.campaigns")

#: fields whose change makes a new campaign: who qualifies (criteria), what they are told
#: (title, summary, text, benefit) and when (dates)
MATERIAL_FIELDS = (
    "title", "summary", "text", "criteria", "benefit_max_yuan", "published_on", "apply_from", "apply_until",
)  # fmt: skip
_TRUSTED = ValidationContext(trusted=True)


class PolicyMatcher(Protocol):
    """The match service's interface (``policy_push.matching``); sync or async."""

    def match_policy(
        self, policy: Policy, *, on: dt.date, top_k: int | None = None, min_score: float | None = None
    ) -> PolicyMatchResult | Awaitable[PolicyMatchResult]: ...


@dataclass(frozen=True, slots=True)
class PreparedCampaign:
    id: str
    policy_id: str
    policy_version: int
    summary: dict[str, Any]


def is_material_change(old: Policy, new: Policy) -> bool:
    return any(getattr(old, f) != getattr(new, f) for f in MATERIAL_FIELDS)


async def _run_match(matcher: PolicyMatcher, policy: Policy, on: dt.date) -> PolicyMatchResult:
    if inspect.iscoroutinefunction(matcher.match_policy):
        return await matcher.match_policy(policy, on=on)  # type: ignore[no-any-return]
    # a synchronous matcher computes over numpy arrays: keep it off the event loop
    result = await asyncio.to_thread(matcher.match_policy, policy, on=on)
    return await result if inspect.isawaitable(result) else result


async def version_document(session: AsyncSession, policy_id: str, version: int) -> Policy | None:
    """One version of a policy, as a campaign was drafted from it."""
    doc = await campaign_store.policy_document(session, policy_id, version)
    return None if doc is None else parse_policy(doc, _TRUSTED)


async def _needs_campaign(session: AsyncSession, policy: Policy, version: int) -> bool:
    """No campaign for this version yet, and the latest campaign's version differs materially."""
    latest = await campaign_store.latest_announcement(session, policy.id)
    if latest is None:
        return True
    if latest.policy_version == version:
        return False
    previous = await version_document(session, policy.id, latest.policy_version)
    return previous is None or is_material_change(previous, policy)


async def prepare_campaign(
    sessions: async_sessionmaker[AsyncSession],
    matcher: PolicyMatcher,
    policy_id: str,
    *,
    prepared_by: str,
    settings: Settings,
    version: int | None = None,
    on: dt.date | None = None,
    force: bool = True,
) -> PreparedCampaign | None:
    """Match the stored policy and store a draft campaign; older drafts of the policy are cancelled.

    ``version``: refuse (409) unless the policy is still at this version.  ``force`` False: only
    when this version has no campaign yet and differs materially from the latest campaign's
    version (else None).  404 for an unknown policy, 409 for a closed one, 422 when a message
    cannot be rendered (the error names the channel and the rule)."""
    on = on or local_today()
    async with sessions() as session, session.begin():
        stored = await PolicyRepository(session).get(policy_id)
        if stored is None:
            raise NotFound.of("policy", policy_id, loc=["body", "policy_id"])
        if not force and not await _needs_campaign(session, stored.policy, stored.version):
            return None
    policy = stored.policy
    if version is not None and version != stored.version:
        raise WrongState(
            policy_id, f"at version {stored.version}", f"prepare version {version}", what="policy", loc=["body", "version"]
        )
    if not policy.is_open(on):
        raise WrongState(
            policy_id, f"closed for applications since {policy.apply_until}", "prepare a campaign",
            what="policy", loc=["body", "policy_id"],
        )
    result = await _run_match(matcher, policy, on)
    async with sessions() as session, session.begin():
        # lock the policy row: a concurrent update or a second preparer waits here (PostgreSQL)
        current = await session.scalar(select(PolicyRow.version).where(PolicyRow.id == policy_id).with_for_update())
        if current != stored.version:
            raise WrongState(
                policy_id, f"changed to version {current} while matching", "store the campaign; retry", what="policy"
            )
        if not force and not await _needs_campaign(session, policy, stored.version):
            return None  # another node prepared it meanwhile
        return await _store(session, policy, stored.version, result, prepared_by, MessageSettings.from_settings(settings))


async def _store(
    session: AsyncSession,
    policy: Policy,
    version: int,
    result: PolicyMatchResult,
    prepared_by: str,
    ms: MessageSettings,
) -> PreparedCampaign:
    kind = policy.audience
    records = [*result.eligible, *result.unknown]
    ids = list(dict.fromkeys(r["profile_id"] for r in records))
    reach = await contacts.load_reach(session, [(kind, pid) for pid in ids])
    told = await delivery_history.notified_channels(session, policy.id, kind, ids)
    campaign_id = str(uuid.uuid4())
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for rec in records:
        pid = rec["profile_id"]
        if pid in seen:
            continue
        seen.add(pid)
        channel, skip = choose_channel(reach.get((kind, pid)), eligible=bool(rec["eligible"]), told=told.get(pid),
                                       categories=policy.categories)  # fmt: skip
        # the engine's choice; a matcher that makes none leaves it to ``quoted_reason`` (public_reasons None)
        lines = result.message_lines.get(pid) or (None, None)
        rows.append({
            "campaign_id": campaign_id, "profile_id": pid, "profile_kind": kind, "eligible": bool(rec["eligible"]),
            "score": float(rec["score"]), "reasons": list(rec["reasons"]), "missing": list(rec.get("missing") or []),
            "message_reason": lines[0], "public_reasons": lines[1],
            "channel": channel, "skip_reason": None if skip is None else skip.value, "excluded_by": None,
        })  # fmt: skip
    # every channel a recipient can be reached on, not only the first choices: a fallback may only
    # carry a text the approver saw, so the fallback channels' texts are approved up front too
    channels = sorted(
        {c for r in rows if r["channel"] is not None for c in reach[(kind, r["profile_id"])].open_channels()[0]}
    )
    # best first, ties by id: the preview shows the same reason however the match ordered ties
    ranked = sorted(rows, key=lambda r: (-r["score"], r["profile_id"]))
    to_message = [r for r in ranked if r["skip_reason"] is None and r["channel"] is not None]
    sample = [quoted_reason(RecipientLines(r["reasons"], r["message_reason"], r["public_reasons"]))
              for r in to_message or [r for r in ranked if r["channel"]][:1]]
    try:
        bodies = build_message_bodies(policy, channels, ms, sample_reasons=sample)
    except ChannelError as exc:
        raise InvalidInput(f"the message of policy {policy.id} cannot be rendered: {exc}", loc=["policy", policy.id]) from exc
    now = utcnow()
    summary = {
        "eligible": result.counts.get("eligible", len(result.eligible)),
        "may_qualify": result.counts.get("unknown", len(result.unknown)),
        "profiles": result.counts.get("profiles", 0),
        "no_criteria": result.no_criteria,
        "histogram": result.histogram,
        **summary_counts((r["channel"], r["skip_reason"], 1) for r in rows),
    }
    cancelled = await _cancel_older_drafts(session, policy.id, prepared_by, campaign_id, now)
    campaign = {
        "id": campaign_id, "policy_id": policy.id, "policy_version": version, "audience": kind,
        "purpose": Purpose.ANNOUNCE.value, "state": CampaignState.DRAFT.value, "urgent": policy.urgent,
        "prepared_by": prepared_by, "summary": summary, "created_at": now, "updated_at": now,
    }  # fmt: skip
    await campaign_store.insert_campaign(session, campaign, rows, bodies)
    await AuditLog(session).record(
        actor=prepared_by, action="campaign.prepare", entity_type="campaign", entity_id=campaign_id,
        detail={"policy_id": policy.id, "policy_version": version, "recipients": len(rows),
                "to_message": summary["to_message"], "cancelled_drafts": cancelled},
    )  # fmt: skip
    return PreparedCampaign(campaign_id, policy.id, version, summary)


async def _cancel_older_drafts(
    session: AsyncSession, policy_id: str, actor: str, new_id: str, now: dt.datetime
) -> list[str]:
    ids = [
        i for i in await campaign_store.ids_in_state(session, CampaignState.DRAFT, policy_id=policy_id)
        if await campaign_store.move_state(session, i, CampaignState.CANCELLED, now=now, expect={CampaignState.DRAFT})
    ]  # fmt: skip
    await AuditLog(session).record_many([
        {"actor": actor, "action": "campaign.cancel", "entity_type": "campaign", "entity_id": i,
         "detail": {"reason": "superseded", "by": new_id}}
        for i in ids
    ])  # fmt: skip
    return ids


async def prepare_pending_campaigns(
    sessions: async_sessionmaker[AsyncSession],
    matcher: PolicyMatcher,
    *,
    settings: Settings,
    on: dt.date | None = None,
    actor: str = "scheduler",
    limit: int = 100,
) -> list[PreparedCampaign]:
    """Drafts for open policies whose current version has no campaign and changed materially
    since their latest campaign (CLI imports, or a trigger that failed).  Idempotent; for the
    leader-only tick.  A policy whose message cannot be rendered is logged and skipped.

    Every candidate is checked (a check is two small reads), so policies that changed only
    immaterially cannot crowd out the rest; at most ``limit`` campaigns are prepared per call."""
    on = on or local_today()
    async with sessions() as session:
        ids = await campaign_store.policies_without_campaign(session, on=on)
    prepared: list[PreparedCampaign] = []
    for policy_id in ids:
        if len(prepared) >= limit:
            break
        try:
            done = await prepare_campaign(
                sessions, matcher, policy_id, prepared_by=actor, settings=settings, on=on, force=False
            )
        except MatchIndexUnavailable:
            raise
        except PolicyPushError as exc:
            log.warning("no campaign for policy %s: %s", policy_id, exc.msg)
            continue
        if done is not None:
            prepared.append(done)
    return prepared
