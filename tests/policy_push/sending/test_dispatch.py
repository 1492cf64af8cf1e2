"""Dispatch end to end against the simulators on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from policy_push.sending import SendRules
from policy_push.sending.starting import start_due_campaigns
from policy_push.statuses import CampaignState, Code, DeliveryStatus, OptOutSource
from policy_push.storage.campaign_tables import CampaignRow, DeliveryEventRow, DeliveryRow

from .fixtures import DAYTIME, make_dispatcher
from .seed import address, by_share, seed_campaign


async def _statuses(sessions, campaign_id=None) -> Counter[str]:
    async with sessions() as s:
        stmt = select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)
        if campaign_id:
            stmt = stmt.where(DeliveryRow.campaign_id == campaign_id)
        return Counter(dict((await s.execute(stmt)).all()))


async def test_a_campaign_goes_out_once_per_recipient_on_their_channel(
    dispatch_settings, session_factory, cipher, sims, http
) -> None:
    seeded = await seed_campaign(
        session_factory, cipher, dispatch_settings, n=300, channel_of=by_share({"sms": 0.5, "wechat": 0.3, "app": 0.2})
    )
    d = make_dispatcher(dispatch_settings, session_factory, cipher, http)
    started = await start_due_campaigns(session_factory, now=d.clock.now(), rules=SendRules.from_settings(dispatch_settings))
    assert started == [seeded.campaign_id]
    claimed = await d.send_due()
    assert claimed == 300
    assert await _statuses(session_factory) == Counter({"sent": 300})
    wanted = Counter((first, address(first, seeded.index_of(pid))) for pid, (first, _) in seeded.recipients.items())
    got = Counter()
    for provider, channel in (("aliyun", "sms"), ("wechat", "wechat"), ("jpush", "app")):
        got.update((channel, rec.recipient) for rec in sims.records[provider])
    assert got == wanted
    async with session_factory() as s:
        # claim + result: two events per row, all from sending/created as the table allows
        events = Counter((await s.execute(select(DeliveryEventRow.from_status, DeliveryEventRow.to_status))).all())
        assert events == Counter({("created", "sending"): 300, ("sending", "sent"): 300})
        state = await s.scalar(select(CampaignRow.state).where(CampaignRow.id == seeded.campaign_id))
    # sent SMS and WeChat rows still wait for their receipts
    assert state == CampaignState.SENDING
    # a second run finds nothing: nothing is sent twice
    assert await d.send_due() == 0
    assert len(sims.records["aliyun"]) + len(sims.records["wechat"]) + len(sims.records["jpush"]) == 300
    assert DeliveryStatus.SENT == "sent"


# ---- results, retries and fallbacks with MockChannel ---------------------------------------------

import random  # noqa: E402

from channels import MockChannel, Outcome, Router, SendResult  # noqa: E402
from policy_push.sending import Dispatcher  # noqa: E402
from scheduler import FrozenClock  # noqa: E402


def _mock_router(**handlers) -> Router:  # type: ignore[no-untyped-def]
    default = lambda m: Outcome.ACCEPTED  # noqa: E731
    return Router([MockChannel(handlers.get(k, default), name=f"mock_{k}", kind=k) for k in ("sms", "wechat", "app")])


def _dispatcher(settings, sessions, cipher, router, clock) -> Dispatcher:  # type: ignore[no-untyped-def]
    return Dispatcher(sessions=sessions, cipher=cipher, router=router, clock=clock, rules=SendRules.from_settings(settings),
                      worker_id="w", batch_size=50, concurrency=1, rng=random.Random(1))  # fmt: skip


async def _rows(sessions):  # type: ignore[no-untyped-def]
    async with sessions() as s:
        return {(r.profile_id, r.channel): r for r in (await s.execute(select(DeliveryRow))).scalars()}


async def test_retryable_backs_off_then_technical_failure(dispatch_settings, session_factory, cipher) -> None:
    settings = dispatch_settings.model_copy(update={"retry_max_attempts": 3, "retry_base_delay_s": 60.0, "retry_max_delay_s": 3600.0})
    fault = lambda m: SendResult(m.delivery_id, Outcome.RETRYABLE, "mock_sms", code="isp.SYSTEM_ERROR", provider_fault=True)  # noqa: E731
    clock = FrozenClock(DAYTIME)
    d = _dispatcher(settings, session_factory, cipher, _mock_router(sms=fault), clock)
    seeded = await seed_campaign(session_factory, cipher, settings, n=3, fallbacks=False)
    await start_due_campaigns(session_factory, now=clock.now(), rules=d.rules)
    assert await d.send_due() == 3
    row = (await _rows(session_factory))[(sorted(seeded.recipients)[0], "sms")]
    assert (row.status, row.attempts, row.waiting_for) == ("created", 1, "retry")
    assert timedelta(seconds=30) <= row.not_before - clock.now() <= timedelta(seconds=60)  # equal jitter of 60 s
    assert await d.send_due() == 0  # not due yet: the backoff is respected
    clock.advance(timedelta(minutes=5))
    await d.send_due()
    clock.advance(timedelta(minutes=5))
    await d.send_due()
    assert {(r.status, r.attempts) for r in (await _rows(session_factory)).values()} == {("technical_failure", 3)}


async def test_throttling_waits_without_spending_an_attempt(dispatch_settings, session_factory, cipher) -> None:
    slow = lambda m: SendResult(m.delivery_id, Outcome.RETRYABLE, "mock_sms", code="Throttling.User", retry_after_s=120.0)  # noqa: E731
    clock = FrozenClock(DAYTIME)
    d = _dispatcher(dispatch_settings, session_factory, cipher, _mock_router(sms=slow), clock)
    await seed_campaign(session_factory, cipher, dispatch_settings, n=2, fallbacks=False)
    await start_due_campaigns(session_factory, now=clock.now(), rules=d.rules)
    await d.send_due()
    for row in (await _rows(session_factory)).values():
        assert (row.status, row.attempts, row.waiting_for) == ("created", 0, "throttled")
        assert row.not_before == clock.now() + timedelta(seconds=120)


async def test_failure_for_good_falls_back_to_the_next_channel_once(dispatch_settings, session_factory, cipher) -> None:
    clock = FrozenClock(DAYTIME)
    router = _mock_router(sms=lambda m: Outcome.UNREACHABLE, wechat=lambda m: Outcome.PERMANENT)
    d = _dispatcher(dispatch_settings, session_factory, cipher, router, clock)
    seeded = await seed_campaign(session_factory, cipher, dispatch_settings, n=4)  # prefs sms, wechat, app
    await start_due_campaigns(session_factory, now=clock.now(), rules=d.rules)
    for _ in range(3):
        await d.send_due()
    rows = await _rows(session_factory)
    for pid in seeded.recipients:
        sms, wechat, app = rows[(pid, "sms")], rows[(pid, "wechat")], rows[(pid, "app")]
        assert (sms.status, wechat.status, app.status) == ("unreachable", "permanent_failure", "sent")
        assert wechat.fallback_of == sms.id and app.fallback_of == wechat.id
    assert len(rows) == 12


async def test_a_message_that_may_have_gone_out_stays_sending_for_settle(dispatch_settings, session_factory, cipher) -> None:
    unsure = lambda m: SendResult(m.delivery_id, Outcome.RETRYABLE, "mock_sms", code="ProviderTimeout", maybe_sent=True, provider_fault=True)  # noqa: E731
    clock = FrozenClock(DAYTIME)
    d = _dispatcher(dispatch_settings, session_factory, cipher, _mock_router(sms=unsure, wechat=unsure), clock)
    await seed_campaign(session_factory, cipher, dispatch_settings, n=2, channel_of=lambda i: "sms" if i == 1 else "wechat", fallbacks=False)
    await start_due_campaigns(session_factory, now=clock.now(), rules=d.rules)
    await d.send_due()
    status = {ch: r.status for (_, ch), r in (await _rows(session_factory)).items()}
    # never sent again blindly: the claim is left to lapse, and settle asks the provider (or gives up on it)
    assert status == {"sms": "sending", "wechat": "sending"}
    assert d.in_flight == 0  # no longer renewed: the lease lapses
    async with session_factory() as s:
        codes = (await s.execute(select(DeliveryEventRow.code).where(DeliveryEventRow.code == Code.MAYBE_SENT))).scalars().all()
    assert len(codes) == 2


async def test_opt_out_after_approval_cancels_at_claim(dispatch_settings, session_factory, cipher) -> None:
    from policy_push.storage.campaign_tables import OptOutRow

    clock = FrozenClock(DAYTIME)
    router = _mock_router()
    d = _dispatcher(dispatch_settings, session_factory, cipher, router, clock)
    seeded = await seed_campaign(session_factory, cipher, dispatch_settings, n=3, fallbacks=False)
    await start_due_campaigns(session_factory, now=clock.now(), rules=d.rules)
    first = sorted(seeded.recipients)[0]
    async with session_factory() as s, s.begin():
        s.add(OptOutRow(profile_kind="resident", profile_id=first, channel="sms", at=clock.now(), source=OptOutSource.STAFF))
    await d.send_due()
    rows = await _rows(session_factory)
    assert rows[(first, "sms")].status == "cancelled"
    assert sum(r.status == "sent" for r in rows.values()) == 2
    sms = next(ch for ch in router._kinds["sms"].channels)
    assert len(sms.sent) == 2  # type: ignore[attr-defined]


# ---- failover to the second SMS provider, against the simulators ---------------------------------


async def test_sms_fails_over_to_tencent_and_each_row_goes_out_once(
    dispatch_settings, session_factory, cipher, sims, http, caplog
) -> None:
    from channels.simulators import Faults
    from policy_push.storage.campaign_tables import ProviderSwitchRow

    from .fixtures import make_dispatcher as make_sim_dispatcher

    sims.aliyun.faults = Faults(error_rates={"isp.SYSTEM_ERROR": 1.0})
    seeded = await seed_campaign(session_factory, cipher, dispatch_settings, n=12, fallbacks=False)
    # small batches: each is one router call, and the router switches after fault_threshold failed calls
    d = make_sim_dispatcher(dispatch_settings, session_factory, cipher, http, batch_size=2)
    threshold = d.router.failover.fault_threshold
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    for _ in range(5):
        await d.send_due()
        d.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    rows = await _rows(session_factory)
    assert {(r.status, r.provider) for r in rows.values()} == {("sent", "tencent_sms")}
    # every recipient's SMS exactly once, across both providers; Aliyun accepted none
    assert sims.aliyun.records == [] and sims.aliyun.requests >= threshold
    got = Counter(rec.recipient.removeprefix("+86") for rec in sims.tencent.records)
    assert got == Counter(address("sms", seeded.index_of(pid)) for pid in seeded.recipients)
    # rows that failed on Aliyun before the switch were retried (an attempt spent), then went via Tencent
    assert sum(r.attempts for r in rows.values()) >= 2 * threshold
    async with session_factory() as s:
        [switch] = (await s.execute(select(ProviderSwitchRow))).scalars().all()
    assert (switch.channel, switch.from_provider, switch.to_provider) == ("sms", "aliyun_sms", "tencent_sms")
    assert "isp.SYSTEM_ERROR" in switch.reason and f"{threshold} consecutive" in switch.reason
    assert any(r.name == "policy_push.dispatch" and r.levelname == "WARNING" and "aliyun_sms -> tencent_sms" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    assert await d.send_due() == 0
    async with session_factory() as s:
        assert len((await s.execute(select(ProviderSwitchRow))).scalars().all()) == 1  # recorded once
