"""No kill, default settings, a slow provider: a claim that outlives its lease is still its worker's.

Issue 8's second case: nothing crashed, yet 1,000 of 2,463 app recipients got their push twice on main,
because a claimed batch waited behind JPush's rate longer than the stuck-sending timeout and settle
took the rows from the live worker that was still sending them. Here one ``policy-push worker`` (normal
scheduler mode, default settings: 30 s lease, 500-row batches, 10 JPush requests a second) sends to 450
app users through a JPush account without batch single push (error 2006: one request per person, since
every push carries its own link) that answers in half a second. A claimed batch holds its last rows
for about 45 s, past the lease and a settle tick (every 10 s); its worker keeps renewing the lease (each
slice's confirmation right before its call, the heartbeat in between), so settle never touches a row:
0 duplicates, 0 settle events, every push sent once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from channels.simulators import Faults, JPushSimConfig, JPushSimulator, SimulatorSet
from channels.simulators import start_all as _start_all
from policy_push.statuses import DELIVERY_UNSENT, DeliveryStatus, EventSource
from policy_push.storage.campaign_tables import DeliveryEventRow, DeliveryRow

from ..policy_push.sending.seed import by_share, seed_campaign
from .harness import Fleet, process_env, received, status_counts

N = 500
APP_SHARE = 0.9
LEASE_S = 30.0  # the default claim_lease_s

pytestmark = pytest.mark.slow


@pytest.fixture
def db_kind() -> str:
    return "sqlite"  # the default database too; the crash test runs the same leases on PostgreSQL


async def _sims() -> SimulatorSet:
    sims = await _start_all(time_factor=0.001)
    await sims.jpush.close()
    slow = JPushSimulator(JPushSimConfig(batch_single=False), faults=Faults(latency_s=0.5))
    await slow.start()
    return SimulatorSet(aliyun=sims.aliyun, tencent=sims.tencent, wechat=sims.wechat, jpush=slow)


async def test_a_slow_provider_with_default_settings_sends_nothing_twice(
    db_settings, session_factory, cipher
) -> None:
    sims = await _sims()
    fleet: Fleet | None = None
    try:
        seeded = await seed_campaign(
            session_factory, cipher, db_settings, n=N, urgent=True,
            channel_of=by_share({"app": APP_SHARE, "sms": (1 - APP_SHARE) / 2, "wechat": (1 - APP_SHARE) / 2}),
        )  # fmt: skip
        app_users = sum(1 for ch, _ in seeded.recipients.values() if ch == "app")
        fleet = Fleet(process_env(db_settings, sims, defaults=True))
        fleet.add("worker", "worker", "--worker-id", "only")
        started = time.monotonic()
        await fleet.start("worker")
        while True:
            counts = await status_counts(session_factory)
            if sum(counts.values()) >= N and not any(counts[st] for st in DELIVERY_UNSENT):
                break
            assert time.monotonic() - started < 150, (
                counts,
                fleet.procs["worker"].log[-3000:].decode(errors="replace"),
            )
            await asyncio.sleep(0.5)
        elapsed = time.monotonic() - started
        await fleet.stop_all()

        async with session_factory() as s:
            settled = await s.scalar(
                select(func.count())
                .select_from(DeliveryEventRow)
                .where(DeliveryEventRow.source == EventSource.SETTLE)
            )
            rows = (
                await s.execute(
                    select(
                        DeliveryRow.channel, DeliveryRow.status, DeliveryRow.claimed_at, DeliveryRow.sent_at
                    )
                )
            ).all()
        by_channel = Counter((ch, st) for ch, st, _, _ in rows)
        # claimed_at is the claim's start (database clock), sent_at when the provider took it (the worker's)
        longest_claim = max(
            (sent - claimed).total_seconds() for _, _, claimed, sent in rows if sent and claimed
        )
        got = received(sims)
        twice = {ch: sum(1 for n in c.values() if n > 1) for ch, c in got.items()}
        print(
            f"\n{app_users} app users, {len(sims.jpush.request_times)} JPush requests; a claim held {longest_claim:.0f}s "
            f"(lease {LEASE_S:.0f}s); settle events {settled}; sent twice {twice}; rows {by_channel}; {elapsed:.0f}s"
        )
        assert longest_claim > LEASE_S, "no claim outlived the lease: the test proves nothing"
        assert twice == {"sms": 0, "wechat": 0, "app": 0}, twice
        assert settled == 0
        assert by_channel.get(("app", DeliveryStatus.SENT)) == app_users == len(got["app"]), by_channel
    finally:
        if fleet is not None:
            await fleet.stop_all()
        await sims.close()
