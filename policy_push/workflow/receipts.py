"""Receipts: what providers push back after accepting a message, applied to the outbox in batches.

One push (an Aliyun SmsReport array of up to 100 reports, one WeChat event) is one transaction:
Notify.gov learnt that a task per receipt falls over at scale. Each receipt moves its row out of
``sent`` (or ``sending``, when the receipt outran our own record of the send) to ``delivered``,
``permanent_failure`` or ``unreachable``; a receipt for a row already final (late, or the
provider's duplicate push) leaves an event and changes nothing. A failure for good starts the
fallback on the recipient's next channel.

Matching: a single Aliyun send carries our delivery id as ``OutId``; a batch send shares one
``BizId`` and a digest ``OutId``, so its members are told apart by the phone's keyed hash (the
number itself is never stored in clear). WeChat events carry the ``MsgID`` we stored on send.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import Outcome, Receipt
from policy_push.security import PiiCipher
from policy_push.statuses import DELIVERY_FAILED_FOR_GOOD, DeliveryStatus

from .outbox import (
    EventSource,
    Failed,
    Move,
    SendRules,
    begin_write,
    chunks,
    create_fallbacks,
    deliveries,
    move,
    profile_table,
)

__all__ = ["ReceiptReport", "apply_receipts", "status_for"]

log = logging.getLogger("policy_push.receipts")
_FROM = frozenset({DeliveryStatus.SENT, DeliveryStatus.SENDING})


@dataclass(frozen=True, slots=True)
class ReceiptReport:
    applied: int
    #: receipts for rows already final (late or duplicate pushes): recorded as events only
    ignored: int
    #: receipts that match no delivery (yet): the caller should not acknowledge them
    unmatched: int


def status_for(receipt: Receipt) -> DeliveryStatus:
    if receipt.delivered:
        return DeliveryStatus.DELIVERED
    if receipt.outcome is Outcome.UNREACHABLE:
        return DeliveryStatus.UNREACHABLE
    # a failure after acceptance cannot be resent on the same channel (sent -> created is not a
    # transition): it is a failure for good there, and the next channel gets its chance
    return DeliveryStatus.PERMANENT_FAILURE


async def _match(session: AsyncSession, cipher: PiiCipher, receipts: Sequence[Receipt]) -> list[tuple[Receipt, str | None]]:
    d = deliveries.c
    ids = {r.delivery_id for r in receipts if r.delivery_id}
    direct: set[str] = set()
    for part in chunks(sorted(ids)):
        direct.update((await session.execute(select(d.id).where(d.id.in_(part)))).scalars())
    by_message: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    wanted = sorted({r.provider_message_id for r in receipts if r.delivery_id not in direct and r.provider_message_id})
    for part in chunks(wanted):
        rows = await session.execute(
            select(d.id, d.provider, d.provider_message_id, d.profile_kind, d.profile_id).where(d.provider_message_id.in_(part))
        )
        for did, provider, pmid, kind, pid in rows:
            by_message.setdefault((provider or "", pmid), []).append((did, kind, pid))
    # batch members share a message id: tell them apart by the phone's keyed hash
    phone_hash: dict[tuple[str, str], str] = {}
    shared = [row for rows in by_message.values() if len(rows) > 1 for row in rows]
    for kind in {k for _, k, _ in shared}:
        t = profile_table(kind)
        for part in chunks(sorted({p for _, k, p in shared if k == kind})):
            for pid, h in await session.execute(select(t.c.id, t.c.phone_hash).where(t.c.id.in_(part))):
                phone_hash[(kind, pid)] = h or ""
    out: list[tuple[Receipt, str | None]] = []
    for r in receipts:
        if r.delivery_id in direct:
            out.append((r, r.delivery_id))
            continue
        rows = by_message.get((r.provider, r.provider_message_id), [])
        if len(rows) == 1:
            out.append((r, rows[0][0]))
        elif rows:
            h = cipher.lookup_hash("phone", r.recipient[-11:])
            out.append((r, next((did for did, k, p in rows if phone_hash.get((k, p)) == h), None)))
        else:
            out.append((r, None))
    return out


async def apply_receipts(
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    receipts: Sequence[Receipt],
    *,
    now: datetime,
    rules: SendRules,
) -> ReceiptReport:
    """Apply one push's receipts in one transaction."""
    if not receipts:
        return ReceiptReport(0, 0, 0)
    async with sessions() as s, s.begin():
        await begin_write(s)
        matched = await _match(s, cipher, receipts)
        moves = [
            Move(did, status_for(r), {"provider_code": r.code or None}, code=r.code or None, text=r.text[:500] or None)
            for r, did in matched
            if did is not None
        ]
        applied = await move(s, moves, allowed_from=_FROM, source=EventSource.RECEIPT, now=now)
        failed_ids = [mv.delivery_id for mv in moves if mv.delivery_id in applied and mv.to in DELIVERY_FAILED_FOR_GOOD]
        if failed_ids:
            d = deliveries.c
            rows = await s.execute(
                select(d.id, d.campaign_id, d.policy_id, d.profile_kind, d.profile_id, d.channel, d.purpose).where(d.id.in_(failed_ids))
            )
            await create_fallbacks(s, [Failed(*row) for row in rows], now=now, rules=rules)
    unmatched = sum(1 for _, did in matched if did is None)
    if unmatched:
        log.info("%d receipt(s) match no delivery yet", unmatched)
    return ReceiptReport(len(applied), len(moves) - len(applied), unmatched)
