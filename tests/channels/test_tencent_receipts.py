"""Tencent receipts every way Tencent gives them: the status callback, both pulls, and settle."""

from __future__ import annotations

import asyncio
import time

import pytest

from channels import (
    Inquiry,
    Outcome,
    ProtocolError,
    ReplyKind,
    TencentSms,
    TencentSmsConfig,
    TencentTemplate,
    delivery_ids_of_context,
    parse_tencent_status_callback,
    session_context_for,
)
from channels.simulators import Faults, TencentSimConfig, TencentSimulator
from tests.channels.helpers import phone, sms

TEMPLATES = {"policy_notice": TencentTemplate("2000001", ("title", "benefit", "deadline", "reason", "link"))}


def adapter(sim: TencentSimulator, session, timeout_s: float = 2.0) -> TencentSms:  # type: ignore[no-untyped-def]
    config = TencentSmsConfig("sim-secret-id", "sim-secret-key", "1400000001", "盘锦政务", TEMPLATES,
                              base_url=sim.url + "/", timeout_s=timeout_s)  # fmt: skip
    return TencentSms(config, session)


async def test_status_callback_names_the_serial_of_each_send(start_sim, receiver, session) -> None:
    receiver.answer_body = b'{"result": 0, "errmsg": "OK"}'
    sim = await start_sim(
        TencentSimulator,
        TencentSimConfig(callback_url=receiver.url, receipt_delay_s=0.01, receipt_scenarios={phone(2): "MK:0001"}),
    )
    results = await adapter(sim, session).send([sms(1), sms(2)])
    await receiver.wait_for(1)
    receipts = {r.recipient: r for body in receiver.bodies for r in parse_tencent_status_callback(body)}
    assert receipts[phone(1)].provider_message_id == results[0].provider_message_id
    assert (receipts[phone(1)].delivered, receipts[phone(1)].outcome, receipts[phone(1)].code) == (True, Outcome.ACCEPTED, "DELIVRD")
    assert (receipts[phone(2)].delivered, receipts[phone(2)].outcome) == (False, Outcome.UNREACHABLE)
    assert receipts[phone(1)].reported_at is not None
    await sim.pusher.drain()
    assert [a[1:] for a in sim.pusher.attempts] == [(1, 200)]  # acknowledged first time


async def test_pull_queue_names_delivery_ids_and_hands_each_report_out_once(start_sim, session) -> None:
    sim = await start_sim(TencentSimulator, TencentSimConfig(receipt_delay_s=0.01))
    ch = adapter(sim, session)
    await ch.send([sms(1, reason="只发一条")])  # alone in its call
    await ch.send([sms(2), sms(3)])  # share a call: identical parameters
    await asyncio.sleep(0.1)
    receipts = {r.recipient: r for r in await ch.pull_send_status()}
    assert receipts[phone(1)].delivery_id == "d-1" and receipts[phone(1)].context_ids == ()
    assert receipts[phone(2)].delivery_id == "" and receipts[phone(2)].context_ids == ("d-2", "d-3")
    assert all(r.delivered for r in receipts.values())
    assert await ch.pull_send_status() == []


async def test_pull_by_phone_and_settle_after_a_timeout(start_sim, session) -> None:
    sim = await start_sim(TencentSimulator, TencentSimConfig(receipt_delay_s=0.8), faults=Faults(timeout_rate=1.0, hang_s=2.0))
    ch = adapter(sim, session, timeout_s=0.3)
    [lost] = await ch.send([sms(1)])
    assert lost.outcome is Outcome.RETRYABLE and lost.maybe_sent
    # before the carrier reports, Tencent has nothing to show: the query cannot tell
    [early] = await ch.query([Inquiry("d-1", phone(1))])
    assert early.sent is None
    await asyncio.sleep(0.8)
    [settled] = await ch.query([Inquiry("d-1", phone(1))])
    assert settled.sent is True and settled.provider == "tencent_sms"
    assert settled.provider_message_id == sim.records[0].message_id
    # a message never sent stays unknown: no record cannot prove it was not sent
    [never] = await ch.query([Inquiry("d-2", phone(2))])
    assert never.sent is None
    [row] = await ch.pull_send_status_by_phone(phone(1), time.time() - 60)
    assert row.delivery_id == "d-1"
    # the lookup behind settle, in the shape of an inquiry: sent, SerialNo and the carrier's verdict
    from datetime import UTC, datetime

    # the first whole second after the simulator recorded the send (Tencent's times are whole seconds), not "now":
    # on a loaded machine the send can be recorded late enough to fall in the second "now" was cut to
    after = datetime.fromtimestamp(int(sim.records[0].at) + 1, UTC)
    found = await ch.find_send(phone(1), "d-1", since=after)
    assert found.sent is None  # sent before "since": outside the window asked about
    found = await ch.find_send(phone(1), "d-1", since=datetime.fromtimestamp(time.time() - 60, UTC))
    assert (found.sent, found.serial_no) == (True, sim.records[0].message_id)
    assert found.receipt is not None and found.receipt.delivered


async def test_pulls_report_errors_as_channel_errors(start_sim, session) -> None:
    sim = await start_sim(TencentSimulator)
    config = TencentSmsConfig("sim-secret-id", "wrong", "1400000001", "盘锦政务", TEMPLATES, base_url=sim.url + "/")
    from channels import AuthError

    with pytest.raises(AuthError):
        await TencentSms(config, session).pull_send_status()
    with pytest.raises(ValueError, match="1 to 100"):
        await adapter(sim, session).pull_send_status(limit=500)


async def test_pull_replies(start_sim, session) -> None:
    sim = await start_sim(TencentSimulator)
    sim.reply("13800000001", "Ｔ Ｄ")
    sim.reply("13800000002", "什么时候截止？")
    replies = await adapter(sim, session).pull_replies()
    assert [(r.phone, r.kind) for r in replies] == [("13800000001", ReplyKind.OPT_OUT), ("13800000002", ReplyKind.MESSAGE)]
    assert await adapter(sim, session).pull_replies() == []


def test_session_context_round_trip() -> None:
    assert session_context_for(["d-1"]) == "d-1"
    assert delivery_ids_of_context(session_context_for(["a", "b", "c"]) or "") == ("a", "b", "c")
    assert session_context_for(["x" * 300, "y" * 300]) is None  # over 512 bytes
    assert session_context_for(["a,b"]) is None  # cannot be named unambiguously


@pytest.mark.parametrize(
    "body", [b"{}", b"[{}]", b'[{"sid": "1", "report_status": "SUCCESS", "nationcode": "1", "mobile": "2025550100"}]']
)
def test_bad_status_callbacks_are_refused(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_tencent_status_callback(body)
