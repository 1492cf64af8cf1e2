"""The ticks' wiring: names and lead, the PostgreSQL advisory lock, the scheduler end to end, the worker CLI."""

from __future__ import annotations

import asyncio
import sys
import uuid

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from policy_push.refdata import load_reference_data
from policy_push.runtime import Runtime
from policy_push.sending import build_scheduler, open_pipeline
from policy_push.sending.providers import build_router
from policy_push.sending.ticks import SEND_LEAD, pg_lock_leader
from policy_push.service import SERVE_LEAD
from policy_push.storage import create_engine
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
        assert {t.lead for t in p.ticks() if t.leader_only} == {SEND_LEAD}
        scheduler = build_scheduler(dispatch_settings, p.ticks(), clock=p.clock)
        if dispatch_settings.is_sqlite:
            assert list(scheduler._leads) == [""] and isinstance(scheduler._leads[""], AlwaysLeader)
        else:  # the send pipeline's own lead: a `serve --no-worker` never takes it (tests/faults/test_lead.py)
            assert list(scheduler._leads) == [SEND_LEAD] and isinstance(scheduler._leads[SEND_LEAD], LockLeader)


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


@pytest.mark.postgres
@pytest.mark.parametrize("db_kind", ["postgres"])
async def test_serve_and_the_send_pipeline_lead_apart(db_url) -> None:
    # serve --no-worker (drafting, intake) and the workers (settle, pulls, closing) run different leader-only
    # ticks: holding serve's lead must not keep a worker from the send pipeline's
    serve, worker, other_worker = (
        pg_lock_leader(db_url, lead=SERVE_LEAD), pg_lock_leader(db_url, lead=SEND_LEAD), pg_lock_leader(db_url, lead=SEND_LEAD)
    )  # fmt: skip
    try:
        assert await serve.try_acquire() is True
        assert await worker.try_acquire() is True
        assert await other_worker.try_acquire() is False
    finally:
        for lead in (serve, worker, other_worker):
            await lead.release()


@pytest.mark.postgres
@pytest.mark.parametrize("db_kind", ["postgres"])
async def test_the_lead_is_taken_again_at_once_after_its_connection_is_cut(db_url) -> None:
    # pg_terminate_backend ends the lead's session and with it the lock; the next check takes the lock again
    # on a new connection instead of failing and leaving the lead to nobody until the check after it
    name = f"pp-lead-{uuid.uuid4().hex[:8]}"
    url = make_url(db_url).update_query_dict({"application_name": name}).render_as_string(hide_password=False)
    lead, rival = pg_lock_leader(url, lead=SEND_LEAD), pg_lock_leader(db_url, lead=SEND_LEAD)
    admin = create_engine(db_url)
    try:
        assert await lead.try_acquire() is True
        async with admin.connect() as conn:
            cut = await conn.scalar(
                text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :a"),
                {"a": name},
            )
            await conn.commit()
        assert cut == 1
        assert await lead.try_acquire() is True and lead.is_leader
        assert await rival.try_acquire() is False
    finally:
        await lead.release()
        await rival.release()
        await admin.dispose()


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
