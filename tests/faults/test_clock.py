"""Fault (d): quiet hours, the frequency cap, reminders and closing, under a frozen or scaled clock.

The whole pipeline runs in-process against the simulators; only the clock is bent. Nothing may
reach a simulator during quiet hours (unless urgent), over the cap (it waits, it is not dropped),
or after a policy closes; a reminder reaches exactly those who were told and did not answer.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update

from policy_push.campaigns import verify_approval
from policy_push.refdata import load_reference_data
from policy_push.runtime import Runtime
from policy_push.sending import open_pipeline
from policy_push.sending.providers import build_router
from policy_push.statuses import CampaignState, FeedbackKind, OptOutSource, Purpose
from policy_push.storage.campaign_tables import (
    CampaignMessageRow,
    CampaignRow,
    DeliveryRow,
    FeedbackRow,
    OptOutRow,
)
from scheduler import FrozenClock, ScaledClock

from ..policy_push.sending.fixtures import sim_settings
from ..policy_push.sending.seed import by_share, phone, seed_campaign

SH = ZoneInfo("Asia/Shanghai")


def local(y: int, mo: int, d: int, h: int, mi: int = 0, sec: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, sec, tzinfo=SH).astimezone(UTC)


async def _pipeline(settings, engine, sessions, cipher, http, clock):  # type: ignore[no-untyped-def]
    runtime = Runtime(settings, engine, sessions, cipher, load_reference_data())
    return open_pipeline(runtime, clock=clock, router=build_router(settings, http))


async def _by_status(sessions, campaign_id: str) -> Counter[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        rows = await s.execute(
            select(DeliveryRow.status, DeliveryRow.waiting_for, func.count())
            .where(DeliveryRow.campaign_id == campaign_id)
            .group_by(DeliveryRow.status, DeliveryRow.waiting_for)
        )
        return Counter({(st, w): n for st, w, n in rows})


async def test_quiet_hours_hold_until_morning_and_urgent_goes_at_once(db_settings, session_factory, engine, cipher, sims, http) -> None:
    settings = sim_settings(db_settings, sims, quiet_hours="21:00-08:00", quiet_hours_by_channel={"app": "22:00-07:00"})
    clock = FrozenClock(local(2026, 4, 1, 22, 30))
    calm = await seed_campaign(session_factory, cipher, settings, n=60, channel_of=by_share({"sms": 0.5, "wechat": 0.3, "app": 0.2}))
    urgent = await seed_campaign(session_factory, cipher, settings, n=10, start=1000, policy_seq=2, urgent=True)
    async with await _pipeline(settings, engine, session_factory, cipher, http, clock) as p:
        await p.dispatch_due_campaigns()
        await p.send_due_deliveries()
        # the urgent policy bypasses quiet hours; the other waits, marked as waiting for them
        assert await _by_status(session_factory, urgent.campaign_id) == {("sent", None): 10}
        calm_counts = await _by_status(session_factory, calm.campaign_id)
        assert calm_counts == {("created", "quiet_hours"): 60}
        assert len(sims.records["aliyun"]) == 10
        clock.set(local(2026, 4, 2, 6, 59, 59))
        assert await p.send_due_deliveries() == 0
        clock.set(local(2026, 4, 2, 7, 0))  # app's own window ends at 07:00
        app_now = await p.send_due_deliveries()
        assert app_now == sum(1 for ch, _ in calm.recipients.values() if ch == "app")
        clock.set(local(2026, 4, 2, 8, 0))
        await p.send_due_deliveries()
    assert await _by_status(session_factory, calm.campaign_id) == {("sent", None): 60}
    async with session_factory() as s:
        sent = (await s.execute(select(DeliveryRow.channel, DeliveryRow.sent_at).where(DeliveryRow.campaign_id == calm.campaign_id))).all()
    for channel, at in sent:
        assert at.astimezone(SH).hour == (7 if channel == "app" else 8)


async def test_scaled_clock_runs_a_night_in_seconds(db_settings, session_factory, engine, cipher, sims, http) -> None:
    # 20:59 local at 7200x: quiet hours (11 h) pass in ~5.5 s of real time
    settings = sim_settings(db_settings, sims, quiet_hours="21:00-08:00")
    seeded = await seed_campaign(session_factory, cipher, settings, n=40, channel_of=by_share({"sms": 0.5, "wechat": 0.5}))
    clock = ScaledClock(7200, start=local(2026, 4, 1, 21, 0) - timedelta(seconds=1))
    async with await _pipeline(settings, engine, session_factory, cipher, http, clock) as p:
        p.send_budget_s = 5.0
        await p.dispatch_due_campaigns()  # at 20:59:59 + a little: already 21:00 by the time rows are planned
        assert await p.run_until_idle(timeout_s=20, leader=False)
    async with session_factory() as s:
        times = (await s.execute(select(DeliveryRow.sent_at).where(DeliveryRow.campaign_id == seeded.campaign_id))).scalars().all()
    assert len(times) == 40
    for at in times:
        assert at >= local(2026, 4, 2, 8, 0), at.astimezone(SH)


async def test_the_cap_makes_the_fourth_message_wait_a_week_not_vanish(db_settings, session_factory, engine, cipher, sims, http) -> None:
    settings = sim_settings(db_settings, sims, frequency_cap=3, frequency_cap_days=7)
    clock = FrozenClock(local(2026, 4, 1, 10, 0))
    campaigns = []
    async with await _pipeline(settings, engine, session_factory, cipher, http, clock) as p:
        for k in range(4):  # four policies for the same 20 people, a day apart
            campaigns.append(
                await seed_campaign(session_factory, cipher, settings, n=20, policy_seq=10 + k, existing_profiles=k > 0)
            )
            await p.dispatch_due_campaigns()
            await p.send_due_deliveries()
            clock.advance(timedelta(days=1))
        fourth = await _by_status(session_factory, campaigns[3].campaign_id)
        assert fourth == {("created", "frequency_cap"): 20}
        assert Counter(r.recipient for r in sims.aliyun.records)[phone(1)] == 3
        # the first message was sent on day 0 at 10:00: a week later the fourth may go
        clock.set(local(2026, 4, 8, 9, 59))
        assert await p.send_due_deliveries() == 0
        clock.set(local(2026, 4, 8, 10, 0))
        assert await p.send_due_deliveries() == 20
    assert Counter(r.recipient for r in sims.aliyun.records)[phone(1)] == 4


async def test_reminders_reach_who_did_not_answer_and_closing_cancels(db_settings, session_factory, engine, cipher, sims, http) -> None:
    settings = sim_settings(db_settings, sims, reminder_days_before=7, receipt_wait_s=0)
    until = date(2026, 4, 30)
    clock = FrozenClock(local(2026, 4, 1, 10, 0))
    seeded = await seed_campaign(session_factory, cipher, settings, n=30, apply_until=until.isoformat())
    pids = sorted(seeded.recipients)
    async with await _pipeline(settings, engine, session_factory, cipher, http, clock) as p:
        await p.run_until_idle(timeout_s=20)
        async with session_factory() as s, s.begin():
            state = await s.scalar(select(CampaignRow.state).where(CampaignRow.id == seeded.campaign_id))
            assert state == CampaignState.DONE
            await s.execute(insert(FeedbackRow), [
                {"policy_id": seeded.policy_id, "profile_kind": "resident", "profile_id": pids[0], "kind": FeedbackKind.APPLIED, "at": clock.now()},
                {"policy_id": seeded.policy_id, "profile_kind": "resident", "profile_id": pids[1], "kind": FeedbackKind.IRRELEVANT, "at": clock.now()},
                {"policy_id": seeded.policy_id, "profile_kind": "resident", "profile_id": pids[2], "kind": FeedbackKind.USEFUL, "at": clock.now()},
            ])  # fmt: skip
            await s.execute(insert(OptOutRow), [{"profile_kind": "resident", "profile_id": pids[3], "channel": "*", "at": clock.now(), "source": OptOutSource.SMS_UPLINK}])
        clock.set(local(2026, 4, 23, 8, 59))  # reminders are due at 09:00, seven days before
        assert await p.deadline_reminders() == []
        clock.set(local(2026, 4, 23, 9, 0))
        (reminder_id,) = await p.deadline_reminders()
        assert await p.deadline_reminders() == []  # once per policy
        async with session_factory() as s:
            assert await verify_approval(s, reminder_id)
        before = len(sims.aliyun.records)
        await p.run_until_idle(timeout_s=20)
        reminded = {r.recipient for r in sims.aliyun.records[before:]}
        want = {phone(seeded.index_of(pid)) for pid in pids[2:] if pid != pids[3]}
        assert reminded == want  # applied, irrelevant and opted-out are left alone; "useful" is reminded
        async with session_factory() as s:
            purposes = Counter((await s.execute(select(DeliveryRow.purpose))).scalars().all())
        assert purposes == {Purpose.ANNOUNCE: 30, Purpose.REMINDER: 27}

        # a reminder whose announcement texts changed since approval is refused
        async with session_factory() as s, s.begin():
            await s.execute(update(CampaignMessageRow).where(CampaignMessageRow.campaign_id == seeded.campaign_id,
                                                              CampaignMessageRow.channel == "sms").values(body={"tampered": True}))
        async with session_factory() as s:
            assert not await verify_approval(s, reminder_id)

        # closing: a scheduled campaign of the policy and its unsent rows are cancelled after the last day
        late = await seed_campaign(session_factory, cipher, settings, n=5, start=500, policy_seq=1, apply_until=until.isoformat(),
                                   send_at=local(2026, 5, 2, 9, 0))
        clock.set(local(2026, 4, 30, 23, 59))
        assert (await p.close_expired_policies()).policies == 0
        clock.set(local(2026, 5, 1, 0, 0))
        report = await p.close_expired_policies()
        assert report.policies == 1 and report.campaigns_cancelled == 1
        async with session_factory() as s:
            assert await s.scalar(select(CampaignRow.state).where(CampaignRow.id == late.campaign_id)) == CampaignState.CANCELLED
