"""Settling rows stuck in ``sending`` (a worker died between claim and result), against the simulators."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from policy_push.storage.campaign_tables import DeliveryRow
from policy_push.workflow.claim import claim_batch
from policy_push.workflow.settle import settle_stuck, sweep_unreceipted_sms
from policy_push.workflow.starting import start_due_campaigns

from .dispatch_fixtures import make_dispatcher
from .seed import always_approved, openid, phone, seed_campaign


async def _rows(sessions):  # type: ignore[no-untyped-def]
    async with sessions() as s:
        return {r.profile_id: r for r in (await s.execute(select(DeliveryRow))).scalars()}


async def test_stuck_sms_is_asked_about_and_wechat_resent_under_its_key(dispatch_settings, session_factory, cipher, sims, http) -> None:
    await seed_campaign(session_factory, cipher, dispatch_settings, n=1, channel_of=lambda i: "sms")
    await seed_campaign(session_factory, cipher, dispatch_settings, n=1, start=3, policy_seq=2, channel_of=lambda i: "wechat")
    d = make_dispatcher(dispatch_settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules, verify=always_approved)
    # r-1 (SMS) and r-3 (WeChat) reached the provider, then the worker died before recording it
    await d.send_due()
    async with session_factory() as s, s.begin():
        await s.execute(update(DeliveryRow).values(status="sending", claimed_at=d.clock.now(), sent_at=None))
    # r-2 (SMS) and r-4 (WeChat) were claimed and the worker died before the provider call
    await seed_campaign(session_factory, cipher, dispatch_settings, n=1, start=2, policy_seq=3, channel_of=lambda i: "sms")
    await seed_campaign(session_factory, cipher, dispatch_settings, n=1, start=4, policy_seq=4, channel_of=lambda i: "wechat")
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules, verify=always_approved)
    claimed = await claim_batch(session_factory, cipher, now=d.clock.now(), worker_id="dead", limit=10)
    assert {r.profile_id for r in claimed} == {"r-0000002", "r-0000004"}
    sms_before, wechat_before = len(sims.aliyun.records), len(sims.wechat.records)
    # nothing happens before the timeout: the worker may only be slow
    report = await settle_stuck(session_factory, cipher, d.router, clock=d.clock, rules=d.rules)
    assert report.examined == 0
    d.clock.advance(timedelta(seconds=d.rules.stuck_after_s + 1))  # type: ignore[attr-defined]
    report = await settle_stuck(session_factory, cipher, d.router, clock=d.clock, rules=d.rules)
    assert (report.examined, report.found) == (4, 1)
    rows = await _rows(session_factory)
    assert rows["r-0000001"].status in ("sent", "delivered")  # found by QuerySendDetails: never resent
    assert (rows["r-0000002"].status, rows["r-0000002"].attempts) == ("created", 1)  # certainly not sent
    assert rows["r-0000003"].status == "created" and rows["r-0000004"].status == "created"
    await d.send_due()
    assert len(sims.aliyun.records) == sms_before + 1  # only r-2 went out
    assert len(sims.wechat.records) == wechat_before + 1  # r-3's resend was deduplicated by client_msg_id
    assert sorted(r.recipient for r in sims.aliyun.records) == [phone(1), phone(2)]


async def test_lost_sms_receipts_are_pulled(dispatch_settings, session_factory, cipher, sims, http) -> None:
    settings = dispatch_settings.model_copy(update={"receipt_wait_s": 600.0})
    await seed_campaign(session_factory, cipher, settings, n=3)
    d = make_dispatcher(settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules, verify=always_approved)
    await d.send_due()
    await sims.aliyun.pusher.drain()  # no callback configured: every receipt is "lost"
    assert await sweep_unreceipted_sms(session_factory, cipher, d.router, clock=d.clock, rules=d.rules) == 0
    d.clock.advance(timedelta(seconds=601))  # type: ignore[attr-defined]
    import asyncio

    await asyncio.sleep(0.1)  # the simulator's receipt delay (scaled) passes
    assert await sweep_unreceipted_sms(session_factory, cipher, d.router, clock=d.clock, rules=d.rules) == 3
    assert {r.status for r in (await _rows(session_factory)).values()} == {"delivered"}


async def test_stuck_tencent_sms_fails_for_good_and_falls_back_never_resent(dispatch_settings, session_factory, cipher, sims, http) -> None:
    from policy_push.workflow.settle import UNKNOWN_OUTCOME

    # r-1 may have reached Tencent (no query API); r-2 has SMS only, so nothing can take over
    await seed_campaign(session_factory, cipher, dispatch_settings, n=1, channel_of=lambda i: "sms")
    await seed_campaign(session_factory, cipher, dispatch_settings, n=1, start=2, policy_seq=2, fallbacks=False)
    d = make_dispatcher(dispatch_settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules, verify=always_approved)
    claimed = await claim_batch(session_factory, cipher, now=d.clock.now(), worker_id="dead", limit=10, providers={"sms": "tencent_sms"})
    assert len(claimed) == 2
    assert {r.provider for r in (await _rows(session_factory)).values()} == {"tencent_sms"}  # recorded by the claim
    d.clock.advance(timedelta(seconds=d.rules.stuck_after_s + 1))  # type: ignore[attr-defined]
    report = await settle_stuck(session_factory, cipher, d.router, clock=d.clock, rules=d.rules)
    assert (report.examined, report.resend, report.unknown_outcome) == (2, 0, 2)
    async with session_factory() as s:
        rows = {(r.profile_id, r.channel): r for r in (await s.execute(select(DeliveryRow))).scalars()}
    for pid in ("r-0000001", "r-0000002"):
        sms = rows[(pid, "sms")]
        assert (sms.status, sms.provider, sms.provider_code) == ("technical_failure", "tencent_sms", UNKNOWN_OUTCOME)
    assert rows[("r-0000001", "wechat")].fallback_of == rows[("r-0000001", "sms")].id
    assert {k for k in rows if k[0] == "r-0000002"} == {("r-0000002", "sms")}
    await d.send_due()
    # the fallback went out on WeChat; the SMS was not sent again on either provider
    assert sims.tencent.records == [] and sims.aliyun.records == []
    assert [r.recipient for r in sims.wechat.records] == [openid(1)]
    assert (await _rows(session_factory))["r-0000002"].status == "technical_failure"


async def test_stuck_aliyun_sms_is_asked_at_aliyun_even_after_a_switch(
    dispatch_settings, session_factory, cipher, sims, http
) -> None:
    from policy_push.workflow.providers import build_router

    await seed_campaign(session_factory, cipher, dispatch_settings, n=2, channel_of=lambda i: "sms", fallbacks=False)
    d = make_dispatcher(dispatch_settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules, verify=always_approved)
    await d.send_due()  # both went out through Aliyun; the worker died before recording it
    async with session_factory() as s, s.begin():
        await s.execute(update(DeliveryRow).values(status="sending", claimed_at=d.clock.now(), sent_at=None))
    assert {r.provider for r in (await _rows(session_factory)).values()} == {"aliyun_sms"}
    # a router whose active SMS provider is Tencent: settle still asks Aliyun, by name
    router = build_router(dispatch_settings.model_copy(update={"sms_providers": "tencent,aliyun"}), http)
    assert router.active("sms").name == "tencent_sms"
    d.clock.advance(timedelta(seconds=d.rules.stuck_after_s + 1))  # type: ignore[attr-defined]
    report = await settle_stuck(session_factory, cipher, router, clock=d.clock, rules=d.rules)
    assert (report.examined, report.found, report.resend, report.unknown, report.unknown_outcome) == (2, 2, 0, 0, 0)
    assert {r.status for r in (await _rows(session_factory)).values()} <= {"sent", "delivered"}
    await d.send_due()
    assert len(sims.aliyun.records) == 2 and sims.tencent.records == []
