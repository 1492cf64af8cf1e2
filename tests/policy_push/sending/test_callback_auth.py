"""Every provider callback authenticated and strictly matched, tried as an attacker would, over real HTTP to
the running app (``create_app``), with the simulators pushing the genuine callbacks.

Forged receipts (no secret, the wrong phone, another channel's delivery id), floods (40,000 items, deep
JSON, big bodies, the early-receipt cap), WeChat replays (old timestamps, the same signed request again:
applied once, the simulators' public token) and source allow-lists."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import secrets
import time
from typing import Any

import pytest
from sqlalchemy import func, select, text

from channels.signing import wechat_callback_signature
from policy_push.config import Settings
from policy_push.sending.providers import callback_secret, wechat_callback_token
from policy_push.sending.receipts import sweep_early_receipts
from policy_push.sending.starting import start_due_campaigns
from policy_push.storage.campaign_tables import DeliveryEventRow, DeliveryRow, EarlyReceiptRow
from policy_push.web import create_app
from policy_push.web.keys import settings_key

from .fixtures import make_dispatcher, sim_settings
from .seed import openid, phone, seed_campaign


async def _rows(sessions) -> dict[tuple[str, str], Any]:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        return {(r.profile_id, r.channel): r for r in (await s.execute(select(DeliveryRow))).scalars()}


async def _early_count(sessions) -> int:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(EarlyReceiptRow)) or 0)


def _report(phone_: str, biz_id: str, out_id: str = "", success: bool = False, code: str = "MK:0001") -> dict[str, Any]:
    return {"phone_number": phone_, "success": success, "err_code": code, "biz_id": biz_id, "out_id": out_id,
            "report_time": "2026-04-01 10:00:01"}  # fmt: skip


async def _send_sms_and_app(settings: Settings, sessions, cipher, http) -> None:  # type: ignore[no-untyped-def]
    """r-1 by SMS (Aliyun), r-2 by app (JPush): both ``sent``."""
    await seed_campaign(sessions, cipher, settings, n=1, channel_of=lambda i: "sms")
    await seed_campaign(sessions, cipher, settings, n=1, start=2, policy_seq=2, channel_of=lambda i: "app")
    d = make_dispatcher(settings, sessions, cipher, http)
    await start_due_campaigns(sessions, now=d.clock.now(), rules=d.rules)
    await d.send_due()


async def test_unsigned_callbacks_need_the_secret(service, session_factory) -> None:
    client, _, settings = service
    secret = callback_secret(settings)
    assert len(secret) >= 24
    body = json.dumps([_report(phone(1), "123^0")])
    for path in ("aliyun/{s}/sms-report", "aliyun/{s}/sms-up", "tencent/{s}/sms-status", "tencent/{s}/sms-reply"):
        for wrong in ("", "x", secret[:-1] + ("A" if secret[-1] != "A" else "B"), "sms-report"):
            resp = await client.post(f"/callbacks/{path.format(s=wrong)}", data=body)
            assert resp.status == 404, (path, wrong)
    resp = await client.post("/callbacks/aliyun/sms-report", data=body)  # the old, unauthenticated URL is gone
    assert resp.status == 404
    assert await _early_count(session_factory) == 0
    resp = await client.post(f"/callbacks/aliyun/{secret}/sms-report", data=body)
    assert resp.status == 200 and await _early_count(session_factory) == 1


async def test_a_forged_receipt_cannot_touch_another_row(service, session_factory, cipher, http) -> None:
    client, sims, settings = service
    # the genuine receipt never arrives: only the forged ones below
    sims.aliyun.config = dataclasses.replace(sims.aliyun.config, callback_url="")
    await _send_sms_and_app(settings, session_factory, cipher, http)
    rows = await _rows(session_factory)
    sms, app = rows[("r-0000001", "sms")], rows[("r-0000002", "app")]
    assert (sms.status, app.status) == ("sent", "sent")
    url = f"/callbacks/aliyun/{callback_secret(settings)}/sms-report"
    forged = [
        _report(phone(9), sms.provider_message_id),  # the right BizId, another phone
        _report(phone(2), "999^0", out_id=app.id),  # the app delivery's id as OutId (printed in its link)
        _report(phone(2), app.provider_message_id, out_id=app.id),  # the app push's msg_id, as an SMS receipt
        _report(phone(1), "999^0", out_id=sms.id),  # our own OutId with a BizId that is not the send's
    ]
    resp = await client.post(url, data=json.dumps(forged))
    assert resp.status == 200  # kept as early receipts (hashed): none of them matches a row
    rows = await _rows(session_factory)
    assert (rows[("r-0000001", "sms")].status, rows[("r-0000002", "app")].status) == ("sent", "sent")
    assert set(rows) == {("r-0000001", "sms"), ("r-0000002", "app")}  # no fallback was started
    # the genuine one (BizId and phone of the send) applies
    resp = await client.post(url, data=json.dumps([_report(phone(1), sms.provider_message_id, success=True, code="DELIVERED")]))
    assert resp.status == 200 and (await _rows(session_factory))[("r-0000001", "sms")].status == "delivered"


def _tencent_status(phone_: str, sid: str, status: str = "FAIL") -> dict[str, Any]:
    return {"user_receive_time": "2026-04-01 10:00:01", "nationcode": "86", "mobile": phone_, "report_status": status,
            "errmsg": "DELIVRD" if status == "SUCCESS" else "MK:0001", "description": "", "sid": sid}  # fmt: skip


async def test_a_forged_tencent_status_cannot_touch_another_row(
    service, session_factory, cipher, http
) -> None:
    """The Tencent status callback (new with issue 11) is matched as strictly as Aliyun's SmsReport."""
    client, sims, settings = service
    tencent = sim_settings(settings, sims, sms_providers="tencent")
    # only the forged ones arrive
    sims.tencent.config = dataclasses.replace(sims.tencent.config, callback_url="")
    await _send_sms_and_app(tencent, session_factory, cipher, http)
    rows = await _rows(session_factory)
    sms, app = rows[("r-0000001", "sms")], rows[("r-0000002", "app")]
    assert (sms.status, sms.provider, app.status) == ("sent", "tencent_sms", "sent")
    url = f"/callbacks/tencent/{callback_secret(settings)}/sms-status"
    forged = [
        _tencent_status(phone(9), sms.provider_message_id),  # the right SerialNo, another phone
        _tencent_status(phone(2), app.provider_message_id),  # the app push's msg_id as a SerialNo
        _tencent_status(phone(1), "2433:9999999999999999"),  # the right phone, a SerialNo not of the send
    ]
    resp = await client.post(url, data=json.dumps(forged))
    assert resp.status == 200  # kept as early receipts (hashed): none of them matches a row
    rows = await _rows(session_factory)
    assert (rows[("r-0000001", "sms")].status, rows[("r-0000002", "app")].status) == ("sent", "sent")
    assert set(rows) == {("r-0000001", "sms"), ("r-0000002", "app")}  # no fallback was started
    # an Aliyun report with the Tencent send's id and phone: another provider, not applied either
    resp = await client.post(f"/callbacks/aliyun/{callback_secret(settings)}/sms-report",
                             data=json.dumps([_report(phone(1), sms.provider_message_id)]))  # fmt: skip
    assert resp.status == 200 and (await _rows(session_factory))[("r-0000001", "sms")].status == "sent"
    # the genuine one (SerialNo and phone of the send) applies
    genuine = _tencent_status(phone(1), sms.provider_message_id, "SUCCESS")
    resp = await client.post(url, data=json.dumps([genuine]))
    assert resp.status == 200 and (await _rows(session_factory))[("r-0000001", "sms")].status == "delivered"


