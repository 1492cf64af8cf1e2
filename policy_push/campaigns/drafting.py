"""Drafting campaigns: a match run turned into a draft with its recipient list and messages.

``prepare_campaign`` reads the policy, runs the match outside any write transaction (a match
over many profiles must not hold SQLite's write lock), then writes the draft in short
transactions: the campaign row in state ``drafting``, its recipients ``campaign_chunk_rows`` at a
time (each chunk read, then written in its own transaction, so the send tick and the API write
between two chunks), and last the messages, the counts and the move to ``draft``, in which
transaction older drafts of the policy are cancelled (a policy has at most one open draft).
Until that last transaction nobody can approve, edit or send the campaign.

A draft whose writer died stays ``drafting``; the next preparation of the policy (the leader's
tick, or staff) deletes it, chunk by chunk, and drafts again: a list is never finished from two
match runs, and never holds a profile twice (the primary key says so too).

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
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
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
from policy_push.storage.sql import begin_write, chunks
from policy_push.storage.tables import PolicyRow, utcnow

from .approval import list_hash
from .messages import MessageSettings, build_message_bodies, quoted_reason
from .recipients import choose_channel, list_counts

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
_FINISHED = frozenset(CampaignState) - {CampaignState.DRAFTING}


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
    # an unfinished draft is no campaign yet: if its writer died, it is drafted again
    latest = await campaign_store.latest_announcement(session, policy.id, states=_FINISHED)
    if latest is None:
        return True
    if latest.policy_version == version:
        return False
    previous = await version_document(session, policy.id, latest.policy_version)
    return previous is None or is_material_change(previous, policy)


#: a ``drafting`` campaign not written to for this long has lost its writer (a chunk takes well under a
#: second; a match of millions a minute or two, but the campaign row is made after the match)
DRAFTING_STALE_AFTER = dt.timedelta(minutes=5)


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
    version, and no other process is drafting it (else None).  404 for an unknown policy, 409 for
    a closed one, 422 when a message cannot be rendered (the error names the channel and the rule)."""
    on = on or local_today()
    async with sessions() as session, session.begin():
        stored = await PolicyRepository(session).get(policy_id)
        if stored is None:
            raise NotFound.of("policy", policy_id, loc=["body", "policy_id"])
        if not force and (
            not await _needs_campaign(session, stored.policy, stored.version)
            or await _being_drafted(session, policy_id)
        ):
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
    campaign_id = await _start(sessions, policy, stored.version, prepared_by, force=force)
    if campaign_id is None:
        return None  # another node prepared it, or is preparing it, meanwhile
    try:
        lists = await _write_recipients(sessions, campaign_id, policy, result, settings.campaign_chunk_rows)
        return await _finish(sessions, campaign_id, policy, stored.version, result, lists, prepared_by,
                             MessageSettings.from_settings(settings))  # fmt: skip
    except Exception:
        # a message that cannot be rendered, a policy changed meanwhile, a superseded draft, a lost
        # connection: the unfinished list goes (a crash leaves it to the next preparation)
        await _discard(sessions, campaign_id, settings.campaign_chunk_rows)
        raise


async def _being_drafted(session: AsyncSession, policy_id: str) -> bool:
    """Another process is writing a draft of this policy now (it wrote a chunk lately)."""
    since = utcnow() - DRAFTING_STALE_AFTER
    return any(_aware(at) > since for _, at in await campaign_store.drafting_of(session, policy_id))


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


