"""The send pipeline driven by the scheduler: one ``Pipeline`` per process, its ticks, the lead.

Every tick is short and idempotent and takes its work from our own tables (design.md), so a tick
that dies half-way is simply run again:

==========================  ======  ==========================================================
tick                        leader  does
==========================  ======  ==========================================================
dispatch_due_campaigns      no      verify the approval, write the outbox rows, campaign -> sending
send_due_deliveries         no      claim -> send -> record until nothing is due (or a budget)
settle_stuck                yes     rows stuck in ``sending`` (a crashed worker): ask / resend;
                                    early receipts that raced their send; expire old ones
close_expired_policies      yes     past apply_until: cancel unsent rows and open campaigns
deadline_reminders          yes     reminder campaigns N days before apply_until
purge_contact_data          yes     erase contact data past the retention period
prepare_pending_campaigns   yes     drafts for policies changed without one (campaign workflow)
==========================  ======  ==========================================================

Dispatch is safe on any number of nodes (claims use ``FOR UPDATE SKIP LOCKED``); the leader-only
ticks run on the node holding a PostgreSQL advisory lock (``pg_lock_leader``), or always on SQLite
(single node). Time comes from one ``Clock``: ``ScaledClock(time_factor)`` runs the demo's night of
quiet hours in seconds, and tick intervals given in real seconds are scaled to match.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import zlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import func, or_, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.pool import NullPool

from channels import Receipt, Router
from policy_push.config import Settings
from policy_push.runtime import Runtime
from policy_push.security import PiiCipher
from policy_push.statuses import CampaignState, DeliveryStatus
from policy_push.storage import create_engine
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
from .outbox import SendRules, campaigns, deliveries
from .receipts import ReceiptReport, apply_receipts, sweep_early_receipts
from .reminders import create_due_reminders
from .retention import purge_contact_data
from .settle import SettleReport, settle_stuck, sweep_unreceipted_sms
from .starting import Verify, resolve_verify, start_due_campaigns

__all__ = ["Pipeline", "build_scheduler", "make_clock", "open_pipeline", "pg_lock_leader", "worker_name"]

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
    verify: Verify
    #: the match service, for prepare_pending_campaigns (no such tick without it)
    matcher: Any = None
    #: simulated-seconds budget of one send tick; None = until nothing is due
    send_budget_s: float | None = 30.0
    stats: dict[str, int] = field(default_factory=dict)

    # ---- tick bodies ---------------------------------------------------------------------------

    async def dispatch_due_campaigns(self) -> list[str]:
        return await start_due_campaigns(self.sessions, now=self.clock.now(), rules=self.rules, verify=self.verify)

    async def send_due_deliveries(self) -> int:
        return await self.dispatcher.send_due(budget_s=self.send_budget_s)

    async def settle_stuck(self) -> SettleReport:
        report = await settle_stuck(self.sessions, self.cipher, self.router, clock=self.clock, rules=self.rules)
        await sweep_unreceipted_sms(self.sessions, self.cipher, self.router, clock=self.clock, rules=self.rules)
        # early receipts stored while their send's results transaction was still open, and expiry
        await sweep_early_receipts(self.sessions, self.cipher, now=self.clock.now(), rules=self.rules)
        return report

    async def close_expired_policies(self) -> CloseReport:
        return await close_expired_policies(self.sessions, now=self.clock.now(), tz=self.settings.local_timezone)

    async def deadline_reminders(self) -> list[str]:
        return await create_due_reminders(
            self.sessions, now=self.clock.now(), days_before=self.settings.reminder_days_before, tz=self.settings.local_timezone
        )

    async def purge_contact_data(self) -> int:
        return await purge_contact_data(self.sessions, now=self.clock.now(), retention_days=self.settings.retention_days)

    async def prepare_pending_campaigns(self) -> int:
        from .campaigns import prepare_pending_campaigns

        on = self.clock.now().astimezone(ZoneInfo(self.settings.local_timezone)).date()
        return len(await prepare_pending_campaigns(self.sessions, self.matcher, settings=self.settings, on=on))

    async def receipts(self, receipts: Sequence[Receipt]) -> ReceiptReport:
        """Apply one provider push (the callback views call this)."""
        return await apply_receipts(self.sessions, self.cipher, receipts, now=self.clock.now(), rules=self.rules)

    # ---- running without the scheduler (CLI --exit-when-idle, the demo, tests) ---------------

    async def is_idle(self) -> bool:
        """Nothing to send now or later: no due scheduled campaign, no sending campaign, no row
        created or sending (waiting rows count as work: they will be due)."""
        now = self.clock.now()
        c, d = campaigns.c, deliveries.c
        async with self.sessions() as s:
            due = await s.scalar(
                select(func.count()).select_from(campaigns).where(
                    or_(c.state == CampaignState.SENDING.value,
                        (c.state == CampaignState.SCHEDULED.value) & or_(c.send_at.is_(None), c.send_at <= now)))
            )  # fmt: skip
            rows = await s.scalar(
                select(func.count())
                .select_from(deliveries)
                .where(d.status.in_([DeliveryStatus.CREATED.value, DeliveryStatus.SENDING.value]))
            )
        return not due and not rows

    async def run_until_idle(self, *, timeout_s: float = 60.0, poll_s: float = 0.2, leader: bool = True) -> bool:
        """Run the ticks' bodies in a loop until :meth:`is_idle` (True) or ``timeout_s`` real seconds (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            await self.dispatch_due_campaigns()
            sent = await self.dispatcher.send_due(budget_s=self.send_budget_s)
            if leader:
                await self.settle_stuck()
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

        ticks = [
            Tick("dispatch_due_campaigns", self.dispatch_due_campaigns, poll, timeout_s=300),
            Tick("send_due_deliveries", self.send_due_deliveries, poll, timeout_s=600),
            Tick("settle_stuck", self.settle_stuck, max(poll, s.stuck_sending_timeout_s * factor / 4), leader_only=True, timeout_s=600),
            Tick("close_expired_policies", self.close_expired_policies, every(300), leader_only=True, timeout_s=300),
            Tick("deadline_reminders", self.deadline_reminders, every(300), leader_only=True, timeout_s=300),
            Tick("purge_contact_data", self.purge_contact_data, every(3600), leader_only=True, timeout_s=300),
        ]
        if self.matcher is not None:
            ticks.append(Tick("prepare_pending_campaigns", self.prepare_pending_campaigns, every(60), leader_only=True, timeout_s=600))
        return ticks


