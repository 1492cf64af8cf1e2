"""Fault (b): two dispatching processes on one PostgreSQL share a campaign: 0 duplicates, both work.

Claims are ``FOR UPDATE SKIP LOCKED`` batches, so the two workers never take the same row and
never wait for each other; the simulators' records show each recipient exactly once.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from channels.simulators import start_all
from policy_push.storage.campaign_tables import DeliveryRow

from ..policy_push.sending.seed import address, by_share, seed_campaign
from .harness import finish, received, start_worker, status_counts, worker_env

N = 10_000

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def db_kind() -> str:
    return "postgres"  # several nodes share one database only on PostgreSQL (design.md)


async def test_two_workers_share_a_campaign_without_duplicates(db_settings, session_factory, cipher) -> None:
    sims = await start_all(time_factor=0.001)
    try:
        seeded = await seed_campaign(
            session_factory, cipher, db_settings, n=N, channel_of=by_share({"sms": 0.5, "wechat": 0.3, "app": 0.2})
        )
        # small batches and a modest SMS rate keep both busy long enough to overlap for real
        env = worker_env(db_settings, sims, DISPATCH_BATCH_SIZE=100, DISPATCH_CONCURRENCY=2, SMS_RATE_PER_S=60)
        a, b = await asyncio.gather(start_worker(env, "node-a"), start_worker(env, "node-b"))
        await asyncio.gather(finish(a), finish(b))

        counts = await status_counts(session_factory)
        assert set(counts) <= {"sent", "delivered"} and sum(counts.values()) == N, counts
        got = received(sims)
        for channel in ("sms", "wechat", "app"):
            want = {address(ch, seeded.index_of(pid)) for pid, (ch, _) in seeded.recipients.items() if ch == channel}
            assert not {a for a, n in got[channel].items() if n > 1}, f"{channel}: duplicates"
            assert set(got[channel]) == want, f"{channel}: lost {len(want - set(got[channel]))}"
        async with session_factory() as s:
            by_worker = dict((await s.execute(select(DeliveryRow.claimed_by, func.count()).group_by(DeliveryRow.claimed_by))).all())
        assert set(by_worker) == {"node-a", "node-b"}, by_worker
        assert min(by_worker.values()) > N // 10, by_worker  # both did a real share of the work
        print(f"claims per worker: {by_worker}")
    finally:
        await sims.close()
