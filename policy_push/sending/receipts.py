"""Receipts: what providers push back after accepting a message, applied to the outbox in batches.

One push (an Aliyun SmsReport array of up to 100 reports, one WeChat event) is one transaction:
Notify.gov learnt that a task per receipt falls over at scale. Each receipt moves its row out of
``sent`` (or ``sending``, when the receipt outran our own record of the send) as ``sending.outcomes``
says; a receipt for a row already final (late, or the provider's duplicate push) leaves an event and
changes nothing. A failure for good starts the fallback on the recipient's next channel.

Matching (strict, so a forged or misdirected receipt cannot touch another row): a receipt changes a row
only when all of these agree: the provider's message id (Aliyun ``BizId``, Tencent ``SerialNo``, WeChat
``MsgID``, JPush ``msg_id``) equals the row's ``provider_message_id``, the row was sent through that same
provider on that provider's channel (an SMS receipt never touches an app or WeChat row), and the
receipt's recipient (phone, openid, registration id) has the keyed hash of the row's own address. The
``OutId`` / SessionContext naming our delivery id only tells apart rows that pass all of that (the same
phone twice in one batch); it never matches a row by itself: it is printed in every message link.

Early receipts: a receipt can outrun our record of the send (WeChat's event carries the ``MsgID`` we
store only when the batch's results are recorded). Refusing it would not help: providers give up
re-pushing after a few tries (WeChat: three, within seconds) and WeChat cannot be asked later, so the
row would stay ``sent`` for ever. Such a receipt is kept (recipient as its keyed hash only) in the
push's own transaction and acknowledged; :func:`apply_early_receipts` applies it when the dispatcher
records the send, and the settle tick (:func:`sweep_early_receipts`) catches any that raced the
results transaction and drops those unmatched for a week.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import Outcome, Receipt
from policy_push.reach import contact_field
from policy_push.security import PiiCipher
from policy_push.statuses import DeliveryStatus, EventSource
from policy_push.storage import contacts, deliveries
from policy_push.storage import receipts as receipt_store
from policy_push.storage.deliveries import Move
from policy_push.storage.sql import begin_write

from .fallbacks import failed_for_good, fall_back
from .outcomes import after_receipt
from .rules import SendRules

__all__ = ["EARLY_RECEIPT_MAX_AGE", "PROVIDER_CHANNEL", "ReceiptReport", "apply_early_receipts", "apply_receipts", "sweep_early_receipts"]

log = logging.getLogger("policy_push.receipts")
_FROM = frozenset({DeliveryStatus.SENT, DeliveryStatus.SENDING})
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

    provider: str
    provider_message_id: str
    recipient_hash: str | None
    #: our delivery ids the receipt names (OutId, SessionContext): a tie-break among matching rows only
    hints: tuple[str, ...] = ()


#: the channel each provider sends on: a receipt of one provider never touches a row of another channel
PROVIDER_CHANNEL = {"aliyun_sms": "sms", "tencent_sms": "sms", "wechat": "wechat", "jpush": "app"}


def recipient_hash(cipher: PiiCipher, receipt: Receipt) -> str | None:
    """The keyed hash of the receipt's recipient, as the profile tables store it (``*_hash``)."""
    channel = PROVIDER_CHANNEL.get(receipt.provider)
    if not receipt.recipient or channel is None:
        return None
    if channel == "sms":
        # providers may report the number with its country code (86...): the profile stores 11 digits
        return cipher.lookup_hash(contact_field("sms"), receipt.recipient[-11:])
    return cipher.lookup_hash(contact_field(channel), receipt.recipient)


def _key(cipher: PiiCipher, r: Receipt) -> _Key:
    hints = tuple(h for h in (r.delivery_id, *r.context_ids) if h)
    return _Key(r.provider, r.provider_message_id, recipient_hash(cipher, r), hints)


async def _match(session: AsyncSession, keys: Sequence[_Key]) -> list[str | None]:
    """The delivery id each key matches (message id + provider + channel + recipient hash), or None."""
    wanted = {k.provider_message_id for k in keys if k.provider_message_id and k.recipient_hash}
    by_message: dict[tuple[str, str], list[deliveries.Delivery]] = {}
    for row in await deliveries.by_message_ids(session, wanted):
        if row.provider and PROVIDER_CHANNEL.get(row.provider) == row.channel:
            by_message.setdefault((row.provider, row.provider_message_id or ""), []).append(row)
    people = {(r.profile_kind, r.profile_id) for rows in by_message.values() for r in rows}
    hashes = await contacts.contact_hashes(session, people) if people else {}
    out: list[str | None] = []
    for k in keys:
        rows = [
            r for r in by_message.get((k.provider, k.provider_message_id), [])
            if k.recipient_hash and hashes.get((r.profile_kind, r.profile_id), {}).get(r.channel) == k.recipient_hash
        ]  # fmt: skip
        rows.sort(key=lambda r: (r.id not in k.hints, r.id))
        out.append(rows[0].id if rows else None)
    return out


