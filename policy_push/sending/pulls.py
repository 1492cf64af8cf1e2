"""Receipts and replies we fetch ourselves: the ``pull_reports`` tick.

* Tencent ``PullSmsSendStatus``: the queue of status reports (each handed out once), applied like a
  status callback (``sending.receipts``: message id + provider + channel + recipient hash). Pulling as
  well as taking the callback costs nothing: a report seen twice is recorded as a duplicate event.
* Tencent ``PullSmsReplyStatus``: the queue of replies, applied like the reply callback
  (``sending.inbound``: TD / 退订 opt the phone out of SMS).
* JPush, which pushes nothing: for every app row ``sent`` through JPush at least ``receipt_pull_s`` ago
  and not looked at since, ``GET /v3/received/detail`` (100 pushes a call) for pushes to one device, and
  ``POST /v3/status/message`` per push (``msg_id``) and its devices where that cannot tell.
  Delivered -> ``delivered``; not delivered once the push's time to live has passed (the device will not
  get it now), or a registration id JPush does not know -> ``unreachable``, and the person's next channel
  takes over. Others are asked again one interval later, for at most ``JPUSH_REPORT_DAYS`` days (JPush
  keeps reports about a month).

A pull that fails (the provider is down, throttled) is logged and tried at the next tick; a queue item
pulled is applied in the same tick before the next pull, so at most one pull's worth is ever in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import CHINA_TZ, ChannelError, JPushReports, Outcome, Receipt, Reply, Router, TencentSms
from policy_push.reach import contact_field
from policy_push.security import PiiCipher
from policy_push.statuses import DeliveryStatus
from policy_push.storage import contacts, deliveries
from scheduler import Clock

from .inbound import apply_replies
from .receipts import apply_receipts
from .rules import SendRules

__all__ = ["JPUSH_REPORT_DAYS", "JPushAsked", "TencentPulled", "pull_jpush_reports", "pull_tencent"]

log = logging.getLogger("policy_push.pulls")
T = TypeVar("T")
#: pulls of one queue per tick, at 100 items each: a backlog is worked off over a few ticks
_MAX_ROUNDS = 20
#: how long after a push its JPush report is still asked for
JPUSH_REPORT_DAYS = 7


@dataclass(frozen=True, slots=True)
class TencentPulled:
    """Items drained from Tencent's status and reply queues."""

    receipts: int = 0
    replies: int = 0


async def pull_tencent(
    sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher, router: Router, *, clock: Clock, rules: SendRules,
    early_cap: int | None,
) -> TencentPulled:  # fmt: skip
    """Drain Tencent's status and reply queues (a bounded number of pulls per tick)."""
    if not router.has("sms", TencentSms.name):
        return TencentPulled()
    channel = router.channel("sms", TencentSms.name)
    assert isinstance(channel, TencentSms)

    async def receipts(got: Sequence[Receipt]) -> None:
        report = await apply_receipts(sessions, cipher, got, now=clock.now(), rules=rules, early_cap=early_cap)
        if report.unmatched:
            log.warning("%d pulled Tencent report(s) matched no delivery and could not be kept", report.unmatched)

    async def replies(got: Sequence[Reply]) -> None:
        await apply_replies(sessions, cipher, got, now=clock.now())

    return TencentPulled(
        receipts=await _drain("PullSmsSendStatus", channel.pull_send_status, receipts),
        replies=await _drain("PullSmsReplyStatus", channel.pull_replies, replies),
    )


async def _drain(
    action: str, pull: Callable[[int], Awaitable[Sequence[T]]], apply: Callable[[Sequence[T]], Awaitable[None]]
) -> int:
    """Pull one queue 100 items at a time and apply each pull before the next, until it is empty, a pull
    fails (tried again at the next tick) or ``_MAX_ROUNDS`` pulls; returns the items applied."""
    applied = 0
    for _ in range(_MAX_ROUNDS):
        try:
            got = await pull(100)
        except ChannelError as exc:
            log.warning("%s failed (%s); pulled again at the next tick", action, exc.code)
            break
        if not got:
            break
        await apply(got)
        applied += len(got)
    return applied