async def test_floods_are_refused_before_anything_is_applied(service, session_factory) -> None:
    client, _, settings = service
    url = f"/callbacks/aliyun/{callback_secret(settings)}/sms-report"
    many = [_report(phone(i), f"{i}^0") for i in range(40_000)]
    started = time.perf_counter()
    resp = await client.post(url, data=io.BytesIO(json.dumps(many).encode()))
    assert resp.status == 413 and time.perf_counter() - started < 5
    resp = await client.post(url, data=json.dumps(many[:101]))
    assert resp.status == 413 and "at most 100" in (await resp.json())["errors"][0]["msg"]
    resp = await client.post(url, data=io.BytesIO(b"[" * 100_000 + b"]" * 100_000))
    assert resp.status in (400, 413)
    resp = await client.post(url, data=b"[" * 20_000 + b"]" * 20_000)
    assert resp.status == 400  # deep nesting: refused, never a RecursionError 500
    resp = await client.post(url, data=io.BytesIO(b" " * (300 * 1024)))
    assert resp.status == 413
    assert await _early_count(session_factory) == 0
    tencent = f"/callbacks/tencent/{callback_secret(settings)}/sms-status"
    resp = await client.post(tencent, data=json.dumps([{"sid": str(i), "report_status": "SUCCESS", "mobile": phone(i),
                                                       "nationcode": "86"} for i in range(101)]))  # fmt: skip
    assert resp.status == 413