@asynccontextmanager
async def open_pipeline(
    runtime: Runtime,
    *,
    clock: Clock | None = None,
    http: aiohttp.ClientSession | None = None,
    router: Router | None = None,
    matcher: Any = None,
    verify: Verify | None = None,
) -> AsyncIterator[Pipeline]:
    """The pipeline of ``runtime``'s settings (providers from ``providers.build_router`` unless given)."""
    from .providers import build_router

    settings = runtime.settings
    clock = clock or make_clock(settings)
    own_http = http is None and router is None
    session = aiohttp.ClientSession() if own_http else http
    try:
        if router is None:
            assert session is not None
            router = build_router(settings, session)
        rules = SendRules.from_settings(settings)
        dispatcher = Dispatcher(
            sessions=runtime.sessions, cipher=runtime.cipher, router=router, clock=clock, rules=rules,
            worker_id=worker_name(settings), batch_size=settings.dispatch_batch_size,
            concurrency=settings.dispatch_concurrency,
        )  # fmt: skip
        yield Pipeline(
            settings, runtime.sessions, runtime.cipher, router, clock, rules, dispatcher,
            verify or resolve_verify(), matcher,
        )  # fmt: skip
    finally:
        if own_http and session is not None:
            await session.close()


def pg_lock_leader(database_url: str, *, renew_every_s: float = 10.0) -> LockLeader:
    """The scheduler lead as a PostgreSQL session advisory lock on a dedicated connection.

    The connection comes from a private NullPool engine (never the request pool, whose connections
    move between sessions); the key is derived from the database and schema, so deployments sharing
    a server do not share a lead. See ``scheduler._leader`` for why every check re-verifies.
    """
    url = make_url(database_url)
    own = create_engine(database_url, poolclass=NullPool)
    key = zlib.crc32(f"policy_push.scheduler:{url.database}:{url.query.get('search_path', '')}".encode())
    state: dict[str, AsyncConnection | None] = {"conn": None}

    async def acquire() -> bool:
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
            except Exception:
                state["conn"] = None
                await _close(conn)
                raise
        conn = state["conn"] or await own.connect()
        state["conn"] = conn
        got = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
        await conn.commit()
        if not got:
            state["conn"] = None
            await _close(conn)
        return got

    async def release() -> None:
        conn, state["conn"] = state["conn"], None
        if conn is not None:
            try:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            finally:
                await _close(conn)
        await own.dispose()

    return LockLeader(acquire, release, renew_every_s=renew_every_s)


async def _close(conn: AsyncConnection) -> None:
    try:
        await conn.close()
    except Exception:  # a broken connection may fail to close; the server drops its lock anyway
        log.debug("closing the lead connection failed", exc_info=True)


def build_scheduler(pipeline: Pipeline) -> TickScheduler:
    """A TickScheduler of the pipeline's ticks: advisory-lock leader on PostgreSQL, always on SQLite."""
    settings = pipeline.settings
    # APScheduler logs every run at INFO (every second here); the ticks' stats say what matters
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))
    leader: LeaderElection = AlwaysLeader() if settings.is_sqlite else pg_lock_leader(settings.effective_database_url)
    return TickScheduler(pipeline.ticks(), leader=leader, clock=pipeline.clock)
