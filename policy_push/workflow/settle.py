"""Settling rows stuck in ``sending``: what makes a crash between claim and result safe (kill -9).

A row stays in ``sending`` past ``stuck_sending_timeout_s`` (real seconds) only if its worker died
between the claim and the result, or a provider call timed out with the SMS possibly sent. Then:

* SMS is not idempotent. What happens depends on ``deliveries.provider``, which the claim set to
  the adapter the dispatcher pinned the send to (so it names the provider that got, or may have
  got, the message, even after a failover):

  - ``aliyun_sms`` (or none, as claimed before providers were recorded, when Aliyun was the only
    SMS provider): Aliyun is asked first, by name, whichever SMS adapter the router has active
    now: ``QuerySendDetails`` for the recipient's phone on the send dates, looking for our
    delivery id (``OutId`` of a single send, or the link code every text carries, which also
    identifies members of a batch send). Found: ``sent``, or ``delivered`` / failed by its
    ``SendStatus``. Certainly absent: back to ``created`` with the same id, safe to send. The
    query failing: left for the next tick.
  - ``tencent_sms``: Tencent's ``SendSms`` has no idempotency key and there is no API to ask
    whether a message went out, so the outcome cannot be learnt, and resending (through Tencent,
    or Aliyun after a switch back) could text the person twice, which invariant 2 forbids. Such a
    row is never resent on SMS: it becomes ``technical_failure`` with code ``UNKNOWN_OUTCOME``, a
    failure for good, and the recipient's next channel (if any) takes over through a fallback
    delivery. At worst the person gets the SMS and the fallback: two channels, never two texts.
  - any other provider: logged and left in ``sending`` (nothing known can settle it).
* WeChat (``client_msg_id``) and JPush (``sendno``): back to ``created`` with the same id, so the
  resend carries the same idempotency key.

Each return to ``created`` counts an attempt, so a row that kills its worker every time ends as
``technical_failure`` instead of looping (without a fallback: the row may have gone out).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import CHINA_TZ, AliyunSms, ChannelError, Router, SendDetail, TencentSms
from policy_push.security import PiiCipher
from policy_push.statuses import DeliveryStatus
from scheduler import Clock

from .messages import short_code
from .outbox import (
    CONTACT_COLUMN,
    EventSource,
    Move,
    SendRules,
    begin_write,
    chunks,
    deliveries,
    fall_back_after,
    move,
    profile_table,
)

__all__ = ["UNKNOWN_OUTCOME", "SettleReport", "settle_stuck", "sweep_unreceipted_sms"]

log = logging.getLogger("policy_push.settle")
#: carrier codes of a failed SMS that mean the number is unusable (as in channels.receipts)
_UNREACHABLE_CODES = frozenset({"MK:0001", "MK:0012", "MI:0013", "IC:0015", "UNDELIV", "EMPTY_NUMBER"})
_QUERY_CONCURRENCY = 32
_ALIYUN = AliyunSms.name
_TENCENT = TencentSms.name
#: the code of a stuck SMS whose provider cannot tell whether it went out (see the module notes)
UNKNOWN_OUTCOME = "UNKNOWN_OUTCOME"


@dataclass(frozen=True, slots=True)
class SettleReport:
    examined: int
    resend: int
    found: int
    unknown: int
    #: SMS whose provider cannot be asked (Tencent): failed for good as ``UNKNOWN_OUTCOME``
    unknown_outcome: int = 0


@dataclass(slots=True)
class _Stuck:
    id: str
    campaign_id: str
    policy_id: str
    profile_kind: str
    profile_id: str
    channel: str
    purpose: str
    attempts: int
    provider: str | None = None


def _aliyun(router: Router) -> AliyunSms | None:
    """The router's Aliyun adapter, active or not (None if Aliyun is not configured)."""
    try:
        adapter = router.channel("sms", _ALIYUN)
    except (KeyError, ValueError):
        return None
    return adapter if isinstance(adapter, AliyunSms) else None


def _unknown_outcome(row: _Stuck) -> Move:
    return Move(
        row.id, DeliveryStatus.TECHNICAL_FAILURE, {"provider": row.provider, "provider_code": UNKNOWN_OUTCOME},
        code=UNKNOWN_OUTCOME,
        text=f"{row.provider} cannot be asked whether the SMS went out; not resent",
    )


