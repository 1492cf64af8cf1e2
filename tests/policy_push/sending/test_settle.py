"""Settling rows whose claim lapsed (a worker died mid-send), against the simulators.

The lease is made to lapse by moving ``lease_until`` into the past on the database's clock: what is
tested here is what settle decides about each provider, not how long a lease lasts (test_leases.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select, update

from channels import Answer, Inquiry, Router
from channels.mock import MockChannel
from policy_push.sending.claims import claim
from policy_push.sending.providers import build_router
from policy_push.sending.settle import Settled, _ask, settle_lapsed, sweep_unreceipted
from policy_push.sending.starting import start_due_campaigns
from policy_push.statuses import Code, DeliveryStatus
from policy_push.storage.campaign_tables import DeliveryEventRow, DeliveryRow
from policy_push.storage.deliveries import Delivery
from policy_push.storage.sql import database_now

from .fixtures import make_dispatcher
from .seed import openid, phone, reg_id, seed_campaign

SENDING = DeliveryStatus.SENDING


async def _rows(sessions):  # type: ignore[no-untyped-def]
    async with sessions() as s:
        return {(r.profile_id, r.channel): r for r in (await s.execute(select(DeliveryRow))).scalars()}


async def _lapse(sessions, *, unsure_age_s: float = 10.0, **values: object) -> None:  # type: ignore[no-untyped-def]
    """Every row as a dead worker leaves it: ``sending``, its lease over, its call made ``unsure_age_s`` ago."""
    async with sessions() as s, s.begin():
        now = await database_now(s)
        await s.execute(update(DeliveryRow).where(DeliveryRow.status.in_([SENDING, DeliveryStatus.SENT])).values(
            status=SENDING, lease_until=now - timedelta(seconds=1), unsure_since=now - timedelta(seconds=unsure_age_s),
            **values))  # fmt: skip


async def _dead_claim(d, cipher, providers=None):  # type: ignore[no-untyped-def]
    return await claim(d.sessions, cipher, now=d.clock.now(), worker="dead", limit=10, rules=d.rules,
                       providers=providers or {k: d.router.active(k).name for k in d.router.kinds})  # fmt: skip


async def test_before_the_lease_ends_nothing_is_touched(dispatch_settings, session_factory, cipher, http) -> None:
    await seed_campaign(session_factory, cipher, dispatch_settings, n=2)
    d = make_dispatcher(dispatch_settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    assert await _dead_claim(d, cipher) is not None
    report = await settle_lapsed(session_factory, cipher, d.router, clock=d.clock, rules=d.rules)
    assert report.examined == 0  # the worker may only be slow; its lease says it is alive


async def test_lapsed_sms_is_asked_about_and_wechat_resent_under_its_key(dispatch_settings, session_factory, cipher, sims, http) -> None:
    await seed_campaign(session_factory, cipher, dispatch_settings, n=1, channel_of=lambda i: "sms")
    await seed_campaign(session_factory, cipher, dispatch_settings, n=1, start=3, policy_seq=2, channel_of=lambda i: "wechat")
    d = make_dispatcher(dispatch_settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    # r-1 (SMS) and r-3 (WeChat) reached the provider, then the worker died before recording it
    await d.send_due()
    await _lapse(session_factory, sent_at=None)
    # r-2 (SMS) and r-4 (WeChat) were claimed and the worker died before the provider call
    await seed_campaign(session_factory, cipher, dispatch_settings, n=1, start=2, policy_seq=3, channel_of=lambda i: "sms")
    await seed_campaign(session_factory, cipher, dispatch_settings, n=1, start=4, policy_seq=4, channel_of=lambda i: "wechat")
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    taken = await _dead_claim(d, cipher)
    assert taken is not None and {o.row.profile_id for o in taken.rows} == {"r-0000002", "r-0000004"}
    await _lapse(session_factory)
    sms_before, wechat_before = len(sims.aliyun.records), len(sims.wechat.records)
    report = await settle_lapsed(session_factory, cipher, d.router, clock=d.clock, rules=d.rules)
    assert report.examined == 4 and report.outcomes == {Settled.FOUND: 1, Settled.RESEND: 3}
    rows = await _rows(session_factory)
    assert rows[("r-0000001", "sms")].status in ("sent", "delivered")  # found by QuerySendDetails: never resent
    assert (rows[("r-0000002", "sms")].status, rows[("r-0000002", "sms")].attempts) == ("created", 1)  # certainly not sent
    assert {rows[(p, "wechat")].status for p in ("r-0000003", "r-0000004")} == {"created"}  # inside WeChat's window
    await d.send_due()
    assert len(sims.aliyun.records) == sms_before + 1  # only r-2 went out
    assert len(sims.wechat.records) == wechat_before + 1  # r-3's resend was dropped by WeChat (client_msg_id)
    assert sorted(r.recipient for r in sims.aliyun.records) == [phone(1), phone(2)]
    assert sorted(r.recipient for r in sims.wechat.records) == [openid(3), openid(4)]


async def test_wechat_past_its_window_and_jpush_are_never_resent(dispatch_settings, session_factory, cipher, sims, http) -> None:
    """Nobody can tell whether they went out, and WeChat's deduplication is over (JPush's cid died with the
    worker): technical_failure / UNKNOWN_OUTCOME, and the next channel takes over."""
    await seed_campaign(session_factory, cipher, dispatch_settings, n=1, channel_of=lambda i: "wechat")
    await seed_campaign(session_factory, cipher, dispatch_settings, n=1, start=2, policy_seq=2, channel_of=lambda i: "app")
    d = make_dispatcher(dispatch_settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    await d.send_due()
    await _lapse(session_factory, unsure_age_s=400.0, sent_at=None)  # WeChat drops repeats for 600 s; we use 300
    report = await settle_lapsed(session_factory, cipher, d.router, clock=d.clock, rules=d.rules)
    assert report.examined == 2 and report.outcomes == {Settled.UNKNOWN_OUTCOME: 2}
    rows = await _rows(session_factory)
    for key in (("r-0000001", "wechat"), ("r-0000002", "app")):
        assert (rows[key].status, rows[key].provider_code) == ("technical_failure", Code.UNKNOWN_OUTCOME)
    # the fallbacks: r-1 prefers wechat, sms, app; r-2 app, sms, wechat
    assert rows[("r-0000001", "sms")].fallback_of == rows[("r-0000001", "wechat")].id
    assert rows[("r-0000002", "sms")].fallback_of == rows[("r-0000002", "app")].id
    await d.send_due()
    assert [r.recipient for r in sims.wechat.records] == [openid(1)]
    assert [r.recipient for r in sims.jpush.records] == [reg_id(2)]
    assert sorted(r.recipient for r in sims.aliyun.records) == [phone(1), phone(2)]


async def test_lost_sms_receipts_are_pulled(dispatch_settings, session_factory, cipher, sims, http) -> None:
    settings = dispatch_settings.model_copy(update={"receipt_wait_s": 600.0})
    await seed_campaign(session_factory, cipher, settings, n=3)
    d = make_dispatcher(settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    await d.send_due()
    await sims.aliyun.pusher.drain()  # no callback configured: every receipt is "lost"
    assert await sweep_unreceipted(session_factory, cipher, d.router, clock=d.clock, rules=d.rules) == 0
    d.clock.advance(timedelta(seconds=601))  # type: ignore[attr-defined]
    await asyncio.sleep(0.1)  # the simulator's receipt delay (scaled) passes
    assert await sweep_unreceipted(session_factory, cipher, d.router, clock=d.clock, rules=d.rules) == 3
    assert {r.status for r in (await _rows(session_factory)).values()} == {"delivered"}


async def test_lapsed_tencent_sms_fails_for_good_and_falls_back_never_resent(dispatch_settings, session_factory, cipher, sims, http) -> None:
    # r-1 may have reached Tencent, which has no record of it 40 minutes on (past its report wait: the
    # carrier would have reported by now); r-2 has SMS only, so nothing can take over
    await seed_campaign(session_factory, cipher, dispatch_settings, n=1, channel_of=lambda i: "sms")
    await seed_campaign(session_factory, cipher, dispatch_settings, n=1, start=2, policy_seq=2, fallbacks=False)
    d = make_dispatcher(dispatch_settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    taken = await _dead_claim(d, cipher, providers={"sms": "tencent_sms"})
    assert taken is not None and len(taken.rows) == 2
    assert {r.provider for r in (await _rows(session_factory)).values()} == {"tencent_sms"}  # recorded by the claim
    await _lapse(session_factory, unsure_age_s=2400.0)
    report = await settle_lapsed(session_factory, cipher, d.router, clock=d.clock, rules=d.rules)
    assert report.examined == 2 and report.outcomes == {Settled.UNKNOWN_OUTCOME: 2}
    rows = await _rows(session_factory)
    for pid in ("r-0000001", "r-0000002"):
        sms = rows[(pid, "sms")]
        assert (sms.status, sms.provider, sms.provider_code) == ("technical_failure", "tencent_sms", Code.UNKNOWN_OUTCOME)
    assert rows[("r-0000001", "wechat")].fallback_of == rows[("r-0000001", "sms")].id
    assert {k for k in rows if k[0] == "r-0000002"} == {("r-0000002", "sms")}
    await d.send_due()
    # the fallback went out on WeChat; the SMS was not sent again on either provider
    assert sims.tencent.records == [] and sims.aliyun.records == []
    assert [r.recipient for r in sims.wechat.records] == [openid(1)]
    assert (await _rows(session_factory))[("r-0000002", "sms")].status == "technical_failure"


async def test_a_lapsed_tencent_sms_is_asked_again_until_its_report_comes(
    dispatch_settings, session_factory, cipher, sims, http
) -> None:
    """The worker died after Tencent took r-1 and r-2; the carrier has not reported yet, so Tencent has no
    record: not written off, asked again later, and found (with its report) once the report is in."""
    settings = dispatch_settings.model_copy(update={"sms_providers": "tencent"})
    await seed_campaign(session_factory, cipher, settings, n=2, channel_of=lambda i: "sms")
    d = make_dispatcher(settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    # the carrier reports after 2,000 s (2 s at the simulators' time factor)
    sims.tencent.config = dataclasses.replace(sims.tencent.config, receipt_delay_s=2000.0)
    await d.send_due()
    await _lapse(session_factory, sent_at=None)
    report = await settle_lapsed(session_factory, cipher, d.router, clock=d.clock, rules=d.rules)
    assert report.examined == 2 and report.outcomes == {Settled.AWAITING: 2}
    rows = await _rows(session_factory)
    assert {r.status for r in rows.values()} == {"sending"}
    async with session_factory() as s:
        now = await database_now(s)
        codes = (await s.execute(select(DeliveryEventRow.code).where(DeliveryEventRow.source == "settle"))).scalars().all()
    assert all(r.lease_until > now for r in rows.values()) and codes == [Code.AWAITING_PROVIDER] * 2
    # not asked again before the new lease ends
    assert (await settle_lapsed(session_factory, cipher, d.router, clock=d.clock, rules=d.rules)).examined == 0
    # the carrier reports; the lease ends: Tencent's records now have it
    await asyncio.sleep(2.2)
    await _lapse(session_factory, sent_at=None)
    report = await settle_lapsed(session_factory, cipher, d.router, clock=d.clock, rules=d.rules)
    assert report.examined == 2 and report.outcomes == {Settled.FOUND: 2}
    assert {r.status for r in (await _rows(session_factory)).values()} == {"delivered"}
    assert len(sims.tencent.records) == 2  # never sent again


async def test_rows_lapsed_before_their_call_go_again_without_a_question(dispatch_settings, session_factory, cipher, sims, http) -> None:
    """Claimed for Tencent and JPush, which cannot be asked, but the worker died before the call (no
    ``unsure_since``): certainly never sent, so back to ``created`` and sent once, not failed for good."""
    await seed_campaign(session_factory, cipher, dispatch_settings, n=1, channel_of=lambda i: "sms")
    await seed_campaign(session_factory, cipher, dispatch_settings, n=1, start=2, policy_seq=2, channel_of=lambda i: "app")
    d = make_dispatcher(dispatch_settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    assert await _dead_claim(d, cipher, providers={"sms": "tencent_sms", "app": "jpush"}) is not None
    async with session_factory() as s, s.begin():
        now = await database_now(s)
        await s.execute(update(DeliveryRow).values(lease_until=now - timedelta(seconds=1)))
    report = await settle_lapsed(session_factory, cipher, d.router, clock=d.clock, rules=d.rules)
    assert report.examined == 2 and report.outcomes == {Settled.NOT_CALLED: 2}
    assert {(r.status, r.attempts) for r in (await _rows(session_factory)).values()} == {("created", 1)}
    await d.send_due()
    assert [r.recipient for r in sims.aliyun.records] == [phone(1)] and [r.recipient for r in sims.jpush.records] == [reg_id(2)]
    assert {r.status for r in (await _rows(session_factory)).values()} == {"sent"}


async def test_lapsed_aliyun_sms_is_asked_at_aliyun_even_after_a_switch(dispatch_settings, session_factory, cipher, sims, http) -> None:
    await seed_campaign(session_factory, cipher, dispatch_settings, n=2, channel_of=lambda i: "sms", fallbacks=False)
    d = make_dispatcher(dispatch_settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    await d.send_due()  # both went out through Aliyun; the worker died before recording it
    await _lapse(session_factory, sent_at=None)
    assert {r.provider for r in (await _rows(session_factory)).values()} == {"aliyun_sms"}
    # a router whose active SMS provider is Tencent: settle still asks Aliyun, by name
    router = build_router(dispatch_settings.model_copy(update={"sms_providers": "tencent,aliyun"}), http)
    assert router.active("sms").name == "tencent_sms"
    report = await settle_lapsed(session_factory, cipher, router, clock=d.clock, rules=d.rules)
    assert report.examined == 2 and report.outcomes == {Settled.FOUND: 2}
    assert {r.status for r in (await _rows(session_factory)).values()} <= {"sent", "delivered"}
    await d.send_due()
    assert len(sims.aliyun.records) == 2 and sims.tencent.records == []


async def test_a_worker_that_renews_in_time_keeps_its_rows(dispatch_settings, session_factory, cipher, http) -> None:
    """Settle reads a lapsed row, the worker renews it before settle writes: the worker keeps it."""
    from policy_push.sending.claims import renew

    await seed_campaign(session_factory, cipher, dispatch_settings, n=1, channel_of=lambda i: "wechat")
    d = make_dispatcher(dispatch_settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    taken = await _dead_claim(d, cipher)
    assert taken is not None
    await _lapse(session_factory)

    class RenewingRouter:
        """Asks the real router, but lets the worker come back in between."""

        def __init__(self, inner):  # type: ignore[no-untyped-def]
            self.inner = inner

        def resend_window_s(self, kind, provider):  # type: ignore[no-untyped-def]
            return self.inner.resend_window_s(kind, provider)

        def answer_wait_s(self, kind, provider):  # type: ignore[no-untyped-def]
            return self.inner.answer_wait_s(kind, provider)

        async def query(self, kind, provider, items):  # type: ignore[no-untyped-def]
            await renew(session_factory, {taken.id: {o.row.id for o in taken.rows}}, lease_s=30)
            return await self.inner.query(kind, provider, items)

    report = await settle_lapsed(session_factory, cipher, RenewingRouter(d.router), clock=d.clock, rules=d.rules)  # type: ignore[arg-type]
    assert report.examined == 1 and report.outcomes == {Settled.IGNORED: 1}
    assert {r.status for r in (await _rows(session_factory)).values()} == {"sending"}


async def test_the_providers_of_lapsed_rows_are_asked_at_once() -> None:
    # after a crash the backlog spans providers that answer one phone per request (Aliyun, Tencent); asked one
    # provider after the other, settle waited for the sum of their times before writing anything
    class Slow(MockChannel):
        async def query(self, items: Sequence[Inquiry]) -> list[Answer]:
            await asyncio.sleep(0.5)
            return [Answer(i.delivery_id, self.name, True) for i in items]

    def row(i: int, channel: str, provider: str) -> Delivery:
        now = dt.datetime.now(dt.UTC)
        return Delivery(f"d{i}", "c", "p", "resident", f"r-{i}", channel, "announce", SENDING, 1, provider, None,
                        "claim", now, now, None)  # fmt: skip

    router = Router([Slow(lambda m: None, name="aliyun_sms", kind="sms"), Slow(lambda m: None, name="wechat", kind="wechat")])  # type: ignore[arg-type,return-value]
    rows = [row(1, "sms", "aliyun_sms"), row(2, "wechat", "wechat"), row(3, "sms", "aliyun_sms")]
    started = asyncio.get_running_loop().time()
    answers = await _ask(router, rows, {})
    took = asyncio.get_running_loop().time() - started
    assert {k: v.answer.sent for k, v in answers.items()} == {"d1": True, "d2": True, "d3": True}
    assert took < 0.9, f"asked one provider after the other ({took:.2f} s for two providers of 0.5 s)"
