"""Sending: claim a batch, release the database, call the providers, record the results.

This is the only module of the application that calls providers (``Router.send``; grep finds
``.send(`` nowhere else in ``policy_push``). Per batch:

1. the provider of each channel kind is chosen (``router.active(kind)``, which may fail over or
   probe the primary), then claimed (``claim.claim_batch``): rows move ``created -> sending`` with
   that ``provider`` and the claim is committed. The send is pinned to it (``Router.send(provider=…)``),
   so a row's ``provider`` always names the adapter that got, or may have got, its message;
2. no session is held while the providers are called, so a slow provider cannot pin the pool;
3. results are recorded in one write transaction, each an UPDATE guarded by status ``sending``:

   ============  ===================================================================
   accepted      ``sent`` (provider, message id, sent_at)
   retryable     ``created`` again, ``not_before`` = backoff with jitter, attempts + 1;
                 ``technical_failure`` once ``max_attempts`` are used. Throttling and
                 quota waits ("slow down", ``provider_fault`` False) do not spend an attempt.
                 SMS that may have gone out (a timeout after the request left) stays
                 ``sending`` for settle: SMS is not idempotent, so it is asked about first.
   permanent     ``permanent_failure``
   unreachable   ``unreachable``
   ============  ===================================================================

   A failure for good starts a fallback delivery on the recipient's next channel (``outbox.create_fallbacks``).
   Receipts that arrived before this record (``early_receipts``) are applied in the same transaction,
   and so are the router's provider switches since the last record (``provider_switches``).

Rate limits live in the adapters' limiters: waiting for a token is not a failure. Addresses are
decrypted per batch and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import ChannelError, OutboundMessage, Outcome, ProviderSwitch, Router, SendResult
from policy_push.security import PiiCipher
from policy_push.statuses import DeliveryStatus
from policy_push.storage.campaign_tables import CampaignMessageRow, ProviderSwitchRow
from scheduler import Clock

from .claim import Claimed, claim_batch
from .messages import render_for_recipient
from .outbox import EventSource, Move, SendRules, Waiting, begin_write, events, fall_back_after, move
from .receipts import apply_early_receipts
from .starting import finish_campaigns, sending_campaigns

__all__ = ["Dispatcher", "sim_per_real"]

log = logging.getLogger("policy_push.dispatch")
messages_table = CampaignMessageRow.__table__
switches_table = ProviderSwitchRow.__table__


def _is_sqlite(sessions: async_sessionmaker[AsyncSession]) -> bool:
    bind = sessions.kw.get("bind")
    return bind is not None and bind.dialect.name == "sqlite"


def sim_per_real(clock: Clock) -> float:
    """Simulated seconds per real second: provider waits are real, ``not_before`` is simulated."""
    return 1.0 / clock.real_seconds(1.0)


class Dispatcher:
    """Claims and sends due deliveries; one per process (it holds the message cache)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        cipher: PiiCipher,
        router: Router,
        clock: Clock,
        rules: SendRules,
        worker_id: str,
        batch_size: int = 500,
        concurrency: int = 4,
        rng: random.Random | None = None,
    ) -> None:
        self.sessions = sessions
        self.cipher = cipher
        self.router = router
        self.clock = clock
        self.rules = rules
        self.worker_id = worker_id
        self.batch_size = batch_size
        self.concurrency = concurrency
        self._rng = rng or random.Random()
        self._bodies: dict[tuple[str, str], Mapping[str, Any] | None] = {}
        # SQLite has one writer: the lanes take turns here rather than queueing in SQLite's busy
        # handler, whose timeout a lane held up by another's provider work could otherwise exceed
        self._writes: asyncio.Lock | contextlib.nullcontext[None] = (
            asyncio.Lock() if _is_sqlite(sessions) else contextlib.nullcontext()
        )
        #: deliveries this dispatcher claimed / sent (accepted) since it was made, for reports
        self.claimed = 0
        self.accepted = 0
        #: how many of ``router.switches`` have been handed to a results transaction
        self._switches_seen = 0

    # ---- the loop -----------------------------------------------------------------------------

    async def send_due(self, *, budget_s: float | None = None) -> int:
        """Claim and send until nothing is due (or ``budget_s`` real seconds pass); returns rows claimed.

        ``concurrency`` lanes run at once: while one waits for a provider, another claims or records.
        """
        deadline = None if budget_s is None else time.monotonic() + budget_s
        total = 0

        async def lane() -> None:
            nonlocal total
            while deadline is None or time.monotonic() < deadline:
                n = await self.run_batch()
                total += n
                if n < self.batch_size:
                    return

        await asyncio.gather(*(lane() for _ in range(self.concurrency)))
        await self.finish()
        return total

    async def finish(self) -> list[str]:
        """Move campaigns with nothing left to send to ``done``."""
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            await begin_write(s)
            return await finish_campaigns(s, await sending_campaigns(s), now=now, rules=self.rules)

    async def run_batch(self) -> int:
        """One claim -> send -> record round; returns the number of rows claimed.

        Each channel's results are recorded as soon as that provider answers, so a slow provider
        does not hold back the others' records (a receipt can only be matched once its send is).
        """
        # where each kind goes is decided before the claim, so the claimed rows record it
        providers = {kind: self.router.active(kind).name for kind in self.router.kinds}
        async with self._writes:
            batch = await claim_batch(
                self.sessions, self.cipher, now=self.clock.now(), worker_id=self.worker_id, limit=self.batch_size,
                rules=self.rules, providers=providers,
            )
        if not batch:
            return 0
        self.claimed += len(batch)
        ready, by_kind = await self._prepare(batch)
        by_id = {r.id: r for r in batch}

        async def kind_round(kind: str, msgs: list[OutboundMessage]) -> None:
            # the provider call: no database session is open here
            results = await self.router.send(kind, msgs, provider=providers[kind])
            # the record takes the switches this send (or any since the last record) caused
            await self._record([by_id[r.delivery_id] for r in results], {r.delivery_id: r for r in results})

        jobs = [kind_round(kind, msgs) for kind, msgs in by_kind.items()]
        if ready:
            jobs.append(self._record([by_id[i] for i in ready], ready))
        await asyncio.gather(*jobs)
        return len(batch)

    # ---- sending ------------------------------------------------------------------------------

    async def _bodies_for(self, batch: Sequence[Claimed]) -> None:
        missing = {(r.campaign_id, r.channel) for r in batch} - self._bodies.keys()
        if not missing:
            return
        m = messages_table.c
        async with self.sessions() as s:
            for campaign_id in {c for c, _ in missing}:
                found = dict((await s.execute(select(m.channel, m.body).where(m.campaign_id == campaign_id))).all())
                for ch in ("sms", "wechat", "app"):
                    self._bodies[(campaign_id, ch)] = found.get(ch)

    async def _prepare(self, batch: Sequence[Claimed]) -> tuple[dict[str, SendResult], dict[str, list[OutboundMessage]]]:
        """Render each row's message; rows that cannot be sent get their result at once."""
        await self._bodies_for(batch)
        results: dict[str, SendResult] = {}
        by_kind: dict[str, list[OutboundMessage]] = {}
        for row in batch:
            body = self._bodies.get((row.campaign_id, row.channel))
            if row.address is None:
                results[row.id] = SendResult(row.id, Outcome.UNREACHABLE, "", code="NO_ADDRESS", text="no address for this channel")
                continue
            if body is None:
                results[row.id] = SendResult(row.id, Outcome.PERMANENT, "", code="NO_APPROVED_MESSAGE", text="no approved message for this channel")
                continue
            try:
                msg = render_for_recipient(body, reasons=row.reasons, delivery_id=row.id, address=row.address)
            except ChannelError as exc:  # breaks a channel rule: never sendable as it is
                results[row.id] = SendResult(row.id, Outcome.PERMANENT, "", code=exc.code, text=str(exc))
                continue
            by_kind.setdefault(row.channel, []).append(msg)
        return results, by_kind

    # ---- recording ----------------------------------------------------------------------------

    def _new_switches(self) -> list[ProviderSwitch]:
        """The router's switches not yet handed to a results transaction (no await: lanes cannot race)."""
        new = self.router.switches[self._switches_seen :]
        self._switches_seen += len(new)
        return list(new)

    def _move_for(self, row: Claimed, res: SendResult, now: datetime) -> Move | None:
        common = {"provider": res.provider or None, "provider_code": res.code or None, "provider_text": (res.text or "")[:500] or None}
        if res.outcome is Outcome.ACCEPTED:
            return Move(row.id, DeliveryStatus.SENT, {**common, "provider_message_id": res.provider_message_id or None, "sent_at": now, "waiting_for": None}, code=res.code)
        if res.outcome is Outcome.PERMANENT:
            return Move(row.id, DeliveryStatus.PERMANENT_FAILURE, common, code=res.code, text=res.text[:500])
        if res.outcome is Outcome.UNREACHABLE:
            return Move(row.id, DeliveryStatus.UNREACHABLE, common, code=res.code, text=res.text[:500])
        if res.maybe_sent and row.channel == "sms":
            return None  # stays sending: settle asks Aliyun (QuerySendDetails) or fails a Tencent row for good
        if not res.provider_fault:  # throttled or out of quota: wait as asked, spend no attempt
            wait_s = max(res.retry_after_s or 0.0, 1.0) * sim_per_real(self.clock)
            return Move(row.id, DeliveryStatus.CREATED, {**common, "not_before": now + timedelta(seconds=wait_s), "waiting_for": Waiting.THROTTLED.value}, code=res.code)
        attempts = row.attempts + 1
        if attempts >= self.rules.max_attempts:
            return Move(row.id, DeliveryStatus.TECHNICAL_FAILURE, {**common, "attempts": attempts}, code=res.code, text=res.text[:500])
        wait_s = max(self.rules.backoff_s(attempts, self._rng.random()), (res.retry_after_s or 0.0) * sim_per_real(self.clock))
        return Move(
            row.id, DeliveryStatus.CREATED,
            {**common, "attempts": attempts, "not_before": now + timedelta(seconds=wait_s), "waiting_for": Waiting.RETRY.value},
            code=res.code, text=res.text[:500],
        )  # fmt: skip

    async def _record(self, batch: Sequence[Claimed], results: Mapping[str, SendResult]) -> None:
        switches = self._new_switches()  # before any await: each switch goes to exactly one record
        now = self.clock.now()
        moves: list[Move] = []
        unsure = []
        for row in batch:
            mv = self._move_for(row, results[row.id], now)
            if mv is None:
                unsure.append(row.id)
            else:
                moves.append(mv)
        by_id = {r.id: r for r in batch}
        async with self._writes, self.sessions() as s, s.begin():
            await begin_write(s)
            applied = await move(s, moves, allowed_from={DeliveryStatus.SENDING}, source=EventSource.DISPATCH, now=now)
            await fall_back_after(s, moves, applied, by_id, now=now, rules=self.rules)
            # receipts that outran this record (stored by the callbacks as early receipts) can
            # match now that the message ids are known; in this transaction, so no receipt tick
            # sees the row sent without them. One that raced this transaction is the settle sweep's.
            message_ids = {
                pmid
                for mv in moves
                if mv.to is DeliveryStatus.SENT and mv.delivery_id in applied
                for pmid in (mv.values.get("provider_message_id"),)
                if pmid
            }
            if message_ids:
                await apply_early_receipts(s, self.cipher, now=now, rules=self.rules, provider_message_ids=message_ids)
            if unsure:
                await s.execute(
                    events.insert(),
                    [{"delivery_id": i, "at": now, "from_status": "sending", "to_status": None,
                      "source": EventSource.DISPATCH.value, "code": "MAYBE_SENT", "text": "left for settle"} for i in unsure],
                )  # fmt: skip
            if switches:
                await s.execute(
                    switches_table.insert(),
                    [{"at": sw.at, "channel": sw.kind, "from_provider": sw.from_provider, "to_provider": sw.to_provider,
                      "reason": sw.reason} for sw in switches],
                )  # fmt: skip
        for sw in switches:
            log.warning("provider switch on %s: %s -> %s: %s", sw.kind, sw.from_provider, sw.to_provider, sw.reason)
        self.accepted += sum(1 for mv in moves if mv.to is DeliveryStatus.SENT and mv.delivery_id in applied)
        lost = len(moves) - len(applied)
        if lost:
            log.warning("%d result(s) not recorded: their rows had left sending (settled by another node?)", lost)
