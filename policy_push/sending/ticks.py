"""The send pipeline driven by the scheduler: one ``Pipeline`` per process, its ticks, and the lead.

Every tick is short and idempotent and takes its work from our own tables, so a tick that dies half-way
is simply run again:

==========================  ======  ==========================================================
tick                        leader  does
==========================  ======  ==========================================================
dispatch_due_campaigns      no      check the approval, write the delivery rows, campaign -> sending
send_due_deliveries         no      claim -> send -> record until nothing is due (or a budget)
settle_lapsed               yes     rows whose claim lapsed (a dead worker): ask the provider, resend
                                    or give up on the channel; overdue receipts; early receipts
pull_reports                yes     Tencent status and reply queues; JPush delivery reports (``pulls``)
close_expired_policies      yes     past apply_until: cancel unsent rows and open campaigns
deadline_reminders          yes     reminder campaigns N days before apply_until
purge_contact_data          yes     erase contact data past the retention period; prune the change feed
==========================  ======  ==========================================================

Dispatch is safe on any number of nodes (claims use ``FOR UPDATE SKIP LOCKED`` and leases); the
leader-only ticks run on the node holding a PostgreSQL advisory lock (``pg_lock_leader``), or always on
SQLite (single node). Time comes from one ``Clock``: ``ScaledClock(time_factor)`` runs the demo's night of
quiet hours in seconds, and tick intervals given in real seconds are scaled to match. Leases are real
time on the database's clock, whatever the clock of the ticks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import zlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.pool import NullPool

from channels import JPushReports, Receipt, Reply, Router, WechatEvent
from policy_push.campaigns import create_due_reminders
from policy_push.config import Settings
from policy_push.logs import describe
from policy_push.runtime import Runtime
from policy_push.security import PiiCipher
from policy_push.security.links import LinkSigner
from policy_push.statuses import DELIVERY_UNSENT, CampaignState
from policy_push.storage import campaigns as campaign_store
from policy_push.storage import create_engine, delivery_history
from scheduler import (
    AlwaysLeader,
    Clock,
    LeaderElection,
    LockLeader,
    ScaledClock,
    SystemClock,
    Tick,
    TickScheduler,
)

from .closing import CloseReport, close_expired_policies
from .dispatch import Dispatcher
from .inbound import InboundReport, apply_replies, apply_wechat_event
from .providers import build_jpush_reports, build_router
from .pulls import JPushAsked, TencentPulled, pull_jpush_reports, pull_tencent
from .receipts import ReceiptReport, apply_receipts, sweep_early_receipts
from .retention import purge_contact_data
from .rules import SendRules
from .settle import SettleReport, settle_lapsed, sweep_unreceipted
from .starting import start_due_campaigns

__all__ = ["SEND_LEAD", "Pipeline", "build_scheduler", "make_clock", "open_pipeline", "pg_lock_leader", "worker_name"]

#: The lead of the send pipeline's leader-only ticks. A lead of its own: ``serve --no-worker`` has leader-only
#: ticks too (``service.SERVE_LEAD``) but none of these; sharing one lead, it could win it and leave settle,
#: report pulls and closing unrun on every worker (a dead worker's claim then stayed ``sending`` for good).
SEND_LEAD = "send"

log = logging.getLogger("policy_push.ticks")


def make_clock(settings: Settings) -> Clock:
    return ScaledClock(settings.time_factor) if settings.time_factor != 1.0 else SystemClock()


def worker_name(settings: Settings) -> str:
    return settings.worker_id or f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Pipeline:
    """Everything the ticks need; each method is one tick's body (also callable directly)."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    cipher: PiiCipher
    router: Router
    clock: Clock
    rules: SendRules
    dispatcher: Dispatcher
    #: simulated-seconds budget of one send tick; None = until nothing is due
    send_budget_s: float | None = 30.0
    #: JPush's report API (None: no JPush adapter, or no HTTP session to reach it)
    jpush_reports: JPushReports | None = None

    # ---- tick bodies ---------------------------------------------------------------------------

    async def dispatch_due_campaigns(self) -> list[str]:
        return await start_due_campaigns(self.sessions, now=self.clock.now(), rules=self.rules)

    async def send_due_deliveries(self) -> int:
        return await self.dispatcher.send_due(budget_s=self.send_budget_s)

    async def settle_lapsed(self) -> SettleReport:
        report = await settle_lapsed(self.sessions, self.cipher, self.router, clock=self.clock, rules=self.rules)
        await sweep_unreceipted(self.sessions, self.cipher, self.router, clock=self.clock, rules=self.rules)
        # early receipts kept while their send's results transaction was still open, and expiry
        await sweep_early_receipts(self.sessions, now=self.clock.now(), rules=self.rules)
        return report

    async def close_expired_policies(self) -> CloseReport:
        return await close_expired_policies(self.sessions, now=self.clock.now(), tz=self.settings.local_timezone)

    async def deadline_reminders(self) -> list[str]:
        return await create_due_reminders(
            self.sessions, now=self.clock.now(), days_before=self.settings.reminder_days_before, tz=self.settings.local_timezone
        )

    async def purge_contact_data(self) -> int:
        return await purge_contact_data(self.sessions, now=self.clock.now(), retention_days=self.settings.retention_days)

    async def pull_reports(self) -> tuple[TencentPulled, JPushAsked | None]:
        tencent = await pull_tencent(
            self.sessions, self.cipher, self.router, clock=self.clock, rules=self.rules,
            early_cap=self.settings.early_receipt_cap,
        )  # fmt: skip
        if self.jpush_reports is None:
            return tencent, None
        app = await pull_jpush_reports(
            self.sessions, self.cipher, self.jpush_reports, clock=self.clock, rules=self.rules,
            wait_s=self.settings.receipt_pull_s / self.clock.real_seconds(1.0),
            time_to_live_s=self.jpush_reports.config.time_to_live_s,
        )  # fmt: skip
        return tencent, app

    async def receipts(self, receipts: Sequence[Receipt]) -> ReceiptReport:
        """Apply one provider push (the callback views call this)."""
        return await apply_receipts(
            self.sessions, self.cipher, receipts, now=self.clock.now(), rules=self.rules,
            early_cap=self.settings.early_receipt_cap,
        )  # fmt: skip

    async def replies(self, replies: Sequence[Reply]) -> InboundReport:
        """Apply one push of SMS replies (the callback views call this)."""
        return await apply_replies(self.sessions, self.cipher, replies, now=self.clock.now())

    async def wechat_event(self, event: WechatEvent) -> InboundReport:
        """Apply a WeChat follow, unfollow or message (the callback view calls this)."""
        return await apply_wechat_event(self.sessions, self.cipher, event, now=self.clock.now())

    # ---- running without the scheduler (CLI --exit-when-idle, the demo, tests) ---------------

    async def is_idle(self) -> bool:
        """Nothing to send now or later: no due scheduled or sending campaign, no row created or sending
        (waiting rows count as work: they will be due), nothing held in memory."""
        async with self.sessions() as s:
            due = await campaign_store.due_scheduled(s, now=self.clock.now())
            sending = await campaign_store.ids_in_state(s, CampaignState.SENDING)
            counts = await delivery_history.counts(s)
        unsent = sum(n for (_, status), n in counts.items() if status in {st.value for st in DELIVERY_UNSENT})
        return not due and not sending and not unsent and not self.dispatcher.in_flight

    async def run_until_idle(self, *, timeout_s: float = 60.0, poll_s: float = 0.2, leader: bool = True) -> bool:
        """Run the ticks' bodies in a loop until :meth:`is_idle` (True) or ``timeout_s`` real seconds (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            await self.dispatch_due_campaigns()
            sent = await self.dispatcher.send_due(budget_s=self.send_budget_s)
            if leader:
                await self.settle_lapsed()
                await self.close_expired_policies()
                await self.deadline_reminders()
            await self.dispatcher.finish()
            if await self.is_idle():
                return True
            if loop.time() >= deadline:
                return False
            if not sent:
                await asyncio.sleep(poll_s)

    # ---- ticks ---------------------------------------------------------------------------------

    def ticks(self) -> list[Tick]:
        s = self.settings
        factor = 1.0 / self.clock.real_seconds(1.0)
        poll = s.worker_poll_s * factor  # tick intervals are simulated seconds

        def every(sim_s: float) -> float:
            return max(sim_s, poll)

        lead: dict[str, Any] = {"leader_only": True, "lead": SEND_LEAD}

        return [
            Tick("dispatch_due_campaigns", self.dispatch_due_campaigns, poll, timeout_s=300),
            Tick("send_due_deliveries", self.send_due_deliveries, poll, timeout_s=600),
            Tick("settle_lapsed", self.settle_lapsed, max(poll, s.claim_lease_s * factor / 3), **lead, timeout_s=600),
            Tick("pull_reports", self.pull_reports, max(poll, s.receipt_pull_s * factor), **lead, timeout_s=300),
            Tick("close_expired_policies", self.close_expired_policies, every(300), **lead, timeout_s=300),
            Tick("deadline_reminders", self.deadline_reminders, every(300), **lead, timeout_s=300),
            Tick("purge_contact_data", self.purge_contact_data, every(3600), **lead, timeout_s=300),
        ]


@asynccontextmanager
async def open_pipeline(
    runtime: Runtime,
    *,
    clock: Clock | None = None,
    http: aiohttp.ClientSession | None = None,
    router: Router | None = None,
) -> AsyncIterator[Pipeline]:
    """The pipeline of ``runtime``'s settings (providers from ``providers.build_router`` unless given); its
    dispatcher's heartbeat runs while the block does, and what it holds is recorded or handed back on exit."""
    settings = runtime.settings
    clock = clock or make_clock(settings)
    own_http = http is None and router is None
    session = aiohttp.ClientSession() if own_http else http
    dispatcher: Dispatcher | None = None
    try:
        if router is None:
            assert session is not None
            router = build_router(settings, session)
        rules = SendRules.from_settings(settings)
        dispatcher = Dispatcher(
            sessions=runtime.sessions, cipher=runtime.cipher, router=router, clock=clock, rules=rules,
            worker_id=worker_name(settings), batch_size=settings.dispatch_batch_size,
            concurrency=settings.dispatch_concurrency, links=LinkSigner.from_settings(settings, runtime.cipher),
        )  # fmt: skip
        dispatcher.start()
        reports = build_jpush_reports(settings, session, router) if session is not None else None
        yield Pipeline(settings, runtime.sessions, runtime.cipher, router, clock, rules, dispatcher, jpush_reports=reports)
    finally:
        if dispatcher is not None:
            await dispatcher.close()
        if own_http and session is not None:
            await session.close()


