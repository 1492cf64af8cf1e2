"""Receipts pushed by the simulators to the callback views over loopback, applied in batches."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from channels.signing import wechat_callback_signature
from channels.simulators import (
    AliyunSimConfig,
    AliyunSimulator,
    JPushSimulator,
    SimulatorSet,
    TencentSimulator,
    WechatSimConfig,
    WechatSimulator,
)
from policy_push.storage.campaign_tables import DeliveryEventRow, DeliveryRow
from policy_push.workflow.starting import start_due_campaigns

from .dispatch_fixtures import callback_app, make_dispatcher, sim_settings
from .seed import always_approved, openid, phone, seed_campaign


@pytest.fixture
async def wired(db_settings, session_factory, cipher):  # type: ignore[no-untyped-def]
    """A callback server, and simulators that push receipts to it."""
    settings = db_settings.model_copy(update={"quiet_hours": ""})
    server = TestServer(callback_app(settings, session_factory, cipher), host="127.0.0.1")
    client = TestClient(server)
    await client.start_server()
    base = str(server.make_url(""))
    sims = SimulatorSet(
        aliyun=AliyunSimulator(AliyunSimConfig(callback_url=f"{base}/callbacks/aliyun/sms-report", time_factor=0.01,
                                               receipt_scenarios={phone(3): "MK:0001"})),
        tencent=TencentSimulator(),
        wechat=WechatSimulator(WechatSimConfig(callback_url=f"{base}/callbacks/wechat", time_factor=0.05,
                                               users={openid(12): "blocked"})),
        jpush=JPushSimulator(),
    )  # fmt: skip
    for sim in sims.all.values():
        await sim.start()
    try:
        yield sims, client, sim_settings(settings, sims)
    finally:
        await sims.close()
        await client.close()


async def _statuses(sessions) -> dict[tuple[str, str], str]:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        return {(r.profile_id, r.channel): r.status for r in (await s.execute(select(DeliveryRow))).scalars()}


async def _drain(sims: SimulatorSet) -> None:
    for _ in range(3):
        await asyncio.sleep(0.3)
        await sims.aliyun.pusher.drain()
        await sims.wechat.pusher.drain()


async def test_receipts_move_sent_rows_and_failures_fall_back(wired, session_factory, cipher, http) -> None:
    sims, _, settings = wired
    await seed_campaign(session_factory, cipher, settings, n=5)  # r-1..5 by SMS (a batch send)
    await seed_campaign(session_factory, cipher, settings, n=3, start=11, policy_seq=2, channel_of=lambda i: "wechat")
    d = make_dispatcher(settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules, verify=always_approved)
    await d.send_due()
    await _drain(sims)
    st = await _statuses(session_factory)
    assert st[("r-0000001", "sms")] == "delivered"
    assert st[("r-0000003", "sms")] == "unreachable"  # failed carrier receipt (empty number)
    assert st[("r-0000003", "wechat")] == "created"  # ... so the next channel of the preference is tried
    assert st[("r-0000011", "wechat")] == "delivered"
    assert st[("r-0000012", "wechat")] == "unreachable"  # the user blocks the account
    assert st[("r-0000012", "sms")] == "created"
    assert sum(1 for v in st.values() if v == "delivered") == 6


async def test_duplicate_and_unknown_reports(wired, session_factory, cipher, http) -> None:
    sims, client, settings = wired
    await seed_campaign(session_factory, cipher, settings, n=1)
    d = make_dispatcher(settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules, verify=always_approved)
    await d.send_due()
    await _drain(sims)
    rec = sims.aliyun.records[0]
    report = [{"phone_number": rec.recipient, "success": False, "err_code": "MK:0001", "biz_id": rec.message_id,
               "out_id": rec.delivery_id, "report_time": "2026-04-01 10:00:01"}]  # fmt: skip
    resp = await client.post("/callbacks/aliyun/sms-report", data=json.dumps(report))
    assert resp.status == 200 and (await resp.json())["code"] == 0  # a late contradicting report: acknowledged ...
    assert (await _statuses(session_factory))[("r-0000001", "sms")] == "delivered"  # ... and final stays final
    async with session_factory() as s:
        last = (await s.execute(select(DeliveryEventRow).order_by(DeliveryEventRow.id.desc()).limit(1))).scalar_one()
    assert (last.source, last.to_status, last.code) == ("receipt", None, "ignored:unreachable")
    unknown = [{"phone_number": "13900000000", "success": True, "biz_id": "nope^0", "out_id": ""}]
    resp = await client.post("/callbacks/aliyun/sms-report", data=json.dumps(unknown))
    assert resp.status == 500  # not acknowledged: Aliyun pushes it again later
    resp = await client.post("/callbacks/aliyun/sms-report", data=b"{not json")
    assert resp.status == 400


async def test_wechat_signature_is_checked(wired) -> None:
    _, client, _ = wired
    xml = b"<xml><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>1</MsgID></xml>"
    resp = await client.post("/callbacks/wechat?signature=bad&timestamp=1&nonce=2", data=xml)
    assert resp.status == 403
    sig = wechat_callback_signature("sim-callback-token", "1", "2")
    resp = await client.get(f"/callbacks/wechat?signature={sig}&timestamp=1&nonce=2&echostr=hello")
    assert await resp.text() == "hello"
    other = b"<xml><MsgType><![CDATA[text]]></MsgType></xml>"
    resp = await client.post(f"/callbacks/wechat?signature={sig}&timestamp=1&nonce=2", data=other)
    assert resp.status == 200 and await resp.text() == "success"
