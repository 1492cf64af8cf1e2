"""The ticks' wiring: names and lead, the PostgreSQL advisory lock, the scheduler end to end, the worker CLI."""

from __future__ import annotations

import asyncio
import sys

import pytest
from sqlalchemy import func, select

from policy_push.refdata import load_reference_data
from policy_push.runtime import Runtime
from policy_push.sending import build_scheduler, open_pipeline
from policy_push.sending.providers import build_router
from policy_push.sending.ticks import pg_lock_leader
from policy_push.storage.campaign_tables import DeliveryRow
from scheduler import AlwaysLeader, LockLeader, SystemClock

from .seed import seed_campaign


async def test_ticks_and_their_lead(dispatch_settings, engine, session_factory, cipher, http) -> None:
    runtime = Runtime(dispatch_settings, engine, session_factory, cipher, load_reference_data())
    async with open_pipeline(runtime, clock=SystemClock(), router=build_router(dispatch_settings, http)) as p:
        ticks = {t.name: t.leader_only for t in p.ticks()}
        assert ticks == {
            "dispatch_due_campaigns": False, "send_due_deliveries": False, "settle_lapsed": True, "pull_reports": True,
            "close_expired_policies": True, "deadline_reminders": True, "purge_contact_data": True,
        }  # fmt: skip
        scheduler = build_scheduler(dispatch_settings, p.ticks(), clock=p.clock)
        assert isinstance(scheduler._leader, AlwaysLeader if dispatch_settings.is_sqlite else LockLeader)


async def test_the_scheduler_sends_a_campaign(dispatch_settings, engine, session_factory, cipher, http) -> None:
    settings = dispatch_settings.model_copy(update={"worker_poll_s": 0.1})
    await seed_campaign(session_factory, cipher, settings, n=50)
    runtime = Runtime(settings, engine, session_factory, cipher, load_reference_data())
    async with open_pipeline(runtime, clock=SystemClock(), router=build_router(settings, http)) as p:
        scheduler = build_scheduler(settings, p.ticks(), clock=p.clock)
        scheduler.start()
        try:
            for _ in range(100):
                await asyncio.sleep(0.1)
                async with session_factory() as s:
                    sent = await s.scalar(select(func.count()).select_from(DeliveryRow).where(DeliveryRow.status == "sent"))
                if sent == 50:
                    break
            assert sent == 50
        finally:
            await scheduler.shutdown()


@pytest.mark.postgres
@pytest.mark.parametrize("db_kind", ["postgres"])
async def test_one_node_holds_the_advisory_lock(db_url) -> None:
    a, b = pg_lock_leader(db_url), pg_lock_leader(db_url)
    try:
        assert await a.try_acquire() is True
        assert await a.try_acquire() is True  # re-verified, not re-taken
        assert await b.try_acquire() is False
        await a.release()
        assert await b.try_acquire() is True
    finally:
        await a.release()
        await b.release()


async def test_worker_cli_exits_when_idle(db_settings) -> None:
    # a key of its own: the public demo key is for `policy-push demo` only (issue 10)
    env = {"POLICY_PUSH_DATABASE_URL": db_settings.effective_database_url,
           "POLICY_PUSH_PII_KEY": db_settings.pii_key.get_secret_value(),
           "POLICY_PUSH_LOG_LEVEL": "WARNING"}  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "policy_push", "worker", "--exit-when-idle", "--worker-id", "cli-test",
        env={**env, "PATH": "/usr/bin:/bin"}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode()
    assert "worker cli-test: claimed 0, accepted 0, idle=True" in out.decode()