def _found_move(row: _Stuck, detail: SendDetail, now: datetime) -> Move:
    base = {"provider": "aliyun_sms", "sent_at": now, "provider_code": detail.err_code or None}
    if detail.send_status == 3:
        return Move(row.id, DeliveryStatus.DELIVERED, base, code="QUERY_DELIVERED")
    if detail.send_status == 2:
        status = DeliveryStatus.UNREACHABLE if detail.err_code in _UNREACHABLE_CODES else DeliveryStatus.PERMANENT_FAILURE
        return Move(row.id, status, base, code=detail.err_code or "QUERY_FAILED")
    return Move(row.id, DeliveryStatus.SENT, base, code="QUERY_SENT")


def _resend(row: _Stuck, now: datetime, rules: SendRules, code: str) -> Move:
    attempts = row.attempts + 1
    if attempts >= rules.max_attempts:
        return Move(row.id, DeliveryStatus.TECHNICAL_FAILURE, {"attempts": attempts}, code=code, text="stuck in sending too often")
    return Move(row.id, DeliveryStatus.CREATED, {"attempts": attempts, "not_before": now, "waiting_for": None}, code=code)


async def settle_stuck(
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    router: Router,
    *,
    clock: Clock,
    rules: SendRules,
    limit: int = 5000,
) -> SettleReport:
    """Settle up to ``limit`` rows claimed more than ``rules.stuck_after_s`` real seconds ago."""
    now = clock.now()
    cutoff = now - timedelta(seconds=rules.stuck_after_s / clock.real_seconds(1.0))
    d = deliveries.c
    async with sessions() as s:
        rows = [
            _Stuck(*r)
            for r in await s.execute(
                select(d.id, d.campaign_id, d.policy_id, d.profile_kind, d.profile_id, d.channel, d.purpose, d.attempts,
                       d.provider)
                .where(d.status == DeliveryStatus.SENDING.value, d.claimed_at < cutoff)
                .order_by(d.claimed_at)
                .limit(limit)
            )
        ]
        phones = await _phones(s, cipher, [r for r in rows if r.channel == "sms" and r.provider in (None, _ALIYUN)])
    if not rows:
        return SettleReport(0, 0, 0, 0)
    moves: list[Move] = [_resend(r, now, rules, "RESEND_SAME_KEY") for r in rows if r.channel != "sms"]
    tencent = [r for r in rows if r.channel == "sms" and r.provider == _TENCENT]
    moves += [_unknown_outcome(r) for r in tencent]
    sms = [r for r in rows if r.channel == "sms" and r.provider in (None, _ALIYUN)]
    other = [r for r in rows if r.channel == "sms" and r.provider not in (None, _ALIYUN, _TENCENT)]
    unknown = len(other)
    if other:
        log.error("settle: %d SMS row(s) of providers %s cannot be settled; left in sending",
                  len(other), sorted({str(r.provider) for r in other}))  # fmt: skip
    found = 0
    if sms:
        adapter = _aliyun(router)
        if adapter is None:
            log.error("settle: Aliyun SMS is not configured, so it cannot be queried; %d row(s) left in sending", len(sms))
            unknown += len(sms)
        else:
            gate = asyncio.Semaphore(_QUERY_CONCURRENCY)

            async def one(row: _Stuck) -> Move | None:
                phone = phones.get(row.id)
                if phone is None:
                    return Move(row.id, DeliveryStatus.UNREACHABLE, code="NO_ADDRESS")
                async with gate:
                    try:
                        details = await _query(adapter, phone, rules)
                    except ChannelError as exc:
                        log.warning("settle: QuerySendDetails failed (%s); will ask again", exc.code)
                        return None
                code = short_code(row.id)
                hit = next((x for x in details if x.out_id == row.id or code in x.content), None)
                return _found_move(row, hit, now) if hit else _resend(row, now, rules, "QUERY_NOT_SENT")

            for mv in await asyncio.gather(*(one(r) for r in sms)):
                if mv is None:
                    unknown += 1
                else:
                    moves.append(mv)
                    found += mv.to is not DeliveryStatus.CREATED and mv.to is not DeliveryStatus.TECHNICAL_FAILURE
    by_id = {r.id: r for r in rows}
    async with sessions() as s, s.begin():
        await begin_write(s)
        applied = await move(s, moves, allowed_from={DeliveryStatus.SENDING}, source=EventSource.SETTLE, now=now)
        # stuck too often: no fallback. An unknown outcome is a failure for good: the next channel takes over
        await fall_back_after(
            s, moves, applied, by_id, now=now, rules=rules,
            skip=lambda mv: mv.to is DeliveryStatus.TECHNICAL_FAILURE and mv.code != UNKNOWN_OUTCOME,
        )  # fmt: skip
    resend = sum(1 for mv in moves if mv.delivery_id in applied and mv.to is DeliveryStatus.CREATED)
    gave_up = sum(1 for mv in moves if mv.delivery_id in applied and mv.code == UNKNOWN_OUTCOME)
    if gave_up:
        log.warning("settle: %d SMS row(s) of %s failed as %s (cannot be asked, never resent)", gave_up, _TENCENT, UNKNOWN_OUTCOME)
    log.info("settle: %d stuck row(s): %d to resend, %d found at the provider, %d unknown", len(rows), resend, found, unknown)
    return SettleReport(len(rows), resend, found, unknown, gave_up)