async def _apply(session: AsyncSession, moves: Sequence[Move], *, now: datetime, rules: SendRules) -> int:
    """The guarded moves out of sent/sending, and the fallbacks of failures for good; returns applied."""
    applied = await deliveries.move(session, moves, allowed_from=_FROM, source=EventSource.RECEIPT, now=now)
    failed_ids = {m.delivery_id for m in moves if m.delivery_id in applied}
    if failed_ids:
        rows = await deliveries.by_ids(session, failed_ids)
        await fall_back(session, failed_for_good(rows, applied, moves), now=now, rules=rules)
    return len(applied)


async def apply_receipts(
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    receipts: Sequence[Receipt],
    *,
    now: datetime,
    rules: SendRules,
    early_cap: int | None = None,
) -> ReceiptReport:
    """Apply one push's receipts in one transaction; keep those that match no delivery yet (at most
    ``early_cap`` kept in all; None: no cap)."""
    if not receipts:
        return ReceiptReport(0, 0, 0)
    keys = [_key(cipher, r) for r in receipts]
    async with sessions() as s, s.begin():
        await begin_write(s)
        matched = await _match(s, keys)
        moves = [
            after_receipt(did, r.delivered, r.outcome, r.code, r.text)
            for r, did in zip(receipts, matched, strict=True)
            if did is not None
        ]
        applied = await _apply(s, moves, now=now, rules=rules)
        # kept in this same transaction: once the push is acknowledged, the receipt is safe
        early = [
            {
                "provider": r.provider, "provider_message_id": r.provider_message_id, "recipient_hash": k.recipient_hash,
                "delivered": r.delivered, "outcome": r.outcome.value, "code": r.code[:64] or None,
                "text": r.text[:500] or None, "reported_at": r.reported_at, "received_at": now,
            }
            for r, k, did in zip(receipts, keys, matched, strict=True)
            if did is None and r.provider_message_id and k.recipient_hash
        ]  # fmt: skip
        if early and early_cap is not None:
            # bounded: a flood of receipts for sends that never happened cannot fill the table
            room = max(0, early_cap - await receipt_store.count_early(s))
            if len(early) > room:
                log.warning("early receipts at their cap (%d): %d not kept, the push is refused", early_cap, len(early) - room)
                early = early[:room]
        await receipt_store.keep_early(s, early)
    # without a message id or a recipient nothing could ever match it (or the cap is reached): not kept,
    # and the push is not acknowledged
    unmatched = sum(1 for did in matched if did is None) - len(early)
    if early:
        log.info("%d receipt(s) match no delivery yet: kept until their send is recorded", len(early))
    if unmatched:
        log.warning("%d receipt(s) match no delivery and were not kept", unmatched)
    return ReceiptReport(applied, len(moves) - applied, unmatched, len(early))


async def apply_early_receipts(
    session: AsyncSession,
    *,
    now: datetime,
    rules: SendRules,
    provider_message_ids: Collection[str] | None = None,
    limit: int | None = None,
) -> ReceiptReport:
    """Apply kept early receipts whose send is now recorded, and drop those applied.

    Runs in the caller's write transaction. ``provider_message_ids`` restricts it to the sends just
    recorded (the dispatcher); None looks at all of them, oldest first, up to ``limit`` (the settle
    sweep). A receipt for a row already final changes nothing (an event records it) and is dropped too.
    Returns applied / ignored, and ``deferred`` = those still waiting among the ones looked at."""
    rows = await receipt_store.take_early(session, message_ids=provider_message_ids, limit=limit)
    if not rows:
        return ReceiptReport(0, 0, 0)
    matched = await _match(session, [_Key(r.provider, r.provider_message_id, r.recipient_hash) for r in rows])
    moves = [
        after_receipt(did, r.delivered, Outcome(r.outcome), r.code, r.text)
        for r, did in zip(rows, matched, strict=True)
        if did is not None
    ]
    applied = await _apply(session, moves, now=now, rules=rules)
    done = [r.id for r, did in zip(rows, matched, strict=True) if did is not None]
    await receipt_store.drop_early(session, done)
    if done:
        log.info("%d early receipt(s) matched their send: %d applied", len(done), applied)
    return ReceiptReport(applied, len(moves) - applied, 0, len(rows) - len(done))


async def sweep_early_receipts(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, rules: SendRules, max_age: timedelta = EARLY_RECEIPT_MAX_AGE
) -> ReceiptReport:
    """The settle tick's part: apply every early receipt that now matches, drop those too old.

    This closes the race the dispatcher's own call cannot: on PostgreSQL a receipt kept while the results
    transaction was still open is invisible to that transaction, and its push was acknowledged, so nobody
    else would ever look at it."""
    async with sessions() as s, s.begin():
        await begin_write(s)
        report = await apply_early_receipts(s, now=now, rules=rules, limit=_SWEEP_LIMIT)
        stale = await receipt_store.expire_early(s, before=now - max_age)
    if stale:
        # their send was never recorded with that message id: nothing left to apply them to
        log.warning("dropped %d early receipt(s) unmatched for %s", stale, max_age)
    return report