async def _start(
    sessions: async_sessionmaker[AsyncSession], policy: Policy, version: int, prepared_by: str, *, force: bool
) -> str | None:
    """The campaign row, ``drafting``; None when (``force`` False) it is no longer needed or another
    process is drafting it. Unfinished drafts of the policy are cancelled here and deleted after."""
    now = utcnow()
    async with sessions() as session, session.begin():
        await begin_write(session)
        # lock the policy row: a concurrent update or a second preparer waits here (PostgreSQL)
        await _same_version(session, policy.id, version)
        if not force and (not await _needs_campaign(session, policy, version) or await _being_drafted(session, policy.id)):
            return None
        left = [i for i, _ in await campaign_store.drafting_of(session, policy.id)]
        for i in left:
            await campaign_store.move_state(session, i, CampaignState.CANCELLED, now=now, expect={CampaignState.DRAFTING})
        campaign_id = str(uuid.uuid4())
        await campaign_store.start_drafting(session, {
            "id": campaign_id, "policy_id": policy.id, "policy_version": version, "audience": policy.audience,
            "purpose": Purpose.ANNOUNCE.value, "urgent": policy.urgent, "prepared_by": prepared_by,
            "summary": {"drafting": {"recipients_written": 0}}, "created_at": now, "updated_at": now,
        })  # fmt: skip
    for i in left:
        log.warning("campaign %s of policy %s was left unfinished: deleted, drafted again", i, policy.id)
        await _discard(sessions, i, 5000)
    return campaign_id


async def _same_version(session: AsyncSession, policy_id: str, version: int) -> None:
    current = await session.scalar(select(PolicyRow.version).where(PolicyRow.id == policy_id).with_for_update())
    if current != version:
        raise WrongState(policy_id, f"changed to version {current} while matching", "store the campaign; retry", what="policy")


async def _discard(sessions: async_sessionmaker[AsyncSession], campaign_id: str, chunk: int) -> None:
    """Delete an unfinished draft, its recipients a chunk per transaction (as they were written)."""
    try:
        while True:
            async with sessions() as session, session.begin():
                await begin_write(session)
                if not await campaign_store.delete_some_recipients(session, campaign_id, chunk):
                    await campaign_store.delete_campaign(session, campaign_id)
                    return
    except Exception:  # the database itself failing: the next preparation deletes it
        log.exception("could not delete the unfinished campaign %s", campaign_id)


@dataclass(slots=True)
class _Lists:
    """What the last transaction needs of the recipients written, gathered chunk by chunk in bounded
    memory: every channel a recipient can be reached on, and the quoted reasons (best ranked first)."""

    channels: set[str] = field(default_factory=set)
    #: (-score, profile id) and quoted reason of the best recipient to message / with a channel
    best_messaged: tuple[tuple[float, str], str | None] | None = None
    best_reachable: tuple[tuple[float, str], str | None] | None = None
    #: the distinct reasons a message quotes (lines of a template: few, whatever the list's length)
    reasons: set[str | None] = field(default_factory=set)

    def add(self, row: dict[str, Any], open_channels: Sequence[str]) -> None:
        if row["channel"] is None:
            return
        # every channel a recipient can be reached on, not only the first choices: a fallback may only
        # carry a text the approver saw, so the fallback channels' texts are approved up front too
        self.channels.update(open_channels)
        rank = (-row["score"], row["profile_id"])
        quoted = quoted_reason(RecipientLines(row["reasons"], row["message_reason"], row["public_reasons"]))
        if self.best_reachable is None or rank < self.best_reachable[0]:
            self.best_reachable = (rank, quoted)
        if row["skip_reason"] is None:
            self.reasons.add(quoted)
            if self.best_messaged is None or rank < self.best_messaged[0]:
                self.best_messaged = (rank, quoted)

    def sample(self) -> list[str | None]:
        """Best first (ties by id: the preview shows the same reason however the match ordered ties),
        then the rest, which bound the SMS length; the best reachable one when nobody is messaged."""
        if self.best_messaged is not None:
            return [self.best_messaged[1], *self.reasons]
        return [] if self.best_reachable is None else [self.best_reachable[1]]


