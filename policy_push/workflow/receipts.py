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

Early receipts: a receipt can outrun our record of the send (WeChat's event carries the ``MsgID``
we store only when the batch's results are recorded). Refusing it would not help: providers give
up re-pushing after a few tries (WeChat: three, within seconds) and WeChat cannot be asked later,
so the row would stay ``sent`` for ever. Such a receipt is stored in ``early_receipts`` (recipient
as its keyed hash only) in the push's own transaction and acknowledged; :func:`apply_early_receipts`
applies it when the dispatcher records the send, and the settle tick (:func:`sweep_early_receipts`)
catches any that raced the results transaction and drops those unmatched for a week.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import Outcome, Receipt
from policy_push.security import PiiCipher
from policy_push.statuses import DELIVERY_FAILED_FOR_GOOD, DeliveryStatus
from policy_push.storage.campaign_tables import EarlyReceiptRow

from .outbox import (
    CONTACT_COLUMN,
    EventSource,
    Failed,
    Move,
    SendRules,
    begin_write,
    chunks,
    create_fallbacks,
    deliveries,
    is_postgres,
    move,
    profile_table,
)

__all__ = [
    "EARLY_RECEIPT_MAX_AGE",
    "ReceiptReport",
    "apply_early_receipts",
    "apply_receipts",
    "recipient_hash",
    "status_for",
    "sweep_early_receipts",
]

log = logging.getLogger("policy_push.receipts")
_FROM = frozenset({DeliveryStatus.SENT, DeliveryStatus.SENDING})
early_receipts: Table = EarlyReceiptRow.__table__  # type: ignore[assignment]
#: how long an early receipt waits for its send: far past any retry or settle of the send itself
EARLY_RECEIPT_MAX_AGE = timedelta(days=7)
#: early receipts looked at per settle sweep, so one tick stays short
_SWEEP_LIMIT = 5000


@dataclass(frozen=True, slots=True)
class ReceiptReport:
    applied: int
    #: receipts for rows already final (late or duplicate pushes): recorded as events only
    ignored: int
    #: receipts that match no delivery and could not be kept (nothing to match them by later):
    #: the caller should not acknowledge them
    unmatched: int
    #: receipts that match no delivery yet, stored in ``early_receipts`` until the send is recorded
    deferred: int = 0


@dataclass(frozen=True, slots=True)
class _Key:
    """What a receipt is matched by; built from a pushed receipt or a stored early one."""

    delivery_id: str
    provider: str
    provider_message_id: str
    recipient_hash: str | None


def status_for(receipt: Receipt) -> DeliveryStatus:
    return _status(receipt.delivered, receipt.outcome)


def _status(delivered: bool, outcome: Outcome) -> DeliveryStatus:
    if delivered:
        return DeliveryStatus.DELIVERED
    if outcome is Outcome.UNREACHABLE:
        return DeliveryStatus.UNREACHABLE
    # a failure after acceptance cannot be resent on the same channel (sent -> created is not a
    # transition): it is a failure for good there, and the next channel gets its chance
    return DeliveryStatus.PERMANENT_FAILURE


def recipient_hash(cipher: PiiCipher, receipt: Receipt) -> str | None:
    """The keyed hash of the receipt's recipient, as the profile tables store it (``*_hash``)."""
    if not receipt.recipient:
        return None
    if receipt.provider == "wechat":
        return cipher.lookup_hash(CONTACT_COLUMN["wechat"], receipt.recipient)
    # Aliyun may report the number with its country code (86...): the profile stores 11 digits
    return cipher.lookup_hash(CONTACT_COLUMN["sms"], receipt.recipient[-11:])


async def _match(session: AsyncSession, keys: Sequence[_Key]) -> list[str | None]:
    """The delivery id each key matches, or None."""
    d = deliveries.c
    ids = {k.delivery_id for k in keys if k.delivery_id}
    direct: set[str] = set()
    for part in chunks(sorted(ids)):
        direct.update((await session.execute(select(d.id).where(d.id.in_(part)))).scalars())
    by_message: dict[tuple[str, str], list[tuple[str, str, str, str]]] = {}
    wanted = sorted({k.provider_message_id for k in keys if k.delivery_id not in direct and k.provider_message_id})
    for part in chunks(wanted):
        rows = await session.execute(
            select(d.id, d.provider, d.provider_message_id, d.profile_kind, d.profile_id, d.channel).where(
                d.provider_message_id.in_(part)
            )
        )
        for did, provider, pmid, kind, pid, channel in rows:
            by_message.setdefault((provider or "", pmid), []).append((did, kind, pid, channel))
    # batch members share a message id: tell them apart by the recipient's keyed hash
    hashes: dict[tuple[str, str], dict[str, str]] = {}
    shared = [row for rows in by_message.values() if len(rows) > 1 for row in rows]
    for kind in {k for _, k, _, _ in shared}:
        t = profile_table(kind)
        for part in chunks(sorted({p for _, k, p, _ in shared if k == kind})):
            for pid, phone_h, openid_h in await session.execute(
                select(t.c.id, t.c.phone_hash, t.c.wechat_openid_hash).where(t.c.id.in_(part))
            ):
                hashes[(kind, pid)] = {"sms": phone_h or "", "wechat": openid_h or ""}
    out: list[str | None] = []
    for k in keys:
        if k.delivery_id in direct:
            out.append(k.delivery_id)
            continue
        rows = by_message.get((k.provider, k.provider_message_id), [])
        if len(rows) == 1:
            out.append(rows[0][0])
        elif rows and k.recipient_hash:
            out.append(next((did for did, kind, p, ch in rows if hashes.get((kind, p), {}).get(ch) == k.recipient_hash), None))
        else:
            out.append(None)
    return out


async def _apply_moves(session: AsyncSession, moves: Sequence[Move], *, now: datetime, rules: SendRules) -> int:
    """The guarded moves out of sent/sending, and the fallbacks of failures for good; returns applied."""
    applied = await move(session, moves, allowed_from=_FROM, source=EventSource.RECEIPT, now=now)
    failed_ids = [mv.delivery_id for mv in moves if mv.delivery_id in applied and mv.to in DELIVERY_FAILED_FOR_GOOD]
    if failed_ids:
        d = deliveries.c
        rows = await session.execute(
            select(d.id, d.campaign_id, d.policy_id, d.profile_kind, d.profile_id, d.channel, d.purpose).where(d.id.in_(failed_ids))
        )
        await create_fallbacks(session, [Failed(*row) for row in rows], now=now, rules=rules)
    return len(applied)


def _receipt_move(did: str, delivered: bool, outcome: Outcome, code: str | None, text: str | None) -> Move:
    return Move(did, _status(delivered, outcome), {"provider_code": code or None}, code=code or None, text=(text or "")[:500] or None)


async def apply_receipts(
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    receipts: Sequence[Receipt],
    *,
    now: datetime,
    rules: SendRules,
) -> ReceiptReport:
    """Apply one push's receipts in one transaction; keep those that match no delivery yet."""
    if not receipts:
        return ReceiptReport(0, 0, 0)
    keys = [_Key(r.delivery_id, r.provider, r.provider_message_id, recipient_hash(cipher, r)) for r in receipts]
    async with sessions() as s, s.begin():
        await begin_write(s)
        matched = await _match(s, keys)
        moves = [
            _receipt_move(did, r.delivered, r.outcome, r.code, r.text)
            for r, did in zip(receipts, matched, strict=True)
            if did is not None
        ]
        applied = await _apply_moves(s, moves, now=now, rules=rules)
        # stored in this same transaction: once the push is acknowledged, the receipt is safe
        early = [
            {
                "provider": r.provider,
                "provider_message_id": r.provider_message_id,
                "recipient_hash": k.recipient_hash,
                "delivered": r.delivered,
                "outcome": r.outcome.value,
                "code": r.code[:64] or None,
                "text": r.text[:500] or None,
                "reported_at": r.reported_at,
                "received_at": now,
            }
            for r, k, did in zip(receipts, keys, matched, strict=True)
            if did is None and r.provider_message_id
        ]
        for part in chunks(early):
            await s.execute(early_receipts.insert(), list(part))
    # without a message id nothing could ever match it: not kept, and the push is not acknowledged
    unmatched = sum(1 for did in matched if did is None) - len(early)
    if early:
        log.info("%d receipt(s) match no delivery yet: kept until their send is recorded", len(early))
    if unmatched:
        log.warning("%d receipt(s) carry no message id and match no delivery: not kept", unmatched)
    return ReceiptReport(applied, len(moves) - applied, unmatched, len(early))


async def apply_early_receipts(
    session: AsyncSession,
    cipher: PiiCipher,
    *,
    now: datetime,
    rules: SendRules,
    provider_message_ids: Collection[str] | None = None,
    limit: int | None = None,
) -> ReceiptReport:
    """Apply stored early receipts whose send is now recorded, and delete those applied.

    Runs in the caller's write transaction (begun with :func:`begin_write`). ``provider_message_ids``
    restricts it to the sends just recorded (the dispatcher); None looks at all of them, oldest
    first, up to ``limit`` (the settle sweep). Matching is :func:`_match`'s, by message id and, for
    a shared Aliyun ``BizId``, the stored recipient hash; the moves are the guarded ones of pushed
    receipts, so one for a row already final changes nothing (an event records it) and is deleted
    too. Returns applied / ignored, and ``deferred`` = those still waiting among the ones looked at.
    ``cipher`` is unused today (the recipient is stored already hashed); it is taken so callers need
    not change should matching ever need to hash again.
    """
    e = early_receipts.c
    stmt = select(e.id, e.provider, e.provider_message_id, e.recipient_hash, e.delivered, e.outcome, e.code, e.text).order_by(e.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    if is_postgres(session):
        # a receipt being applied by another transaction (the dispatcher vs. the settle sweep) is
        # skipped rather than applied twice; the next sweep sees it if that one did not match it
        stmt = stmt.with_for_update(skip_locked=True)
    if provider_message_ids is None:
        rows = list(await session.execute(stmt))
    else:
        rows = []
        for part in chunks(sorted(set(provider_message_ids))):
            rows += list(await session.execute(stmt.where(e.provider_message_id.in_(part))))
    if not rows:
        return ReceiptReport(0, 0, 0)
    keys = [_Key("", r.provider, r.provider_message_id, r.recipient_hash) for r in rows]
    matched = await _match(session, keys)
    moves = [
        _receipt_move(did, r.delivered, Outcome(r.outcome), r.code, r.text)
        for r, did in zip(rows, matched, strict=True)
        if did is not None
    ]
    applied = await _apply_moves(session, moves, now=now, rules=rules)
    done = [r.id for r, did in zip(rows, matched, strict=True) if did is not None]
    for part in chunks(done):
        await session.execute(delete(early_receipts).where(e.id.in_(part)))
    if done:
        log.info("%d early receipt(s) matched their send: %d applied", len(done), applied)
    return ReceiptReport(applied, len(moves) - applied, 0, len(rows) - len(done))


async def sweep_early_receipts(
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    *,
    now: datetime,
    rules: SendRules,
    max_age: timedelta = EARLY_RECEIPT_MAX_AGE,
) -> ReceiptReport:
    """The settle tick's part: apply every early receipt that now matches, drop those too old.

    This closes the race the dispatcher's own call cannot: on PostgreSQL a receipt stored while the
    results transaction was still open is invisible to that transaction, and its push was
    acknowledged, so nobody else would ever look at it. Returns what :func:`apply_early_receipts` did.
    """
    async with sessions() as s, s.begin():
        await begin_write(s)
        report = await apply_early_receipts(s, cipher, now=now, rules=rules, limit=_SWEEP_LIMIT)
        result = await s.execute(delete(early_receipts).where(early_receipts.c.received_at < now - max_age))
        stale = int(getattr(result, "rowcount", 0) or 0)
    if stale:
        # their send was never recorded with that message id: nothing left to apply them to
        log.warning("dropped %d early receipt(s) unmatched for %s", stale, max_age)
    return report
