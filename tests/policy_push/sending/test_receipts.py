"""Receipts pushed by the simulators to the callback views over loopback, applied in batches."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text

from channels import Outcome, SendResult
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
from policy_push.sending import Dispatcher, Pipeline, SendRules
from policy_push.sending import recording as recording_module
from policy_push.sending.claims import Claim, Outgoing, claim
from policy_push.sending.providers import (
    callback_secret,
    callback_urls,
    wechat_callback_token,
    with_run_secrets,
)
from policy_push.sending.receipts import sweep_early_receipts
from policy_push.sending.starting import start_due_campaigns
from policy_push.storage.campaign_tables import DeliveryEventRow, DeliveryRow, EarlyReceiptRow

from .fixtures import callback_app, make_dispatcher, sim_settings
from .seed import openid, phone, seed_campaign


@pytest.fixture
async def wired(db_settings, session_factory, cipher):  # type: ignore[no-untyped-def]
    """A callback server, and simulators that push receipts to it."""
    settings = with_run_secrets(db_settings.model_copy(update={"quiet_hours": ""}))
    server = TestServer(callback_app(settings, session_factory, cipher), host="127.0.0.1")
    client = TestClient(server)
    await client.start_server()
    urls = callback_urls(settings, str(server.make_url("")).rstrip("/"))
    sims = SimulatorSet(
        aliyun=AliyunSimulator(AliyunSimConfig(callback_url=urls["aliyun"], time_factor=0.01,
                                               receipt_scenarios={phone(3): "MK:0001"})),
        tencent=TencentSimulator(),
        wechat=WechatSimulator(WechatSimConfig(callback_url=urls["wechat"], time_factor=0.05, users={openid(12): "blocked"},
                                               callback_token=wechat_callback_token(settings))),
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


async def _early_rows(sessions) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The raw rows of ``early_receipts``, every column, as stored."""
    async with sessions() as s:
        return [dict(r) for r in (await s.execute(text("SELECT * FROM early_receipts ORDER BY id"))).mappings()]


def _wechat_event(openid_: str, msg_id: str, status: str = "success") -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[gh_sim]]></ToUserName><FromUserName><![CDATA[{openid_}]]></FromUserName>"
        f"<CreateTime>1775008800</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>{msg_id}</MsgID>"
        f"<Status><![CDATA[{status}]]></Status></xml>"
    ).encode()


def _signed(settings: Any, nonce: str = "2") -> str:
    """The query string of a WeChat push signed with the service's token, stamped now."""
    stamp = str(int(time.time()))
    sig = wechat_callback_signature(wechat_callback_token(settings), stamp, nonce)
    return f"signature={sig}&timestamp={stamp}&nonce={nonce}"


async def _post_wechat(client: TestClient, settings: Any, body: bytes, nonce: str = "") -> tuple[int, str]:
    resp = await client.post(f"/callbacks/wechat?{_signed(settings, nonce or secrets.token_hex(5))}", data=body)
    return resp.status, await resp.text()


def _report_url(settings: Any) -> str:
    return f"/callbacks/aliyun/{callback_secret(settings)}/sms-report"


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
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
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
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    await d.send_due()
    await _drain(sims)
    rec = sims.aliyun.records[0]
    report = [{"phone_number": rec.recipient, "success": False, "err_code": "MK:0001", "biz_id": rec.message_id,
               "out_id": rec.delivery_id, "report_time": "2026-04-01 10:00:01"}]  # fmt: skip
    resp = await client.post(_report_url(settings), data=json.dumps(report))
    assert resp.status == 200 and (await resp.json())["code"] == 0  # a late contradicting report: acknowledged ...
    assert (await _statuses(session_factory))[("r-0000001", "sms")] == "delivered"  # ... and final stays final
    async with session_factory() as s:
        last = (await s.execute(select(DeliveryEventRow).order_by(DeliveryEventRow.id.desc()).limit(1))).scalar_one()
    assert (last.source, last.to_status, last.code) == ("receipt", None, "ignored:unreachable")
    unknown = [{"phone_number": "13900000000", "success": True, "biz_id": "nope^0", "out_id": ""}]
    resp = await client.post(_report_url(settings), data=json.dumps(unknown))
    assert resp.status == 200 and (await resp.json())["code"] == 0  # kept as an early receipt: acknowledged
    assert [(r["provider_message_id"], r["recipient_hash"]) for r in await _early_rows(session_factory)] == [
        ("nope^0", cipher.lookup_hash("phone", "13900000000"))
    ]
    nothing_to_keep = [{"phone_number": "13900000000", "success": True, "biz_id": "", "out_id": ""}]
    resp = await client.post(_report_url(settings), data=json.dumps(nothing_to_keep))
    # no id to match it by, ever: refused (a 400 names the fault; a 500 would be a fault of ours, issue 10)
    assert resp.status == 400
    resp = await client.post(_report_url(settings), data=b"{not json")
    assert resp.status == 400


