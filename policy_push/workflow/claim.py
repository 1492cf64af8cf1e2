"""Claiming due deliveries: ``created`` -> ``sending`` under a condition, committed before any call.

PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED LIMIT n`` and the UPDATE in one transaction, so any
number of workers share a campaign without waiting on each other and never take the same row.
SQLite: ``BEGIN IMMEDIATE`` makes the transaction the single writer first, then the same SELECT and
UPDATE (single node; the lock is held for milliseconds).

In the same transaction the claim re-checks what may have changed since the campaign was approved:
a recipient who opted out (on this channel or all), withdrew consent or was deleted gets the row
cancelled instead (invariant 5: opted-out people get nothing).  Quiet hours are checked again too:
a row planned for 20:55 but reached by a busy worker at 21:10 waits for the morning instead of
going out at night (invariant 5), unless its policy is urgent. The encrypted address is read here and
decrypted after commit, in memory, for this batch only.

``providers`` (channel -> adapter name, chosen by the dispatcher before the claim) is written to
``deliveries.provider`` in the claim transaction, before any provider call: a row found in
``sending`` later (a dead worker, a timeout) names the provider that got, or may have got, its
message, which is what settling must ask (or must not resend through).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.security import PiiCipher
from policy_push.statuses import DeliveryStatus
from policy_push.storage.campaign_tables import CampaignRecipientRow
from scheduler import next_send_time

from .outbox import (
    CONTACT_COLUMN,
    EventSource,
    Move,
    SendRules,
    Waiting,
    begin_write,
    campaigns,
    chunks,
    deliveries,
    events,
    is_postgres,
    move,
    opt_outs,
    profile_table,
)

__all__ = ["Claimed", "claim_batch"]

recipients = CampaignRecipientRow.__table__


@dataclass(slots=True)
class Claimed:
    """A delivery this worker now owns (status ``sending``), with what sending it needs."""

    id: str
    campaign_id: str
    policy_id: str
    profile_kind: str
    profile_id: str
    channel: str
    purpose: str
    attempts: int
    reasons: list[str] = field(default_factory=list)
    #: the decrypted phone / openid / registration id; None when the profile has none for the channel
    address: str | None = field(default=None, repr=False)


async def claim_batch(
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    *,
    now: datetime,
    worker_id: str,
    limit: int,
    rules: SendRules | None = None,
    providers: Mapping[str, str] | None = None,
) -> list[Claimed]:
    """Claim up to ``limit`` due rows (oldest ``not_before`` first); the claim is committed on return.

    With ``rules``, rows whose channel is in its quiet hours now (and whose campaign is not urgent)
    are not claimed but moved on to the end of the quiet period. With ``providers``, each claimed
    row's ``provider`` is set to the adapter its channel will be sent through (None if not named)."""
    d = deliveries.c
    async with sessions() as s, s.begin():
        await begin_write(s)
        stmt = (
            select(d.id, d.campaign_id, d.policy_id, d.profile_kind, d.profile_id, d.channel, d.purpose, d.attempts)
            .where(d.status == DeliveryStatus.CREATED.value, d.not_before <= now)
            .order_by(d.not_before)
            .limit(limit)
        )
        if is_postgres(s):
            stmt = stmt.with_for_update(skip_locked=True)
        rows = [Claimed(*r) for r in await s.execute(stmt)]
        if rows and rules is not None:
            rows = await _postpone_quiet(s, rows, rules, now)
        if not rows:
            return []
        contacts = await _contacts(s, rows)
        blocked = await _opted_out(s, rows)
        cancel: list[Move] = []
        keep: list[Claimed] = []
        for row in rows:
            info = contacts.get((row.profile_kind, row.profile_id))
            if info is None:
                cancel.append(Move(row.id, DeliveryStatus.CANCELLED, code="PROFILE_DELETED"))
            elif not info["consent"]:
                cancel.append(Move(row.id, DeliveryStatus.CANCELLED, code="NO_CONSENT"))
            elif blocked & {(row.profile_kind, row.profile_id, row.channel), (row.profile_kind, row.profile_id, "*")}:
                cancel.append(Move(row.id, DeliveryStatus.CANCELLED, code="OPTED_OUT"))
            else:
                keep.append(row)
        await move(s, cancel, allowed_from={DeliveryStatus.CREATED}, source=EventSource.OPT_OUT, now=now)
        by_channel: dict[str, list[str]] = {}
        for r in keep:
            by_channel.setdefault(r.channel, []).append(r.id)
        for channel, ids in sorted(by_channel.items()):
            values: dict[str, Any] = {
                "status": DeliveryStatus.SENDING.value, "claimed_at": now, "claimed_by": worker_id, "updated_at": now,
            }
            if providers is not None:
                values["provider"] = providers.get(channel)
            for part in chunks(ids):
                await s.execute(
                    update(deliveries)
                    .where(d.id.in_(part), d.status == DeliveryStatus.CREATED.value)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
        for part in chunks(keep):
            await s.execute(
                events.insert(),
                [
                    {"delivery_id": r.id, "at": now, "from_status": "created", "to_status": "sending",
                     "source": EventSource.CLAIM.value, "code": None, "text": worker_id}
                    for r in part
                ],
            )  # fmt: skip
        await _reasons(s, keep)
    # decrypted after the commit, held only in these objects for the duration of the send
    for row in keep:
        blob = contacts[(row.profile_kind, row.profile_id)][CONTACT_COLUMN[row.channel]]
        row.address = cipher.decrypt(CONTACT_COLUMN[row.channel], blob) if blob is not None else None
    return keep


async def _postpone_quiet(s: AsyncSession, rows: list[Claimed], rules: SendRules, now: datetime) -> list[Claimed]:
    quiet_channels = {ch for ch in {r.channel for r in rows} if (q := rules.windows.for_channel(ch)) and q.is_quiet(now)}
    if not quiet_channels:
        return rows
    c = campaigns.c
    ids = sorted({r.campaign_id for r in rows if r.channel in quiet_channels})
    urgent = {cid for (cid,) in await s.execute(select(c.id).where(c.id.in_(ids), c.urgent.is_(True)))}
    keep: list[Claimed] = []
    for row in rows:
        if row.channel in quiet_channels and row.campaign_id not in urgent:
            later = next_send_time(now, rules.windows.for_channel(row.channel))
            await s.execute(
                update(deliveries)
                .where(deliveries.c.id == row.id, deliveries.c.status == DeliveryStatus.CREATED.value)
                .values(not_before=later, waiting_for=Waiting.QUIET_HOURS.value, updated_at=now)
            )
        else:
            keep.append(row)
    return keep


async def _contacts(s: AsyncSession, rows: Sequence[Claimed]) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    by_kind: dict[str, set[str]] = {}
    for r in rows:
        by_kind.setdefault(r.profile_kind, set()).add(r.profile_id)
    for kind, ids in by_kind.items():
        t = profile_table(kind)
        cols = [t.c.id, t.c.consent, t.c.phone_enc, t.c.wechat_openid_enc, t.c.app_registration_id_enc]
        for part in chunks(sorted(ids)):
            for pid, consent, phone, openid, reg in await s.execute(select(*cols).where(t.c.id.in_(part))):
                out[(kind, pid)] = {"consent": consent, "phone": phone, "wechat_openid": openid, "app_registration_id": reg}
    return out


async def _opted_out(s: AsyncSession, rows: Sequence[Claimed]) -> set[tuple[str, str, str]]:
    o = opt_outs.c
    found: set[tuple[str, str, str]] = set()
    for part in chunks(sorted({r.profile_id for r in rows})):
        found.update((k, p, ch) for k, p, ch in await s.execute(select(o.profile_kind, o.profile_id, o.channel).where(o.profile_id.in_(part))))
    return found


async def _reasons(s: AsyncSession, rows: Sequence[Claimed]) -> None:
    r = recipients.c
    wanted: dict[tuple[str, str], list[Claimed]] = {}
    for row in rows:
        wanted.setdefault((row.campaign_id, row.profile_id), []).append(row)
    for campaign_id in {row.campaign_id for row in rows}:
        ids = sorted({row.profile_id for row in rows if row.campaign_id == campaign_id})
        for part in chunks(ids):
            found = await s.execute(select(r.profile_id, r.reasons).where(r.campaign_id == campaign_id, r.profile_id.in_(part)))
            for pid, reasons in found:
                for row in wanted.get((campaign_id, pid), []):
                    row.reasons = list(reasons or [])
