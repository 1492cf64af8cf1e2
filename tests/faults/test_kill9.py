"""Fault (a): kill -9 of the dispatching process at random points of a 20,000-recipient campaign.

Each run starts a real ``policy-push worker --exit-when-idle`` process, lets it work for a random
moment and SIGKILLs it: mid-outbox-writing, mid-claim, mid-provider-call, mid-recording. After the
kills, one more worker runs to the end. The simulators' own records must show every recipient
exactly once on its channel: 0 lost, 0 duplicates. SMS is settled by QuerySendDetails against the
simulator's records (SMS sends are not idempotent); WeChat resends carry the same client_msg_id.
JPush is left out here: it has no way to ask what was sent and does not deduplicate, so a resend
after a crash can repeat a push (documented in policy_push/workflow/settle.py).
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from channels.simulators import start_all

from ..policy_push.sending.seed import address, by_share, seed_campaign
from .harness import finish, kill9, received, start_worker, status_counts, worker_env

N = 20_000
KILLS = 6

pytestmark = pytest.mark.slow


async def test_kill_minus_nine_loses_nothing_and_sends_nothing_twice(db_settings, session_factory, cipher) -> None:
    sims = await start_all(time_factor=0.001)
    try:
        seeded = await seed_campaign(
            session_factory, cipher, db_settings, n=N, channel_of=by_share({"sms": 0.6, "wechat": 0.4}), fallbacks=False
        )
        env = worker_env(db_settings, sims)
        rng = random.Random(20_000)
        started = time.monotonic()
        kill_points = []
        for k in range(KILLS):
            before = sum(len(v) for v in sims.records.values())
            t0 = time.monotonic()
            proc = await start_worker(env, f"victim-{k}")
            if k % 2:
                # a blind moment: start-up, writing the outbox, claiming or sending
                await asyncio.sleep(rng.uniform(0.5, 3.0))
            else:
                # surely mid-send: wait for the first messages of this worker, then a little more
                while sum(len(v) for v in sims.records.values()) == before and time.monotonic() - t0 < 20:
                    await asyncio.sleep(0.02)
                await asyncio.sleep(rng.uniform(0.0, 0.5))
            delay = time.monotonic() - t0
            await kill9(proc)
            left = await status_counts(session_factory)
            kill_points.append((round(delay, 2), sum(len(v) for v in sims.records.values()), left["sending"]))
        counts_after_kills = await status_counts(session_factory)
        await finish(await start_worker(env, "survivor"))
        elapsed = time.monotonic() - started

        counts = await status_counts(session_factory)
        # settled SMS may already read "delivered" (QuerySendDetails saw the receipt): both are final-for-us
        assert set(counts) <= {"sent", "delivered"} and sum(counts.values()) == N, (counts, counts_after_kills, kill_points)
        assert sum(p[2] for p in kill_points) > 0, f"no kill landed mid-send; the settle path went untested: {kill_points}"

        got = received(sims)
        want = {"sms": set(), "wechat": set()}
        for pid, (channel, _) in seeded.recipients.items():
            want[channel].add(address(channel, seeded.index_of(pid)))
        for channel in ("sms", "wechat"):
            dupes = {a: n for a, n in got[channel].items() if n > 1}
            assert not dupes, f"{len(dupes)} {channel} recipients got duplicates"
            assert set(got[channel]) == want[channel], f"{channel}: {len(want[channel] - set(got[channel]))} lost"
        print(f"kill -9 x{KILLS} at (s, messages so far, rows left sending) {kill_points}; after the kills {dict(counts_after_kills)}; "
              f"total {elapsed:.1f}s")  # fmt: skip
    finally:
        await sims.close()