async def _write_recipients(
    sessions: async_sessionmaker[AsyncSession], campaign_id: str, policy: Policy, result: PolicyMatchResult, chunk: int
) -> _Lists:
    """The match's records as recipient rows, ``chunk`` at a time: each chunk's reach and history are
    read, then its rows written in their own short transaction."""
    kind = policy.audience
    lists = _Lists()
    written = 0
    for part in chunks([*result.eligible, *result.unknown], chunk):
        ids = list(dict.fromkeys(r["profile_id"] for r in part))
        async with sessions() as session:
            reach = await contacts.load_reach(session, [(kind, pid) for pid in ids])
            told = await delivery_history.notified_channels(session, policy.id, kind, ids)
        rows: dict[str, dict[str, Any]] = {}
        for rec in part:
            pid = rec["profile_id"]
            if pid in rows:
                continue
            channel, skip = choose_channel(reach.get((kind, pid)), eligible=bool(rec["eligible"]), told=told.get(pid),
                                           categories=policy.categories)  # fmt: skip
            # the engine's choice; a matcher that makes none leaves it to ``quoted_reason`` (public_reasons None)
            lines = result.message_lines.get(pid) or (None, None)
            rows[pid] = row = {
                "campaign_id": campaign_id, "profile_id": pid, "profile_kind": kind, "eligible": bool(rec["eligible"]),
                "score": float(rec["score"]), "reasons": list(rec["reasons"]), "missing": list(rec.get("missing") or []),
                "message_reason": lines[0], "public_reasons": lines[1],
                "channel": channel, "skip_reason": None if skip is None else skip.value, "excluded_by": None,
            }  # fmt: skip
            # a profile named again in a later chunk is not written twice (insert-or-ignore) and adds
            # nothing here either: its channels are the same, and a later (may-qualify) row is not messaged
            lists.add(row, reach[(kind, pid)].open_channels()[0] if channel is not None else ())
        written += len(rows)
        async with sessions() as session, session.begin():
            await begin_write(session)
            if not await campaign_store.add_recipients(session, campaign_id, list(rows.values()), written=written, now=utcnow()):
                raise WrongState(campaign_id, "superseded by a newer draft", "write its recipients")
    return lists


async def _finish(
    sessions: async_sessionmaker[AsyncSession],
    campaign_id: str,
    policy: Policy,
    version: int,
    result: PolicyMatchResult,
    lists: _Lists,
    prepared_by: str,
    ms: MessageSettings,
) -> PreparedCampaign:
    """The messages, the counts and the move to ``draft``, older drafts cancelled: one short transaction."""
    try:
        bodies = build_message_bodies(policy, lists.channels, ms, sample_reasons=lists.sample())
    except ChannelError as exc:
        raise InvalidInput(f"the message of policy {policy.id} cannot be rendered: {exc}", loc=["policy", policy.id]) from exc
    async with sessions() as session:
        # counted by the database, not by the chunks: exact however often the match named a profile
        counts = await list_counts(session, campaign_id)
        # hashed once here, streamed, outside the write transaction: the preview shows it from the row
        digest = await list_hash(session, await campaign_store.get(session, campaign_id), bodies)
    summary = {
        "eligible": result.counts.get("eligible", len(result.eligible)),
        "may_qualify": result.counts.get("unknown", len(result.unknown)),
        "profiles": result.counts.get("profiles", 0),
        "no_criteria": result.no_criteria,
        "histogram": result.histogram,
        **counts,
    }
    now = utcnow()
    async with sessions() as session, session.begin():
        await begin_write(session)
        await _same_version(session, policy.id, version)
        cancelled = await _cancel_older_drafts(session, policy.id, prepared_by, campaign_id, now)
        if not await campaign_store.move_state(
            session, campaign_id, CampaignState.DRAFT, now=now, expect={CampaignState.DRAFTING}, summary=summary,
            list_sha256=digest,
        ):
            raise WrongState(campaign_id, "superseded by a newer draft", "finish it")
        await campaign_store.put_bodies(session, campaign_id, bodies)
        await AuditLog(session).record(
            actor=prepared_by, action="campaign.prepare", entity_type="campaign", entity_id=campaign_id,
            detail={"policy_id": policy.id, "policy_version": version, "recipients": counts["recipients"],
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
