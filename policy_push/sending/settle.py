"""Settling rows whose claim lapsed: what makes a worker's death (kill -9, a lost database) safe.

A row stays ``sending`` past its lease only if its worker stopped renewing it: it died, or lost the
database and stopped sending (the dispatcher cancels its calls before the lease can lapse). Whether the
message went out is then unknown, and resending it blindly could message someone twice, which invariant
2 forbids. So each lapsed row's provider (``deliveries.provider``, recorded at the claim, before any call)
is asked through the router (``Router.query``), and ``sending.outcomes.after_lapse`` decides:

* no provider call was made (no ``unsure_since``: the sender marks its rows right before calling) ->
  ``created`` again, nobody asked;
* the provider has it (Aliyun's ``QuerySendDetails``) -> ``sent``, or the status of the receipt it holds;
* it certainly does not -> ``created`` again (the same id), to be sent as if for the first time;
* the provider cannot tell yet but its records may still come to show the send (Tencent lists a send
  only once the carrier has reported it: ``Channel.answer_wait_s``, 30 minutes) -> left ``sending`` with a
  new lease (event ``AWAITING_PROVIDER``) and asked again when it ends;
* nobody can tell (Tencent past that wait, JPush after a restart, WeChat) -> resent with the same id only while the
  provider drops repeats of it (WeChat: ``client_msg_id``, ten minutes, used for half that), otherwise
  ``technical_failure`` with code ``UNKNOWN_OUTCOME``: never sent again on that channel; the recipient's
  next channel takes over through a fallback. Such a person may hear of the policy on two channels,
  never twice on one.

Every move is guarded: only while the row is still ``sending`` under the claim settle saw and its lease
is still over, so a worker that came back and renewed it keeps it.

The same tick pulls overdue receipts (:func:`sweep_unreceipted`): SMS rows ``sent`` long ago without a
receipt are looked up too, so a lost SmsReport push still ends in the right status.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import Answer, Inquiry, Router
from policy_push.campaigns.messages import short_code
from policy_push.security import PiiCipher
from policy_push.statuses import Code, DeliveryStatus, EventSource
from policy_push.storage import contacts, deliveries
from policy_push.storage.deliveries import Delivery, Move
from policy_push.storage.sql import begin_write, database_now
from scheduler import Clock

from .fallbacks import failed_for_good, fall_back
from .outcomes import after_lapse, after_receipt
from .rules import SendRules
from .starting import RECEIPT_CHANNELS

__all__ = ["SettleReport", "Settled", "settle_lapsed", "sweep_unreceipted"]

log = logging.getLogger("policy_push.settle")


class Settled(enum.StrEnum):
    """What became of a lapsed row settle examined."""

    #: never handed to a provider (lapsed before the call): back to ``created``
    NOT_CALLED = "not_called"
    #: the provider had it
    FOUND = "found"
    #: back to ``created``: certainly not sent, or resent under the provider's deduplication
    RESEND = "resend"
    #: failed for good as ``UNKNOWN_OUTCOME`` (the next channel takes over)
    UNKNOWN_OUTCOME = "unknown_outcome"
    #: the provider cannot tell yet but may soon (Tencent): a new lease, asked again when it ends
    AWAITING = "awaiting"
    #: moves refused: the row was renewed, recorded or settled meanwhile
    IGNORED = "ignored"


#: an applied move's code -> what it counts as; any other move back to ``created`` is a resend (a row given
#: up as "lapsed too often" after its provider said it has no record of it counts as none of them)
_BY_CODE = {Code.FOUND_AT_PROVIDER: Settled.FOUND, Code.NOT_CALLED: Settled.NOT_CALLED,
            Code.UNKNOWN_OUTCOME: Settled.UNKNOWN_OUTCOME}


def _settled(m: Move) -> Settled | None:
    if m.code in _BY_CODE:
        return _BY_CODE[m.code]
    return Settled.RESEND if m.to is DeliveryStatus.CREATED else None


@dataclass(frozen=True, slots=True)
class SettleReport:
    """How many lapsed rows one run examined, and how many of them came to each :class:`Settled`."""

    examined: int = 0
    outcomes: Counter[Settled] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class _Asked:
    answer: Answer
    #: the provider's resend window and how long its records may still come to show a send
    resend_window_s: float
    answer_wait_s: float


async def _ask(
    router: Router, rows: Sequence[Delivery], addresses: dict[tuple[str, str, str], str]
) -> dict[str, _Asked]:
    """Each row's provider's answer, with that provider's resend window and answer wait. The providers are
    asked at the same time: each has its own rate limit, and asked one after another (Aliyun and Tencent
    answer one phone per request) a backlog after a crash waited for the sum of their times."""
    groups: dict[tuple[str, str | None], list[Delivery]] = {}
    for r in rows:
        groups.setdefault((r.channel, r.provider), []).append(r)

    async def ask(channel: str, provider: str | None, members: list[Delivery]) -> dict[str, _Asked]:
        items = [
            Inquiry(r.id, addresses.get((r.profile_kind, r.profile_id, r.channel), ""), since=r.unsure_since or r.claimed_at,
                    markers=(r.link_code or short_code(r.id),))
            for r in members
        ]  # fmt: skip
        window, wait = router.resend_window_s(channel, provider), router.answer_wait_s(channel, provider)
        return {a.delivery_id: _Asked(a, window, wait) for a in await router.query(channel, provider, items)}

    out: dict[str, _Asked] = {}
    for answers in await asyncio.gather(*(ask(ch, p, m) for (ch, p), m in groups.items())):
        out.update(answers)
    return out


def _hold_s(answers: dict[str, _Asked], rows: Sequence[Delivery]) -> float:
    """How long a row waits before the next question: a sixth of its provider's answer wait (so it is asked
    about six times before settle gives up on it), at least five seconds."""
    return max(5.0, min(answers[r.id].answer_wait_s for r in rows) / 6)


async def _load(session: AsyncSession, cipher: PiiCipher, rows: Sequence[Delivery]) -> dict[tuple[str, str, str], str]:
    return await contacts.addresses(session, cipher, {(r.profile_kind, r.profile_id, r.channel) for r in rows})


async def settle_lapsed(
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    router: Router,
    *,
    clock: Clock,
    rules: SendRules,
    limit: int = 5000,
) -> SettleReport:
    """Settle up to ``limit`` rows whose claim lapsed."""
    now = clock.now()
    async with sessions() as s:
        db_now = await database_now(s)
        rows = await deliveries.lapsed(s, db_now=db_now, limit=limit)
        addresses = await _load(s, cipher, rows) if rows else {}
    if not rows:
        return SettleReport()
    # a row never handed to a provider (no unsure_since) needs no question
    answers = await _ask(router, [r for r in rows if r.unsure_since is not None], addresses)
    decided = {
        r.id: after_lapse(r, answers[r.id].answer if r.id in answers else None, now=now, db_now=db_now, rules=rules,
                          resend_window_s=answers[r.id].resend_window_s if r.id in answers else 0.0,
                          answer_wait_s=answers[r.id].answer_wait_s if r.id in answers else 0.0)
        for r in rows
    }  # fmt: skip
    moves = [m for m in decided.values() if m is not None]
    # the provider cannot tell yet but may soon (Tencent before the carrier's report): asked again later
    waiting = [r for r in rows if decided[r.id] is None]
    async with sessions() as s, s.begin():
        await begin_write(s)
        lapsed_before = await database_now(s)
        applied = await deliveries.move(
            s, moves, allowed_from={DeliveryStatus.SENDING}, source=EventSource.SETTLE, now=now, lapsed_before=lapsed_before
        )
        await fall_back(s, failed_for_good(rows, applied, moves), now=now, rules=rules)
        held = await deliveries.hold(
            s, [(r.id, r.claim_id) for r in waiting], until=lapsed_before + timedelta(seconds=_hold_s(answers, waiting)),
            lapsed_before=lapsed_before, now=now, code=Code.AWAITING_PROVIDER,
            text="the provider has no record of it yet; asked again later",
        ) if waiting else []  # fmt: skip
    done = [m for m in moves if m.delivery_id in applied]
    outcomes = Counter(o for o in map(_settled, done) if o is not None)
    outcomes[Settled.AWAITING] = len(held)
    outcomes[Settled.IGNORED] = len(moves) - len(done) + len(waiting) - len(held)
    report = SettleReport(examined=len(rows), outcomes=+outcomes)
    log.info("settle: %d examined; %s", report.examined, ", ".join(f"{o} {n}" for o, n in report.outcomes.items()) or "none moved")
    if report.outcomes[Settled.UNKNOWN_OUTCOME]:
        log.warning("settle: %d message(s) of unknown outcome failed on their channel (UNKNOWN_OUTCOME); "
                    "never sent again there", report.outcomes[Settled.UNKNOWN_OUTCOME])  # fmt: skip
    return report


async def sweep_unreceipted(
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    router: Router,
    *,
    clock: Clock,
    rules: SendRules,
    limit: int = 2000,
) -> int:
    """Ask for the receipt of rows ``sent`` longer than ``receipt_wait_s`` ago without one.

    A provider that keeps its verdicts (Aliyun: SendStatus 3 delivered, 2 failed) settles them; the rest
    are touched (``updated_at``) and asked again one ``receipt_wait_s`` later. Returns rows moved."""
    if rules.receipt_wait_s <= 0:  # receipts are not awaited
        return 0
    now = clock.now()
    horizon = now - timedelta(seconds=rules.receipt_wait_s)
    async with sessions() as s:
        rows = await deliveries.sent_awaiting_receipt(s, channels=RECEIPT_CHANNELS, horizon=horizon, limit=limit)
        addresses = await _load(s, cipher, rows) if rows else {}
    if not rows:
        return 0
    answers = await _ask(router, rows, addresses)
    moves: list[Move] = []
    for r in rows:
        receipt = answers[r.id].answer.receipt
        if receipt is not None:
            moves.append(after_receipt(r.id, receipt.delivered, receipt.outcome, receipt.code, receipt.text))
    waiting = [r.id for r in rows if answers[r.id].answer.receipt is None]
    async with sessions() as s, s.begin():
        await begin_write(s)
        applied = await deliveries.move(s, moves, allowed_from={DeliveryStatus.SENT}, source=EventSource.SETTLE, now=now)
        await fall_back(s, failed_for_good(rows, applied, moves), now=now, rules=rules)
        await deliveries.set_values(s, waiting, status=DeliveryStatus.SENT, updated_at=now)
    return len(applied)