async def test_wechat_signature_is_checked(wired) -> None:
    _, client, settings = wired
    xml = b"<xml><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>1</MsgID></xml>"
    resp = await client.post(f"/callbacks/wechat?signature=bad&timestamp={int(time.time())}&nonce=2", data=xml)
    assert resp.status == 403
    resp = await client.get(f"/callbacks/wechat?{_signed(settings)}&echostr=hello")
    assert await resp.text() == "hello"
    other = b"<xml><MsgType><![CDATA[image]]></MsgType></xml>"
    resp = await client.post(f"/callbacks/wechat?{_signed(settings)}", data=other)
    assert resp.status == 200 and await resp.text() == "success"


# ---- receipts that outrun our record of the send ------------------------------------------------


def _no_plaintext(rows: Sequence[Mapping[str, Any]], addresses: Sequence[str]) -> None:
    """No stored value carries a phone number or openid in clear (personal data never is)."""
    for row in rows:
        for value in row.values():
            assert not any(a in str(value) or a[-8:] in str(value) for a in addresses), row


async def test_receipts_before_the_send_record_are_kept_then_applied(wired, session_factory, cipher, http) -> None:
    sims, _, settings = wired
    await seed_campaign(session_factory, cipher, settings, n=3)  # r-1..3: one SMS batch send, one shared BizId
    await seed_campaign(session_factory, cipher, settings, n=2, start=11, policy_seq=2, channel_of=lambda i: "wechat")
    d = make_dispatcher(settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    record = d._record
    kept: list[dict[str, Any]] = []

    async def record_late(claim_id: str, rows: list[Outgoing], results: Mapping[str, SendResult], *args: Any, **kw: Any) -> bool:
        # every receipt of these sends reaches the callbacks before our record of the sends
        await _drain(sims)
        kept.extend(await _early_rows(session_factory))
        return await record(claim_id, rows, results, *args, **kw)

    d._record = record_late  # type: ignore[method-assign]
    await d.send_due()
    assert {r["provider"] for r in kept} == {"aliyun_sms", "wechat"}
    hashes = {cipher.lookup_hash("phone", phone(i)) for i in (1, 2, 3)} | {
        cipher.lookup_hash("wechat_openid", openid(i)) for i in (11, 12)
    }
    assert {r["recipient_hash"] for r in kept} == hashes
    _no_plaintext(kept, [phone(i) for i in (1, 2, 3)] + [openid(i) for i in (11, 12)])
    # each push was acknowledged the first time: nothing left for the providers' short retry lists
    pushes = sims.aliyun.pusher.attempts + sims.wechat.pusher.attempts
    assert pushes and all((attempt, status) == (1, 200) for _, attempt, status in pushes)
    st = await _statuses(session_factory)
    assert st[("r-0000001", "sms")] == st[("r-0000002", "sms")] == "delivered"  # told apart by the phone's hash
    assert st[("r-0000003", "sms")] == "unreachable" and st[("r-0000003", "wechat")] == "created"  # + fallback
    assert st[("r-0000011", "wechat")] == "delivered"
    assert st[("r-0000012", "wechat")] == "unreachable" and st[("r-0000012", "sms")] == "created"
    assert await _early_rows(session_factory) == []  # applied ones are deleted


async def _sending(d: Dispatcher, sessions, cipher) -> Claim:  # type: ignore[no-untyped-def]
    taken = await claim(sessions, cipher, now=d.clock.now(), worker=d.worker_id, limit=10, rules=d.rules,
                        providers={"wechat": "wechat"})  # fmt: skip
    assert taken is not None
    return taken


def _accepted(batch: Claim, prefix: str) -> dict[str, SendResult]:
    return {o.row.id: SendResult(o.row.id, Outcome.ACCEPTED, "wechat", provider_message_id=f"{prefix}{o.row.profile_id}")
            for o in batch.rows}  # fmt: skip


async def test_early_event_is_acknowledged_and_kept_hashed(wired, session_factory, cipher) -> None:
    _, client, settings = wired
    status, body = await _post_wechat(client, settings, _wechat_event(openid(31), "4711"))
    assert (status, body) == (200, "success")  # stored, so acknowledged: WeChat stops pushing
    rows = await _early_rows(session_factory)
    assert [(r["provider"], r["provider_message_id"], r["code"]) for r in rows] == [("wechat", "4711", "success")]
    assert rows[0]["recipient_hash"] == cipher.lookup_hash("wechat_openid", openid(31))
    assert bool(rows[0]["delivered"]) and rows[0]["outcome"] == "accepted"
    _no_plaintext(rows, [openid(31)])
    status, _ = await _post_wechat(client, settings, _wechat_event(openid(31), ""))
    assert status == 500  # no MsgID: nothing could ever match it, so it is not acknowledged


async def test_settle_sweep_applies_an_early_receipt_that_raced_the_record(
    wired, session_factory, cipher, http, monkeypatch
) -> None:
    _, client, settings = wired
    await seed_campaign(session_factory, cipher, settings, n=1, start=21, channel_of=lambda i: "wechat")
    d = make_dispatcher(settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    batch = await _sending(d, session_factory, cipher)
    assert await _post_wechat(client, settings, _wechat_event(openid(21), "m-r-0000021")) == (200, "success")

    # the receipt was stored while the results transaction was open (PostgreSQL): that
    # transaction cannot see it, so its own look-up finds nothing
    async def sees_nothing(*args: object, **kwargs: object) -> None:
        return None

    monkeypatch.setattr(recording_module, "apply_early_receipts", sees_nothing)
    assert await d._record(batch.id, batch.rows, _accepted(batch, "m-"), [])
    assert (await _statuses(session_factory))[("r-0000021", "wechat")] == "sent"
    assert len(await _early_rows(session_factory)) == 1
    pipeline = Pipeline(settings, session_factory, cipher, d.router, d.clock, d.rules, d)
    await pipeline.settle_lapsed()
    assert (await _statuses(session_factory))[("r-0000021", "wechat")] == "delivered"
    assert await _early_rows(session_factory) == []


async def test_early_receipt_for_a_final_row_changes_nothing(wired, session_factory, cipher, http, monkeypatch) -> None:
    _, client, settings = wired
    await seed_campaign(session_factory, cipher, settings, n=1, start=22, channel_of=lambda i: "wechat")
    d = make_dispatcher(settings, session_factory, cipher, http)
    await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
    batch = await _sending(d, session_factory, cipher)
    # an early failure is kept, and (racing the record) not applied with it ...
    assert await _post_wechat(client, settings, _wechat_event(openid(22), "m-r-0000022", "failed:user block")) == (200, "success")

    async def sees_nothing(*args: object, **kwargs: object) -> None:
        return None

    monkeypatch.setattr(recording_module, "apply_early_receipts", sees_nothing)
    assert await d._record(batch.id, batch.rows, _accepted(batch, "m-"), [])
    # ... then a later push finalises the row directly
    assert await _post_wechat(client, settings, _wechat_event(openid(22), "m-r-0000022", "success")) == (200, "success")
    assert (await _statuses(session_factory))[("r-0000022", "wechat")] == "delivered"
    await Pipeline(settings, session_factory, cipher, d.router, d.clock, d.rules, d).settle_lapsed()
    st = await _statuses(session_factory)
    assert st == {("r-0000022", "wechat"): "delivered"}  # final stays final, and no fallback was started
    async with session_factory() as s:
        last = (await s.execute(select(DeliveryEventRow).order_by(DeliveryEventRow.id.desc()).limit(1))).scalar_one()
    assert (last.source, last.to_status, last.code) == ("receipt", None, "ignored:unreachable")
    assert await _early_rows(session_factory) == []  # looked at once, recorded as an event, gone


async def test_settle_sweep_drops_early_receipts_after_a_week(wired, session_factory, cipher, caplog) -> None:
    _, client, settings = wired
    assert await _post_wechat(client, settings, _wechat_event(openid(41), "never-recorded")) == (200, "success")
    async with session_factory() as s:
        received = (await s.execute(select(EarlyReceiptRow.received_at))).scalar_one()
    rules = SendRules.from_settings(settings)
    await sweep_early_receipts(session_factory, now=received + timedelta(days=6), rules=rules)
    assert len(await _early_rows(session_factory)) == 1  # its send may still be recorded
    caplog.set_level("WARNING", logger="policy_push.receipts")
    await sweep_early_receipts(session_factory, now=received + timedelta(days=8), rules=rules)
    assert await _early_rows(session_factory) == []
    assert "dropped 1 early receipt(s)" in caplog.text