async def test_early_receipts_are_capped(aiohttp_client, db_settings, engine, session_factory) -> None:
    client = await aiohttp_client(create_app(db_settings.model_copy(update={"early_receipt_cap": 3}), engine=engine))
    url = f"/callbacks/aliyun/{callback_secret(client.app[settings_key])}/sms-report"
    resp = await client.post(url, data=json.dumps([_report(phone(i), f"{i}^0") for i in range(2)]))
    assert resp.status == 200 and await _early_count(session_factory) == 2
    resp = await client.post(url, data=json.dumps([_report(phone(i), f"{i}^0") for i in range(10, 13)]))
    assert resp.status == 500  # only one more could be kept: not acknowledged, the provider pushes again
    assert await _early_count(session_factory) == 3


async def test_source_allow_list(aiohttp_client, db_settings, engine) -> None:
    client = await aiohttp_client(create_app(db_settings.model_copy(update={"callback_allow_sources": "203.0.113.0/24"}),
                                             engine=engine))  # fmt: skip
    url = f"/callbacks/aliyun/{callback_secret(client.app[settings_key])}/sms-report"
    resp = await client.post(url, data=json.dumps([_report(phone(1), "1^0")]))
    assert resp.status == 403  # loopback is not in the list
    with pytest.raises(ValueError, match="not an IP network"):
        Settings(callback_allow_sources="10.0.0.0/8,not-a-net")


def _event(openid_: str, event: str = "unsubscribe", created: int | None = None) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[gh_sim]]></ToUserName><FromUserName><![CDATA[{openid_}]]></FromUserName>"
        f"<CreateTime>{created or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event></xml>"
    ).encode()


def _query(token: str, stamp: int, nonce: str) -> str:
    return f"signature={wechat_callback_signature(token, str(stamp), nonce)}&timestamp={stamp}&nonce={nonce}"


async def test_wechat_pushes_are_signed_fresh_and_not_replayed(service, session_factory) -> None:
    client, _, settings = service
    token = wechat_callback_token(settings)
    assert token != "sim-callback-token" and len(token) >= 24  # a random token per run, never the public one
    body = _event(openid(5), "subscribe")
    now = int(time.time())
    resp = await client.post(f"/callbacks/wechat?{_query('sim-callback-token', now, 'n1')}", data=body)
    assert resp.status == 403  # signed with the simulators' public token
    old = 1_688_000_000  # 2023
    for _ in range(3):
        resp = await client.post(f"/callbacks/wechat?{_query(token, old, 'n2')}", data=_event(openid(5), created=old))
        assert resp.status == 403  # a 2023 timestamp, correctly signed: a replay
    resp = await client.post(f"/callbacks/wechat?{_query(token, now + 3600, 'n3')}", data=body)
    assert resp.status == 403  # from the future
    unfollow = _event(openid(5))
    fresh = _query(token, now, secrets.token_hex(5))
    resp = await client.post(f"/callbacks/wechat?{fresh}", data=unfollow)
    assert resp.status == 200 and await resp.text() == "success"
    async with session_factory() as s:
        events = await s.scalar(select(func.count()).select_from(DeliveryEventRow))
        inbound = await s.scalar(text("SELECT count(*) FROM inbound_messages"))
    # the same signed request again (WeChat's retry after a slow answer, or an attacker's copy): acknowledged,
    # applied only once
    for _ in range(3):
        resp = await client.post(f"/callbacks/wechat?{fresh}", data=unfollow)
        assert resp.status == 200
    async with session_factory() as s:
        assert await s.scalar(text("SELECT count(*) FROM inbound_messages")) == inbound == 1
        assert await s.scalar(select(func.count()).select_from(DeliveryEventRow)) == events
    huge = body.replace(str(now).encode(), b"99999999999999999999")
    resp = await client.post(f"/callbacks/wechat?{_query(token, now, 'n4')}", data=huge)
    assert resp.status in (200, 400)  # a CreateTime no clock can hold: never a 500
    resp = await client.get(f"/callbacks/wechat?{_query(token, old, 'n5')}&echostr=e")
    assert resp.status == 403