def pg_lock_leader(database_url: str, *, lead: str = "", renew_every_s: float = 10.0) -> LockLeader:
    """The scheduler lead ``lead`` as a PostgreSQL session advisory lock on a dedicated connection.

    The connection comes from a private NullPool engine (never the request pool, whose connections move
    between sessions); the key is derived from the database, the schema and the lead's name, so
    deployments sharing a server do not share a lead, and neither do the send pipeline's leader-only
    ticks and ``serve``'s (``SEND_LEAD``, ``service.SERVE_LEAD``). See ``scheduler._leader`` for why every
    check re-verifies.
    """
    url = make_url(database_url)
    own = create_engine(database_url, poolclass=NullPool)
    key = zlib.crc32(f"policy_push.scheduler:{url.database}:{url.query.get('search_path', '')}:{lead}".encode())
    state: dict[str, AsyncConnection | None] = {"conn": None}
    # a check still connecting when the app stops must not park a connection after release closed
    # everything (nothing would close it): the two take turns, and no check runs after release
    turns = asyncio.Lock()
    released = asyncio.Event()
    closing: set[asyncio.Task[None]] = set()

    def drop(conn: AsyncConnection) -> None:
        """Forget a connection a cancelled check left in an unknown state and close it in the background
        (awaiting its close here could hang the check again); closing ends its session and so its lock."""
        state["conn"] = None
        task = asyncio.get_running_loop().create_task(_close(conn, timeout_s=renew_every_s))
        closing.add(task)
        task.add_done_callback(closing.discard)

    async def acquire() -> bool:
        async with turns:
            if released.is_set():
                return False
            return await _acquire()

    async def _acquire() -> bool:
        conn = state["conn"]
        if conn is not None and not conn.closed:
            try:
                held = await conn.scalar(
                    text("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid::bigint = :k "
                         "AND pid = pg_backend_pid() AND granted)"),
                    {"k": key},
                )  # fmt: skip
                await conn.commit()
                if held:
                    return True
            except Exception as exc:
                # the session is gone (terminated, the server restarted), and its lock with it: try again at
                # once on a new connection rather than leaving the lead to nobody until the next check
                log.warning("the scheduler lead's connection failed (%s); taking the lead again on a new one", describe(exc))
                state["conn"] = None
                await _close(conn, timeout_s=renew_every_s)
            except BaseException:
                drop(conn)
                raise
        conn = state["conn"] or await own.connect()
        state["conn"] = conn
        try:
            got = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
            await conn.commit()
        except BaseException:
            # a lock taken by a connection we no longer track would be held by nobody who leads
            drop(conn)
            raise
        if not got:
            state["conn"] = None
            await _close(conn, timeout_s=renew_every_s)
        return got

    async def release() -> None:
        async with turns:
            released.set()
            conn, state["conn"] = state["conn"], None
            if conn is not None:
                try:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                finally:
                    await _close(conn, timeout_s=renew_every_s)
            if closing:
                await asyncio.wait(set(closing))
            await own.dispose()

    return LockLeader(acquire, release, renew_every_s=renew_every_s)


async def _close(conn: AsyncConnection, *, timeout_s: float) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            await conn.close()
    except Exception:  # a broken connection may fail to close; the server drops its lock anyway
        log.debug("closing the lead connection failed", exc_info=True)


def build_scheduler(settings: Settings, ticks: Sequence[Tick], *, clock: Clock) -> TickScheduler:
    """A TickScheduler of ``ticks``: on PostgreSQL one advisory-lock lead per ``Tick.lead`` its leader-only
    ticks name (a process competes only for the leads of ticks it runs); always the leader on SQLite."""
    # APScheduler logs every run at INFO (every second here); the ticks' stats say what matters
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))
    leader: LeaderElection | dict[str, LeaderElection] = AlwaysLeader() if settings.is_sqlite else {
        name: pg_lock_leader(settings.effective_database_url, lead=name, renew_every_s=settings.leader_renew_s)
        for name in sorted({t.lead for t in ticks if t.leader_only})
    }
    # running ticks get most of the stop grace; recording and handing back claims the rest
    return TickScheduler(ticks, leader=leader, clock=clock, shutdown_grace_s=settings.stop_grace_s * 0.6)
