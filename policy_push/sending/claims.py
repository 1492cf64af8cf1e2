"""Claims: due rows taken ``created -> sending`` under a lease, committed before any provider call.

A claim is one batch taken by one worker under one ``claim_id``. Its rows carry ``lease_until``
(database clock): the worker renews it while it sends (:func:`renew`, the dispatcher's heartbeat, and
once more right before each provider call), and the settle tick takes over only rows whose lease has
ended. A worker acts on a row (renews, records a result) only while the row is still ``sending`` under
its own claim, so a row settled or claimed anew meanwhile is never touched by the old claim.

PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED LIMIT n`` and the claim in one transaction, so any number
of workers share a campaign without waiting on each other and never take the same row. SQLite:
``BEGIN IMMEDIATE`` makes the transaction the single writer first (single node).

In the same transaction the claim re-checks what may have changed since the campaign was approved: a
campaign cancelled, a recipient deleted, without consent or opted out (``policy_push.reach``) gets the
row cancelled instead (invariant 5), and a row whose channel is in its quiet hours now waits for the
morning unless its policy is urgent. ``provider`` is recorded in the claim, before any call: a row found
``sending`` later names the provider that got, or may have got, its message.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.reach import Reach
from policy_push.security import PiiCipher
from policy_push.statuses import CampaignState, Code, DeliveryStatus, EventSource, SkipReason, Waiting
from policy_push.storage import campaigns as campaign_store
from policy_push.storage import contacts, deliveries, delivery_history
from policy_push.storage.campaigns import RecipientLines
from policy_push.storage.deliveries import Delivery, Move
from policy_push.storage.sql import begin_write, database_now

from .rules import SendRules

__all__ = ["Claim", "Outgoing", "claim", "release", "renew"]

_CANCEL_CODES = {
    SkipReason.NO_CONSENT: Code.NO_CONSENT, SkipReason.OPTED_OUT: Code.OPTED_OUT,
    # a phone that is there but unproven must not be sent to: a missing address fails at send instead
    SkipReason.PHONE_UNPROVEN: Code.PHONE_UNPROVEN,
}  # fmt: skip


@dataclass(slots=True)
class Outgoing:
    """A claimed row with what sending it needs."""

    row: Delivery
    #: the recipient's reason lines (the message quotes ``campaigns.quoted_reason`` of them)
    reasons: RecipientLines = field(default_factory=lambda: RecipientLines([]))
    #: the decrypted phone / openid / registration id; None when the profile has none for the channel
    address: str | None = field(default=None, repr=False)


@dataclass(slots=True)
class Claim:
    id: str
    rows: list[Outgoing]


def _refusal(reach: Reach | None, channel: str, categories: Collection[str] | None = None) -> Code | None:
    """Why a claimed row must be cancelled now (an address missing is a failure at send, not a cancel;
    a policy outside the categories the person chose since counts as opted out)."""
    if reach is None:
        return Code.PROFILE_DELETED
    return _CANCEL_CODES.get(reach.refusal(channel, categories))  # type: ignore[arg-type]


async def claim(
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    *,
    now: datetime,
    worker: str,
    limit: int,
    rules: SendRules,
    providers: Mapping[str, str],
) -> Claim | None:
    """Claim up to ``limit`` due rows (oldest ``not_before`` first) for ``worker``; committed on return.

    ``providers``: channel -> the adapter its rows will be sent through (recorded on the rows)."""
    claim_id = uuid.uuid4().hex
    async with sessions() as s, s.begin():
        await begin_write(s)
        due = await deliveries.select_due(s, now=now, limit=limit)
        if not due:
            return None
        db_now = await database_now(s)
        due = await _hold_quiet(s, due, rules, now)
        campaigns = await campaign_store.states(s, {r.campaign_id for r in due})
        reach = await contacts.load_reach(s, {(r.profile_kind, r.profile_id) for r in due})
        categories = await contacts.policy_categories(s, {r.policy_id for r in due})
        cancel: list[Move] = []
        keep: list[Delivery] = []
        for r in due:
            why = (Code.CAMPAIGN_CANCELLED if campaigns.get(r.campaign_id) is CampaignState.CANCELLED
                   else _refusal(reach.get((r.profile_kind, r.profile_id)), r.channel, categories.get(r.policy_id)))  # fmt: skip
            if why is None:
                keep.append(r)
            else:
                cancel.append(Move(r.id, DeliveryStatus.CANCELLED, {"waiting_for": None}, code=why))
        keep = await _hold_personal_cap(s, keep, reach, now)
        # the due rows are locked by this transaction (FOR UPDATE SKIP LOCKED; SQLite's write lock): not read again
        await deliveries.move(s, cancel, allowed_from={DeliveryStatus.CREATED}, source=EventSource.CANCEL, now=now, locked=due)
        lease_until = db_now + timedelta(seconds=rules.lease_s)
        taken = [
            dataclasses.replace(
                r, status=DeliveryStatus.SENDING, claim_id=claim_id, claimed_at=db_now, provider=providers.get(r.channel),
            )
            for r in keep
        ]  # fmt: skip
        moves = [
            Move(r.id, DeliveryStatus.SENDING, {
                "claimed_by": worker, "claim_id": claim_id, "claimed_at": db_now, "lease_until": lease_until,
                "provider": r.provider,
            }, text=worker)
            for r in taken
        ]  # fmt: skip
        applied = await deliveries.move(s, moves, allowed_from={DeliveryStatus.CREATED}, source=EventSource.CLAIM, now=now,
                                        locked=due)
        taken = [r for r in taken if r.id in applied]
        reasons = await campaign_store.reasons_of(s, {(r.campaign_id, r.profile_id) for r in taken})
        # decrypted for this batch only, held in these objects while it is sent
        found = await contacts.addresses(s, cipher, {(r.profile_kind, r.profile_id, r.channel) for r in taken})
    rows = [
        Outgoing(r, reasons.get((r.campaign_id, r.profile_id), RecipientLines([])),
                 found.get((r.profile_kind, r.profile_id, r.channel)))
        for r in taken
    ]
    return Claim(claim_id, rows) if rows else None


async def _hold_personal_cap(s: AsyncSession, rows: list[Delivery], reach: Mapping[tuple[str, str], Reach], now: datetime) -> list[Delivery]:
    """Rows of people whose own cap (``weekly_max`` messages in any 7 days) is reached wait until the
    oldest message of the window leaves it; urgent policies too, since the person set the cap."""
    capped = {(r.profile_kind, r.profile_id) for r in rows if (x := reach.get((r.profile_kind, r.profile_id))) and x.weekly_max}
    if not capped:
        return rows
    window = timedelta(days=7)
    sent = await delivery_history.sent_since(s, capped, now - window)
    keep: list[Delivery] = []
    held: dict[datetime, list[str]] = {}
    for r in rows:
        key = (r.profile_kind, r.profile_id)
        limit = reach[key].weekly_max if key in capped else None
        times = sent.setdefault(key, [])
        if limit is None or len(times) < limit:
            keep.append(r)
            if limit is not None:
                times.append(now)  # a second row of the batch for the same person counts this one
            continue
        held.setdefault(times[len(times) - limit] + window, []).append(r.id)
    for until, ids in held.items():
        await deliveries.set_values(
            s, ids, status=DeliveryStatus.CREATED, not_before=until, waiting_for=Waiting.FREQUENCY_CAP.value, updated_at=now
        )
    return keep


async def _hold_quiet(s: AsyncSession, rows: list[Delivery], rules: SendRules, now: datetime) -> list[Delivery]:
    """Rows whose channel is in its quiet hours now wait for the morning (urgent policies excepted):
    a row planned for 20:55 but reached by a busy worker at 21:10 does not go out at night."""
    quiet = {ch: until for ch in {r.channel for r in rows} if (until := rules.quiet_until(now, ch)) is not None}
    if not quiet:
        return rows
    urgent = await campaign_store.urgent(s, {r.campaign_id for r in rows if r.channel in quiet})
    held = [r for r in rows if r.channel in quiet and r.campaign_id not in urgent]
    for channel, until in quiet.items():
        ids = [r.id for r in held if r.channel == channel]
        await deliveries.set_values(
            s, ids, status=DeliveryStatus.CREATED, not_before=until, waiting_for=Waiting.QUIET_HOURS.value, updated_at=now
        )
    held_ids = {r.id for r in held}
    return [r for r in rows if r.id not in held_ids]


async def renew(
    sessions: async_sessionmaker[AsyncSession], held: Mapping[str, Collection[str]], *, lease_s: float, calling: bool = False
) -> set[str]:
    """Extend the leases of ``held`` (claim id -> delivery ids); returns the ids still ours. ``calling``:
    the confirmation right before a provider call, which also marks the rows' outcome unsure from now."""
    if not any(held.values()):
        return set()
    async with sessions() as s, s.begin():
        await begin_write(s)
        db_now = await database_now(s)
        until = db_now + timedelta(seconds=lease_s)
        return await deliveries.renew(s, held, until=until, calling_at=db_now if calling else None)


async def release(
    sessions: async_sessionmaker[AsyncSession], claim_id: str, ids: Collection[str], *, now: datetime
) -> int:
    """Hand back rows of a claim that were never sent (a worker stopping, or fenced before its call)."""
    if not ids:
        return 0
    moves = [Move(i, DeliveryStatus.CREATED, code=Code.RELEASED, claim_id=claim_id) for i in ids]
    async with sessions() as s, s.begin():
        await begin_write(s)
        return len(await deliveries.move(s, moves, allowed_from={DeliveryStatus.SENDING}, source=EventSource.CLAIM, now=now))