async def _query(adapter: AliyunSms, phone: str, rules: SendRules) -> list[SendDetail]:
    """Send records of ``phone`` on the provider's (real) dates a stuck send may carry."""
    real_now = time.time()
    dates = {
        datetime.fromtimestamp(t, CHINA_TZ).strftime("%Y%m%d")
        for t in (real_now, real_now - rules.stuck_after_s - 3600)
    }
    out: list[SendDetail] = []
    for date in sorted(dates):
        out += await adapter.query_send_details(phone, date)
    return out


async def _phones(s: AsyncSession, cipher: PiiCipher, rows: Sequence[_Stuck]) -> dict[str, str]:
    """Delivery id -> decrypted phone, for the rows being settled only."""
    out: dict[str, str] = {}
    col = CONTACT_COLUMN["sms"]
    for kind in {r.profile_kind for r in rows}:
        t = profile_table(kind)
        mine = [r for r in rows if r.profile_kind == kind]
        blobs: dict[str, bytes | None] = {}
        for part in chunks(sorted({r.profile_id for r in mine})):
            blobs.update((await s.execute(select(t.c.id, t.c.phone_enc).where(t.c.id.in_(part)))).all())
        for r in mine:
            blob = blobs.get(r.profile_id)
            if blob is not None:
                out[r.id] = cipher.decrypt(col, blob)
    return out


async def sweep_unreceipted_sms(
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    router: Router,
    *,
    clock: Clock,
    rules: SendRules,
    limit: int = 2000,
) -> int:
    """Pull the receipt of SMS rows ``sent`` longer than ``receipt_wait_s`` ago without one.

    Aliyun keeps every send's status for ``QuerySendDetails`` (SendStatus 3 delivered, 2 failed),
    so a lost SmsReport push still ends in the right status. Rows still waiting (SendStatus 1) are
    touched (``updated_at``) and asked again one ``receipt_wait_s`` later. Returns rows moved.
    """
    adapter = _aliyun(router)  # only Aliyun keeps send records to ask; Tencent rows stay ``sent``
    if adapter is None or rules.receipt_wait_s <= 0:  # 0: receipts are not awaited
        return 0
    now = clock.now()
    horizon = now - timedelta(seconds=rules.receipt_wait_s)
    d = deliveries.c
    async with sessions() as s:
        rows = [
            _Stuck(*r)
            for r in await s.execute(
                select(d.id, d.campaign_id, d.policy_id, d.profile_kind, d.profile_id, d.channel, d.purpose, d.attempts,
                       d.provider)
                .where(d.status == DeliveryStatus.SENT.value, d.channel == "sms", d.provider == _ALIYUN,
                       d.sent_at <= horizon, d.updated_at <= horizon)
                .order_by(d.sent_at)
                .limit(limit)
            )
        ]
        phones = await _phones(s, cipher, rows)
    if not rows:
        return 0
    gate = asyncio.Semaphore(_QUERY_CONCURRENCY)

    async def one(row: _Stuck) -> Move | None:
        phone = phones.get(row.id)
        if phone is None:
            return None
        async with gate:
            try:
                details = await _query(adapter, phone, rules)
            except ChannelError:
                return None
        code = short_code(row.id)
        hit = next((x for x in details if x.out_id == row.id or code in x.content), None)
        if hit is None or hit.send_status not in (2, 3):
            return None
        mv = _found_move(row, hit, now)
        mv.values.pop("sent_at", None)
        return mv

    answers = await asyncio.gather(*(one(r) for r in rows))
    moves = [mv for mv in answers if mv is not None]
    waiting = [r.id for r, mv in zip(rows, answers, strict=True) if mv is None]
    by_id = {r.id: r for r in rows}
    async with sessions() as s, s.begin():
        await begin_write(s)
        applied = await move(s, moves, allowed_from={DeliveryStatus.SENT}, source=EventSource.SETTLE, now=now)
        await fall_back_after(s, moves, applied, by_id, now=now, rules=rules)
        for part in chunks(waiting):
            await s.execute(
                update(deliveries).where(d.id.in_(part), d.status == DeliveryStatus.SENT.value).values(updated_at=now)
            )
    return len(applied)