async def test_genuine_pushes_of_every_provider_arrive(service, session_factory, cipher, http) -> None:
    """The simulators' own pushes (Aliyun SmsReport, Tencent status callback, WeChat events) pass the checks."""
    _, sims, settings = service
    await seed_campaign(session_factory, cipher, settings, n=2, channel_of=lambda i: "sms")
    await seed_campaign(session_factory, cipher, settings, n=1, start=3, policy_seq=2, channel_of=lambda i: "wechat")
    d = make_dispatcher(settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    await d.send_due()
    tencent = sim_settings(settings, sims, sms_providers="tencent")
    await seed_campaign(session_factory, cipher, tencent, n=1, start=5, policy_seq=3, channel_of=lambda i: "sms")
    d2 = make_dispatcher(tencent, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d2.clock.now(), rules=d2.rules)
    await d2.send_due()
    for _ in range(20):
        await asyncio.sleep(0.2)
        # a receipt that outran our record of its send is kept; the settle tick's sweep applies it
        await sweep_early_receipts(session_factory, now=d.clock.now(), rules=d.rules)
        rows = await _rows(session_factory)
        if all(r.status == "delivered" for r in rows.values()):
            break
    assert {k: r.status for k, r in rows.items()} == {
        ("r-0000001", "sms"): "delivered", ("r-0000002", "sms"): "delivered", ("r-0000003", "wechat"): "delivered",
        ("r-0000005", "sms"): "delivered",
    }  # fmt: skip
    assert rows[("r-0000005", "sms")].provider == "tencent_sms"
    pushes = sims.aliyun.pusher.attempts + sims.tencent.pusher.attempts + sims.wechat.pusher.attempts
    assert pushes and all(status == 200 for _, _, status in pushes)


async def test_the_access_log_never_shows_the_secret(aiohttp_server, aiohttp_client, db_settings, engine, caplog) -> None:
    """``serve`` logs requests with ``AccessLogger``: the callback secret and query strings stay out."""
    from policy_push.web.access import AccessLogger

    caplog.set_level("INFO", logger="policy_push.access")
    server = await aiohttp_server(create_app(db_settings, engine=engine), access_log_class=AccessLogger)
    client = await aiohttp_client(server)
    secret = callback_secret(client.app[settings_key])
    await client.post(f"/callbacks/aliyun/{secret}/sms-report", data=json.dumps([_report(phone(1), "1^0")]))
    await client.get("/callbacks/wechat?signature=abc&timestamp=1&nonce=2&echostr=x")
    lines = [r.getMessage() for r in caplog.records if r.name == "policy_push.access"]
    assert len(lines) == 2 and "/callbacks/aliyun/{secret}/sms-report" in lines[0]
    assert not any(secret in line or "signature" in line for line in lines)


async def test_wechat_safe_mode_unfollow(aiohttp_client, db_settings, engine, session_factory, cipher) -> None:
    """Safe mode (encrypt_type=aes, msg_signature): the simulator encrypts, the app opens it and applies it."""
    from pydantic import SecretStr

    from channels.simulators import WechatSimConfig, WechatSimulator
    from policy_push.storage.campaign_tables import OptOutRow

    key = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
    client = await aiohttp_client(create_app(db_settings.model_copy(update={"wechat_encoding_aes_key": SecretStr(key)}),
                                             engine=engine))  # fmt: skip
    token = wechat_callback_token(client.app[settings_key])
    await seed_campaign(session_factory, cipher, db_settings, n=1, start=7, channel_of=lambda i: "wechat")
    sim = WechatSimulator(WechatSimConfig(callback_url=str(client.make_url("/callbacks/wechat")), callback_token=token,
                                          encoding_aes_key=key, time_factor=0.001))  # fmt: skip
    await sim.start()
    try:
        sim.follow_event(openid(7), "unsubscribe")
        await sim.pusher.drain()
        assert [status for _, _, status in sim.pusher.attempts] == [200]
    finally:
        await sim.close()
    async with session_factory() as s:
        got = {(o.profile_id, o.channel, o.source) for o in (await s.execute(select(OptOutRow))).scalars()}
    assert got == {("r-0000007", "wechat", "wechat_unfollow")}
    # an encrypted push with a wrong msg_signature is refused
    resp = await client.post(f"/callbacks/wechat?encrypt_type=aes&msg_signature=bad&timestamp={int(time.time())}&nonce=1",
                             data=b"<xml><Encrypt><![CDATA[AAAA]]></Encrypt></xml>")  # fmt: skip
    assert resp.status == 403
