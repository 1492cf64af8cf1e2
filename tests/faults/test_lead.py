"""A worker killed while ``serve`` holds the scheduler lead: its claim is still settled.

The crash test once left 32 rows ``sending`` 150 s after its chaos. ``serve --no-worker`` (the receipt
callbacks, the match index) runs leader-only ticks of its own (``prepare_pending_campaigns``) but none of
the send pipeline's (``settle_lapsed``, ``pull_reports`` …); when every process competed for one lead and
``serve`` won it, the workers skipped settle as non-leaders and nobody ever settled a dead worker's
claim. Here, deterministically: ``serve --no-worker`` starts first and takes its lead, a worker claims a
campaign behind a slow SMS provider and is killed with SIGKILL mid-send, a second worker starts. The
killed claim must be settled (asked at Aliyun or handed back) and every row sent exactly once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import pytest
from sqlalchemy import func, select, text

from channels.simulators import AliyunSimConfig, AliyunSimulator, Faults, SimulatorSet
from channels.simulators import start_all as _start_all
from policy_push.statuses import DELIVERY_REACHED, DELIVERY_UNSENT, DeliveryStatus, EventSource
from policy_push.storage.campaign_tables import DeliveryEventRow

from ..policy_push.sending.seed import seed_campaign
from .harness import Fleet, free_port, process_env, received, status_counts, with_application_name

N = 40
SETTLE_BOUND_S = 45.0

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def db_kind() -> str:
    return "postgres"  # the lead is a PostgreSQL advisory lock (SQLite: one node, always the leader)


async def _leads(sessions, app_name: str) -> int:  # type: ignore[no-untyped-def]
    """Advisory locks (scheduler leads) held by the processes of this test."""
    async with sessions() as s:
        return int(
            await s.scalar(
                text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = :a"
                ),
                {"a": app_name},
            )
            or 0
        )


async def test_a_claim_of_a_killed_worker_is_settled_while_serve_leads(
    db_settings, session_factory, cipher
) -> None:
    sims = await _start_all(time_factor=0.01)
    await sims.aliyun.close()
    # slow enough that the worker is killed inside its provider call (a batch: SendBatchSms)
    aliyun = AliyunSimulator(AliyunSimConfig(time_factor=0.01), faults=Faults(latency_s=2.0))
    await aliyun.start()
    sims = SimulatorSet(aliyun=aliyun, tencent=sims.tencent, wechat=sims.wechat, jpush=sims.jpush)
    fleet: Fleet | None = None
    try:
        seeded = await seed_campaign(session_factory, cipher, db_settings, n=N, urgent=True, fallbacks=False)
        app_name = f"pp-lead-{uuid.uuid4().hex[:8]}"
        env = process_env(
            db_settings, sims, DATABASE_URL=with_application_name(db_settings.effective_database_url, app_name),
            SMS_PROVIDERS="aliyun", RECEIPT_WAIT_S=0, PROVIDER_TIMEOUT_S=5,
        )  # fmt: skip
        fleet = Fleet(env)
        fleet.add("serve", "serve", "--no-worker", "--port", str(free_port()))
        fleet.add("worker-a", "worker", "--worker-id", "worker-a")
        fleet.add("worker-b", "worker", "--worker-id", "worker-b")

        # serve first: it takes the leads it competes for before any worker exists
        await fleet.start("serve")
        started = time.monotonic()
        while await _leads(session_factory, app_name) < 1:
            assert time.monotonic() - started < 60, fleet.procs["serve"].log[-3000:].decode(errors="replace")
            await asyncio.sleep(0.2)
        serve_leads = await _leads(session_factory, app_name)

        await fleet.start("worker-a")
        while not (await status_counts(session_factory))[DeliveryStatus.SENDING]:
            assert time.monotonic() - started < 90, (
                fleet.procs["worker-a"].log[-3000:].decode(errors="replace")
            )
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # inside the call
        await fleet.kill9("worker-a")
        at_kill = await status_counts(session_factory)
        assert at_kill[DeliveryStatus.SENDING] > 0, (
            f"nothing was claimed at the kill: the test proves nothing {at_kill}"
        )
        await fleet.start("worker-b")

        killed = time.monotonic()
        while True:
            counts = await status_counts(session_factory)
            if not any(counts[st] for st in DELIVERY_UNSENT):
                break
            assert time.monotonic() - killed < SETTLE_BOUND_S, (
                f"rows still unsent {SETTLE_BOUND_S:.0f} s after the kill: {dict(counts)}; "
                f"leads held: {await _leads(session_factory, app_name)} (serve took {serve_leads})\n"
                + fleet.procs["worker-b"].log[-3000:].decode(errors="replace")
            )
            await asyncio.sleep(0.5)
        took = time.monotonic() - killed
        leads = await _leads(session_factory, app_name)
        async with session_factory() as s:
            settled = Counter(dict((await s.execute(
                select(DeliveryEventRow.code, func.count()).where(DeliveryEventRow.source == EventSource.SETTLE)
                .group_by(DeliveryEventRow.code)
            )).all()))  # fmt: skip
        got = received(sims)["sms"]
        twice = sum(1 for n in got.values() if n > 1)
        print(
            f"\nat the kill {dict(at_kill)}; all settled and sent {took:.1f} s after it "
            f"(settle events {dict(settled)}); leads held {leads}; final {dict(counts)}; {len(got)} phones, twice {twice}"
        )
        assert twice == 0
        assert len(got) == N == len(seeded.recipients)
        assert sum(counts[st] for st in DELIVERY_REACHED) == N, counts
        assert sum(settled.values()), "settle took nothing from the killed claim: the test proves nothing"
        assert leads == serve_leads + 1, "serve keeps its lead, the worker holds the send pipeline's"
    finally:
        if fleet is not None:
            await fleet.stop_all()
        await sims.close()
