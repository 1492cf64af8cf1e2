"""Replies, unfollows and pulled reports, end to end: the simulators push (or are pulled) over real HTTP, the
running app applies, and the next campaign does not reach a person who said stop."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import socket
from typing import Any

from sqlalchemy import select, text, update

from channels.simulators import SimulatorSet
from policy_push.sending.providers import build_jpush_reports, build_router, callback_secret
from policy_push.sending.pulls import pull_jpush_reports, pull_tencent
from policy_push.sending.starting import start_due_campaigns
from policy_push.storage import inbound as inbound_store
from policy_push.storage.campaign_tables import DeliveryEventRow, DeliveryRow, OptOutRow

from .fixtures import make_dispatcher, sim_settings
from .seed import openid, phone, reg_id, seed_campaign


async def _rows(sessions) -> dict[tuple[str, str, str], Any]:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        return {(r.policy_id, r.profile_id, r.channel): r for r in (await s.execute(select(DeliveryRow))).scalars()}


async def _opt_outs(sessions) -> set[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        return {(o.profile_id, o.channel, o.source) for o in (await s.execute(select(OptOutRow))).scalars()}


async def _until(check, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout_s / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def _drained(sims: SimulatorSet) -> None:
    for sim in (sims.aliyun, sims.tencent, sims.wechat):
        await sim.pusher.drain()


async def test_a_td_reply_stops_sms_to_that_phone_end_to_end(service, session_factory, cipher, http) -> None:
    client, sims, settings = service
    first = await seed_campaign(session_factory, cipher, settings, n=2, channel_of=lambda i: "sms", fallbacks=False)
    d = make_dispatcher(settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    await d.send_due()
    # a second campaign's rows are queued (not sent yet) when the reply comes
    second = await seed_campaign(session_factory, cipher, settings, n=2, policy_seq=2, channel_of=lambda i: "sms",
                                 fallbacks=False, existing_profiles=True)  # fmt: skip
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    sims.aliyun.reply(phone(1), " ｔｄ ")  # full-width, lower case, spaces: still TD
    sims.aliyun.reply(phone(2), "不要退订，谢谢")  # not an opt-out: stored for staff
    await _drained(sims)
    assert await _opt_outs(session_factory) == {("r-0000001", "sms", "sms_uplink")}
    rows = await _rows(session_factory)
    queued = rows[(second.policy_id, "r-0000001", "sms")]
    assert (queued.status, queued.provider_code) == ("cancelled", None)
    async with session_factory() as s:
        event = (await s.execute(select(DeliveryEventRow).where(DeliveryEventRow.delivery_id == queued.id)
                                 .order_by(DeliveryEventRow.id.desc()))).scalars().first()  # fmt: skip
    assert (event.source, event.code) == ("opt_out", "OPTED_OUT")
    await d.send_due()
    rows = await _rows(session_factory)
    assert rows[(second.policy_id, "r-0000002", "sms")].status in ("sent", "delivered")
    assert rows[(first.policy_id, "r-0000001", "sms")].status in ("sent", "delivered")  # the one before the reply
    assert sorted(r.recipient for r in sims.aliyun.records) == [phone(1), phone(2), phone(2)]  # r-1 heard once
    async with session_factory() as s:
        listed, total = await inbound_store.listed(s, cipher)
        raw = [dict(r) for r in (await s.execute(text("SELECT * FROM inbound_messages"))).mappings()]
    assert total == 2 and {(m["kind"], m["text"], m["profiles"]) for m in listed} == {
        ("opt_out", " ｔｄ ", 1), ("message", "不要退订，谢谢", 0)
    }
    assert all(phone(1) not in m["sender"] for m in listed)  # masked for staff
    for row in raw:  # neither the number nor the text is stored in clear
        assert not any(phone(1)[-8:] in str(v) or phone(2)[-8:] in str(v) or "退订" in str(v) for v in row.values())
    # the provider pushes the same SmsUp again (our answer was lost): recorded once
    pushed = sims.aliyun.pusher
    assert all(status == 200 for _, _, status in pushed.attempts)
    resp = await client.post(
        f"/callbacks/aliyun/{callback_secret(settings)}/sms-up",
        json=[{"phone_number": phone(1), "send_time": "2026-04-01 10:00:00", "content": "TD", "sequence_id": "77"}],
    )
    resp2 = await client.post(
        f"/callbacks/aliyun/{callback_secret(settings)}/sms-up",
        json=[{"phone_number": phone(1), "send_time": "2026-04-01 10:00:00", "content": "TD", "sequence_id": "77"}],
    )
    assert (resp.status, resp2.status) == (200, 200)
    async with session_factory() as s:
        assert (await inbound_store.listed(s, cipher))[1] == 3
    # staff read the replies over the API: token required, senders masked
    assert (await client.get("/api/v1/inbound-messages")).status == 401
    resp = await client.get("/api/v1/inbound-messages?kind=message", headers={"Authorization": "Bearer test-token"})
    page = await resp.json()
    assert resp.status == 200 and page["total"] == 1
    (item,) = page["items"]
    assert (item["text"], item["provider"], item["kind"]) == ("不要退订，谢谢", "aliyun_sms", "message")
    assert item["sender"] != phone(2) and item["sender"][-4:] == phone(2)[-4:]


async def test_tencent_replies_by_callback_and_pull_are_one(service, session_factory, cipher, http) -> None:
    _, sims, settings = service
    await seed_campaign(session_factory, cipher, settings, n=1, start=3, channel_of=lambda i: "sms")
    sims.tencent.reply(phone(3), "退订")
    await _drained(sims)
    assert await _opt_outs(session_factory) == {("r-0000003", "sms", "sms_uplink")}
    # the same reply is also in Tencent's pull queue: pulled, it is recognised and recorded once
    tencent = sim_settings(settings, sims, sms_providers="tencent")
    d = make_dispatcher(tencent, session_factory, cipher, http)
    report = await pull_tencent(session_factory, cipher, d.router, clock=d.clock, rules=d.rules, early_cap=100)
    assert report.replies == 1
    async with session_factory() as s:
        assert (await inbound_store.listed(s, cipher))[1] == 1
    # a reply that only the pull brings (the callback was lost) still opts out
    sims.tencent.config = dataclasses.replace(sims.tencent.config, reply_callback_url="")
    await seed_campaign(session_factory, cipher, settings, n=1, start=4, policy_seq=2, channel_of=lambda i: "sms")
    sims.tencent.reply(phone(4), "T")
    assert (await pull_tencent(session_factory, cipher, d.router, clock=d.clock, rules=d.rules, early_cap=100)).replies == 1
    assert ("r-0000004", "sms", "sms_uplink") in await _opt_outs(session_factory)


async def test_a_wechat_unfollow_stops_wechat_and_a_refollow_does_not_undo_it(service, session_factory, cipher, http) -> None:
    _, sims, settings = service
    await seed_campaign(session_factory, cipher, settings, n=2, start=11, channel_of=lambda i: "wechat", fallbacks=False)
    d = make_dispatcher(settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    await d.send_due()
    sims.wechat.follow_event(openid(11), "unsubscribe")
    await _drained(sims)
    assert await _opt_outs(session_factory) == {("r-0000011", "wechat", "wechat_unfollow")}
    sims.wechat.follow_event(openid(11), "subscribe")  # back, but that is not consent to be messaged again
    await _drained(sims)
    assert await _opt_outs(session_factory) == {("r-0000011", "wechat", "wechat_unfollow")}
    second = await seed_campaign(session_factory, cipher, settings, n=2, start=11, policy_seq=2, channel_of=lambda i: "wechat",
                                 fallbacks=False, existing_profiles=True)  # fmt: skip
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    await d.send_due()
    rows = await _rows(session_factory)
    assert (rows[(second.policy_id, "r-0000011", "wechat")].status, rows[(second.policy_id, "r-0000011", "wechat")].provider_code) \
        == ("cancelled", None)  # fmt: skip
    assert rows[(second.policy_id, "r-0000012", "wechat")].status in ("sent", "delivered")
    assert sorted(r.recipient for r in sims.wechat.records) == [openid(11), openid(12), openid(12)]
    async with session_factory() as s:
        kinds = sorted(m["kind"] for m in (await inbound_store.listed(s, cipher))[0])
    assert kinds == ["follow", "unfollow"]
    assert all(status == 200 for _, _, status in sims.wechat.pusher.attempts)


async def test_tencent_receipts_are_pulled(dispatch_settings, session_factory, cipher, sims, http) -> None:
    """No status callback configured: PullSmsSendStatus brings the reports, matched by SerialNo and phone."""
    settings = dispatch_settings.model_copy(update={"sms_providers": "tencent"})
    sims.tencent.set_scenario(phone(2), "receipt:MK:0001")
    await seed_campaign(session_factory, cipher, settings, n=3, channel_of=lambda i: "sms")
    d = make_dispatcher(settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    await d.send_due()
    assert {r.status for r in (await _rows(session_factory)).values()} == {"sent"}
    await asyncio.sleep(0.1)  # the carrier's report delay (scaled)
    report = await pull_tencent(session_factory, cipher, d.router, clock=d.clock, rules=d.rules, early_cap=100)
    assert report.receipts == 3
    st = {k[1:]: r.status for k, r in (await _rows(session_factory)).items()}
    assert st[("r-0000001", "sms")] == st[("r-0000003", "sms")] == "delivered"
    assert st[("r-0000002", "sms")] == "unreachable" and st[("r-0000002", "wechat")] == "created"  # + fallback
    assert (await pull_tencent(session_factory, cipher, d.router, clock=d.clock, rules=d.rules, early_cap=100)).receipts == 0


async def test_jpush_reports_are_pulled(dispatch_settings, session_factory, cipher, sims, http) -> None:
    sims.jpush.set_scenario(reg_id(2), "undelivered")
    await seed_campaign(session_factory, cipher, dispatch_settings, n=3, channel_of=lambda i: "app")
    d = make_dispatcher(dispatch_settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    await d.send_due()
    await asyncio.sleep(0.05)  # JPush's report delay (scaled)
    reports = build_jpush_reports(dispatch_settings, http, build_router(dispatch_settings, http))
    assert reports is not None
    # inside the push's time to live an undelivered device may still get it: only deliveries are recorded
    before = sims.jpush.http_requests
    got = await pull_jpush_reports(session_factory, cipher, reports, clock=d.clock, rules=d.rules, wait_s=0,
                                   time_to_live_s=86400)  # fmt: skip
    assert (got.asked, got.settled) == (3, 2)
    assert sims.jpush.http_requests - before == 1  # three single-device pushes: one received-count call
    st = {k[1:]: r.status for k, r in (await _rows(session_factory)).items()}
    assert st[("r-0000001", "app")] == st[("r-0000003", "app")] == "delivered" and st[("r-0000002", "app")] == "sent"
    # past it, not delivered is final: unreachable, and the next channel takes over
    got = await pull_jpush_reports(session_factory, cipher, reports, clock=d.clock, rules=d.rules, wait_s=0,
                                   time_to_live_s=0)  # fmt: skip
    assert (got.asked, got.settled) == (1, 1)
    st = {k[1:]: r.status for k, r in (await _rows(session_factory)).items()}
    assert st[("r-0000002", "app")] == "unreachable" and st[("r-0000002", "sms")] == "created"


async def test_a_wechat_send_answered_43004_is_an_unfollow_whose_event_never_came(service, session_factory, cipher, http) -> None:
    """WeChat gives up pushing an event after its retries: an unfollow whose every push failed is learnt
    from the next send to that person, answered 43004 "require subscribe", and recorded as the unfollow is."""
    _, sims, settings = service
    await seed_campaign(session_factory, cipher, settings, n=2, start=21, channel_of=lambda i: "wechat", fallbacks=False)
    d = make_dispatcher(settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    await d.send_due()
    # r-21 unfollows while nothing answers at our callback address: WeChat tries, then gives up
    live = sims.wechat.config
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/callbacks/wechat"
    sims.wechat.config = dataclasses.replace(live, callback_url=dead)
    sims.wechat.follow_event(openid(21), "unsubscribe")
    await _drained(sims)
    sims.wechat.config = live
    tries = [status for url, _, status in sims.wechat.pusher.attempts if url.startswith(dead)]
    assert tries == [0] * (1 + len(live.event_retry_delays_s))  # every push failed: given up
    assert await _opt_outs(session_factory) == set()  # the service does not know yet
    # a second campaign goes out; a third one's rows wait in the queue (planned for tomorrow)
    second = await seed_campaign(session_factory, cipher, settings, n=2, start=21, policy_seq=2, channel_of=lambda i: "wechat",
                                 fallbacks=False, existing_profiles=True)  # fmt: skip
    third = await seed_campaign(session_factory, cipher, settings, n=2, start=21, policy_seq=3, channel_of=lambda i: "wechat",
                                fallbacks=False, existing_profiles=True)  # fmt: skip
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    async with session_factory() as s, s.begin():
        await s.execute(update(DeliveryRow).where(DeliveryRow.policy_id == third.policy_id)
                        .values(not_before=d.clock.now() + dt.timedelta(days=1)))  # fmt: skip
    await d.send_due()
    rows = await _rows(session_factory)
    answered = rows[(second.policy_id, "r-0000021", "wechat")]
    assert (answered.status, answered.provider_code) == ("unreachable", "43004")
    assert rows[(second.policy_id, "r-0000022", "wechat")].status in ("sent", "delivered")
    assert await _opt_outs(session_factory) == {("r-0000021", "wechat", "wechat_not_following")}
    queued = rows[(third.policy_id, "r-0000021", "wechat")]
    assert (queued.status, queued.provider_code) == ("cancelled", None)  # cancelled, as after an unfollow
    assert rows[(third.policy_id, "r-0000022", "wechat")].status == "created"
    async with session_factory() as s:
        event = (await s.execute(select(DeliveryEventRow).where(DeliveryEventRow.delivery_id == queued.id)
                                 .order_by(DeliveryEventRow.id.desc()))).scalars().first()  # fmt: skip
    assert (event.source, event.code) == ("opt_out", "OPTED_OUT")
    # the person follows again: that is no consent to be messaged; the next campaign does not reach them
    sims.wechat.follow_event(openid(21), "subscribe")
    await _drained(sims)
    fourth = await seed_campaign(session_factory, cipher, settings, n=1, start=21, policy_seq=4, channel_of=lambda i: "wechat",
                                 fallbacks=False, existing_profiles=True)  # fmt: skip
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    await d.send_due()
    assert (await _rows(session_factory))[(fourth.policy_id, "r-0000021", "wechat")].status == "cancelled"
    assert await _opt_outs(session_factory) == {("r-0000021", "wechat", "wechat_not_following")}
    assert sorted(r.recipient for r in sims.wechat.records) == [openid(21), openid(22), openid(22)]