@dataclass(frozen=True, slots=True)
class JPushAsked:
    """JPush rows asked about, and those settled by the answer."""

    asked: int = 0
    settled: int = 0


async def pull_jpush_reports(
    sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher, reports: JPushReports, *, clock: Clock,
    rules: SendRules, wait_s: float, time_to_live_s: float, limit: int = 2000,
) -> JPushAsked:  # fmt: skip
    """Ask JPush whether the app pushes sent ``wait_s`` ago or earlier reached their devices."""
    now = clock.now()
    horizon = now - timedelta(seconds=wait_s)
    async with sessions() as s:
        rows = await deliveries.awaiting_report(
            s, provider=reports.name, horizon=horizon, since=now - timedelta(days=JPUSH_REPORT_DAYS), limit=limit
        )
        addresses = await contacts.addresses(s, cipher, {(r.profile_kind, r.profile_id, r.channel) for r, _ in rows})
    if not rows:
        return JPushAsked()
    pushes: dict[str, list[tuple[deliveries.Delivery, str]]] = {}
    final: dict[str, bool] = {}
    dates: dict[str, str] = {}
    for row, sent_at in rows:
        reg_id = addresses.get((row.profile_kind, row.profile_id, row.channel))
        if reg_id is None or row.provider_message_id is None:
            continue
        pushes.setdefault(row.provider_message_id, []).append((row, reg_id))
        final[row.provider_message_id] = (now - sent_at).total_seconds() >= time_to_live_s
        # JPush files a push's status under the day it was pushed (Beijing time)
        dates[row.provider_message_id] = sent_at.astimezone(CHINA_TZ).strftime("%Y-%m-%d")
    receipts: list[Receipt] = []
    # a push to one device (batch single push: every row its own msg_id) is delivered when its received count
    # is above zero, asked 100 pushes a call; only those still undelivered once final need the per-device
    # status (not delivered, or an id JPush does not know); a push to several devices always does
    singles = {mid: members[0][1] for mid, members in pushes.items() if len(members) == 1}
    try:
        delivered = {c.msg_id for c in await reports.received(list(singles)) if c.delivered}
    except ChannelError as exc:
        log.warning("JPush received counts failed (%s); asked again at the next tick", exc.code)
        delivered = set()
    receipts += [
        Receipt(provider=reports.name, provider_message_id=mid, recipient=singles[mid], delivered=True,
                outcome=Outcome.ACCEPTED, code="DELIVERED")
        for mid in sorted(delivered & set(singles))
    ]  # fmt: skip
    ask = [mid for mid in pushes if (mid not in singles or (mid not in delivered and final[mid]))]
    for msg_id in ask:
        try:
            receipts += await reports.receipts(
                msg_id, [reg for _, reg in pushes[msg_id]], final=final[msg_id], date=dates[msg_id]
            )
        except ChannelError as exc:
            log.warning("JPush report for one push failed (%s); asked again at the next tick", exc.code)
    settled = 0
    for part in _chunks(receipts, 100):
        settled += (await apply_receipts(sessions, cipher, part, now=now, rules=rules)).applied
    # the rest are looked at again one interval later (``updated_at`` is the "last asked")
    answered = {(r.provider_message_id, cipher.lookup_hash(contact_field("app"), r.recipient)) for r in receipts}
    async with sessions() as s, s.begin():
        waiting = [
            row.id for row, reg in (m for members in pushes.values() for m in members)
            if (row.provider_message_id, cipher.lookup_hash(contact_field("app"), reg)) not in answered
        ]  # fmt: skip
        await deliveries.set_values(s, waiting, status=DeliveryStatus.SENT, updated_at=now)
    return JPushAsked(asked=sum(len(m) for m in pushes.values()), settled=settled)


def _chunks(items: Sequence[Receipt], n: int) -> list[Sequence[Receipt]]:
    return [items[i : i + n] for i in range(0, len(items), n)]
