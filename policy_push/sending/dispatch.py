"""Sending: claim a batch under a lease, call the providers, record the results; keep the lease alive.

This is the only module of the application that calls providers (``Router.send``). Per batch:

1. the provider of each channel kind is chosen (``router.active``, which may fail over or probe the
   primary), then the batch is claimed (``sending.claims``) with that provider recorded on its rows
   and a lease on the database's clock, and the claim is committed;
2. each channel's rows go out in slices of about ``SLICE_S`` at the provider's pace (``Router.pace``);
   right before each slice's call the claim is confirmed: its lease renewed and its rows marked
   ``unsure_since`` (a row that lapses without that mark was certainly never sent, so a crash leaves at
   most a slice in doubt); rows no longer ours (settled by the leader after our lease lapsed) are not
   sent. No session is open during the call;
3. the results are recorded in one write transaction (``sending.recording``), each move guarded by the claim
   (``sending.outcomes`` says which move): a failure for good starts the fallback, receipts that
   outran the record are applied, the router's provider switches are stored.

While anything is in flight a heartbeat (``sending.leases``) renews the leases every quarter of ``lease_s``. A batch whose
lease could not be renewed for more than half of ``lease_s`` (the database unreachable) has its provider
calls cancelled before the lease can lapse: a worker that cannot prove its claim stops sending, so the
settle tick, which takes over lapsed rows, never races a call still on its way.

A result whose record fails (a dropped connection) is kept in memory and recorded again by the next
round or heartbeat, never thrown away; rows claimed but not sent go back to ``created``. A result that
may have gone out (``maybe_sent``, after the router asked the provider) is left to lapse: settle decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import OutboundMessage, ProviderSwitch, Router, SendResult
from policy_push.logs import describe
from policy_push.security import PiiCipher
from policy_push.security.links import LinkSigner
from policy_push.statuses import CampaignState, DeliveryStatus
from policy_push.storage import campaigns as campaign_store
from policy_push.storage.sql import begin_write
from scheduler import Clock

from . import claims
from .claims import Claim, Outgoing
from .leases import DispatchStats, LeaseKeeper, _Held, _Unrecorded
from .recording import moves_after_send, record_results
from .rendering import Renderer
from .rules import SendRules
from .starting import finish_campaigns

__all__ = ["DispatchStats", "Dispatcher", "sim_per_real"]

log = logging.getLogger("policy_push.dispatch")

#: seconds of sending at the provider's pace per confirmed slice: what a crash can leave unknown
SLICE_S = 2.0


def sim_per_real(clock: Clock) -> float:
    """Simulated seconds per real second: provider waits are real, ``not_before`` is simulated."""
    return 1.0 / clock.real_seconds(1.0)


class Dispatcher(LeaseKeeper):
    """Claims and sends due deliveries; one per process (it holds the message cache and the leases)."""

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
        links: LinkSigner | None = None,
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
        # the links of WeChat and app messages are signed (security.links); tests may leave the settings out
        self._renderer = Renderer(sessions, links or LinkSigner(cipher.link_key, dt.timedelta(days=90)))
        bind = sessions.kw.get("bind")
        # SQLite has one writer: the lanes take turns here rather than queueing in SQLite's busy
        # handler, whose timeout a lane held up by another's provider work could otherwise exceed
        self._writes: asyncio.Lock | contextlib.nullcontext[None] = (
            asyncio.Lock() if bind is not None and bind.dialect.name == "sqlite" else contextlib.nullcontext()
        )
        self._held: dict[str, _Held] = {}
        self._unrecorded: list[_Unrecorded] = []
        self._unreleased: dict[str, set[str]] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self._stop_beating = asyncio.Event()
        #: how many of ``router.switches`` have been handed to a results transaction
        self._switches_seen = 0
        #: set by a graceful stop: no new claims, no further slices; what is held is recorded or handed back
        self.stopping = False
        self.stats = DispatchStats()


    # ---- the loop -----------------------------------------------------------------------------

    async def send_due(self, *, budget_s: float | None = None) -> int:
        """Claim and send until nothing is due (or ``budget_s`` real seconds pass); returns rows claimed.
        ``concurrency`` lanes run at once: while one waits for a provider, another claims or records."""
        deadline = None if budget_s is None else time.monotonic() + budget_s
        total = 0

        async def lane() -> None:
            nonlocal total
            while (deadline is None or time.monotonic() < deadline) and not self.stopping:
                try:
                    n = await self.run_batch()
                except Exception as exc:  # a database hiccup: this lane stops, the next tick goes on
                    log.warning("dispatch lane stopped: %s", describe(exc), exc_info=log.isEnabledFor(logging.DEBUG))
                    return
                total += n
                if n < self.batch_size:
                    return

        await asyncio.gather(*(lane() for _ in range(self.concurrency)))
        await self.finish()
        return total

    async def finish(self) -> list[str]:
        """Move campaigns with nothing left to send to ``done``."""
        now = self.clock.now()
        async with self._writes, self.sessions() as s, s.begin():
            await begin_write(s)
            return await finish_campaigns(s, await campaign_store.ids_in_state(s, CampaignState.SENDING), now=now, rules=self.rules)

    async def run_batch(self) -> int:
        """One claim -> send -> record round; returns the number of rows claimed.

        Each channel's results are recorded as soon as that provider answers, so a slow provider does
        not hold back the others' records (a receipt can only be matched once its send is)."""
        await self.flush()
        providers = {kind: self.router.active(kind).name for kind in self.router.kinds}
        async with self._writes:
            claim = await claims.claim(
                self.sessions, self.cipher, now=self.clock.now(), worker=self.worker_id, limit=self.batch_size,
                rules=self.rules, providers=providers,
            )  # fmt: skip
        if claim is None:
            return 0
        held = _Held({o.row.id for o in claim.rows}, time.monotonic())
        self._held[claim.id] = held
        self.stats.claimed += len(claim.rows)
        try:
            ready, by_kind = await self._renderer.prepare(claim.rows)
            jobs = [self._send_kind(claim, held, kind, msgs, providers[kind]) for kind, msgs in by_kind.items()]
            if ready:
                by_id = {o.row.id: o for o in claim.rows}
                jobs.append(self._record_or_keep(claim.id, [by_id[i] for i in ready], ready))
            await asyncio.gather(*jobs)
        finally:
            self._forget_if_done(claim.id)
        return len(claim.rows)

    async def _send_kind(self, claim: Claim, held: _Held, kind: str, msgs: list[OutboundMessage], provider: str) -> None:
        """Send one channel's messages of a claim in slices of about ``SLICE_S`` at the provider's pace, each
        confirmed right before its call; each slice's results are recorded as soon as they come."""
        pace = self.router.pace(kind, provider)
        size = len(msgs) if not pace else max(1, int(pace * SLICE_S))
        records: list[asyncio.Task[None]] = []
        by_id = {o.row.id: o for o in claim.rows}
        try:
            for start in range(0, len(msgs), size):
                if self.stopping and start:  # stopping: the slices not begun stay unsent and are handed back
                    break
                results = await self._call(claim, held, kind, msgs[start : start + size], provider)
                if results:
                    rows = [by_id[r.delivery_id] for r in results]
                    records.append(asyncio.ensure_future(self._record_or_keep(claim.id, rows, {r.delivery_id: r for r in results})))
        finally:
            await asyncio.gather(*records)

    async def _call(
        self, claim: Claim, held: _Held, kind: str, msgs: list[OutboundMessage], provider: str
    ) -> list[SendResult] | None:
        """Confirm the claim of ``msgs`` (renewing the lease, marking them unsure from now), then send the
        ones still ours. None when nothing was sent (or the call was fenced: settle decides)."""
        ids = {m.delivery_id for m in msgs}
        try:
            started = time.monotonic()
            async with self._writes:
                mine = await claims.renew(self.sessions, {claim.id: ids}, lease_s=self.rules.lease_s, calling=True)
            held.renewed = max(held.renewed, started)
        except Exception as exc:  # not confirmed: not sent; handed back once the database answers
            log.warning("claim %s: could not confirm before sending (%s); not sent", claim.id, describe(exc))
            self._unreleased.setdefault(claim.id, set()).update(ids)
            return None
        self._drop(claim.id, ids - mine, why="lease lost")
        msgs = [m for m in msgs if m.delivery_id in mine]
        if not msgs:
            return None
        held.called.update(m.delivery_id for m in msgs)
        call = asyncio.ensure_future(self.router.send(kind, msgs, provider=provider))
        held.calls.add(call)
        try:
            return await call
        except asyncio.CancelledError:
            if not _cancelling():
                # fenced: the outcome is unknown; the rows are left to lapse and settle decides
                log.warning("claim %s: %d %s message(s) abandoned mid-call", claim.id, len(msgs), kind)
                self._drop(claim.id, {m.delivery_id for m in msgs}, why="fenced")
                return None
            raise
        finally:
            held.calls.discard(call)

    # ---- recording ----------------------------------------------------------------------------

    def _new_switches(self) -> list[ProviderSwitch]:
        """The router's switches not yet handed to a results transaction (no await: lanes cannot race)."""
        new = self.router.switches[self._switches_seen :]
        self._switches_seen += len(new)
        return list(new)

    async def _record_or_keep(self, claim_id: str, rows: list[Outgoing], results: dict[str, SendResult]) -> None:
        switches = self._new_switches()  # before any await: each switch goes to exactly one record
        if not await self._record(claim_id, rows, results, switches):
            self._unrecorded.append(_Unrecorded(claim_id, rows, results, switches))

    async def _record(
        self, claim_id: str, rows: list[Outgoing], results: Mapping[str, SendResult], switches: list[ProviderSwitch],
        *, retry: bool = False,
    ) -> bool:  # fmt: skip
        """Record one provider's results in one transaction; False (nothing lost) when the database fails."""
        now = self.clock.now()
        moves, unsure = moves_after_send(
            [o.row for o in rows], results, now=now, rules=self.rules, rng=self._rng, sim_per_real=sim_per_real(self.clock)
        )
        ids = {o.row.id for o in rows}
        h = self._held.get(claim_id)
        if h is not None:
            h.recording |= ids
        try:
            async with self._writes, self.sessions() as s, s.begin():
                applied = await record_results(s, [o.row for o in rows], moves, unsure, switches, now=now, rules=self.rules)
        except Exception as exc:  # the results stay in memory (their leases renewed) and are recorded again
            log.warning("claim %s: could not record %d result(s) (%s); keeping them to record again",
                        claim_id, len(rows), describe(exc))  # fmt: skip
            return False
        finally:
            if h is not None:
                h.recording -= ids
        for sw in switches:
            log.warning("provider switch on %s: %s -> %s: %s", sw.kind, sw.from_provider, sw.to_provider, sw.reason)
        self.stats.accepted += sum(1 for mv in moves if mv.to is DeliveryStatus.SENT and mv.delivery_id in applied)
        self.stats.recorded_late += len(moves) if retry else 0
        self._drop(claim_id, ids, why="recorded")
        self._forget_if_done(claim_id)
        lost = len(moves) - len(applied)
        if lost:
            log.warning("claim %s: %d result(s) not recorded: their rows had left this claim (settled elsewhere)", claim_id, lost)
        return True


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
