"""The Aliyun adapter against the Aliyun simulator over loopback HTTP."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable

import aiohttp
import pytest

from channels import (
    AliyunSms,
    AliyunSmsConfig,
    Inquiry,
    Outcome,
    RateLimit,
    parse_aliyun_sms_report,
)
from channels.simulators import AliyunSimConfig, AliyunSimulator, Faults
from tests.channels.helpers import CallbackReceiver, FakeClock, phone, sms

KEY, SECRET, SIGN = "sim-access-key", "sim-access-secret", "盘锦政务"
TEMPLATES = {"policy_notice": "SMS_900001", "unapproved": "SMS_000000"}

MakeSim = Callable[..., "asyncio.Future[AliyunSimulator]"]


@pytest.fixture
def make_sim(start_sim: Callable[..., object]) -> Callable[..., object]:
    return functools.partial(start_sim, AliyunSimulator)


def adapter(sim: AliyunSimulator, session: aiohttp.ClientSession, **overrides: object) -> AliyunSms:
    kw: dict[str, object] = {"base_url": sim.url + "/", "timeout_s": 2.0}
    secret = str(overrides.pop("secret", SECRET))
    now = overrides.pop("now", time.time)
    kw.update(overrides)
    return AliyunSms(AliyunSmsConfig(KEY, secret, SIGN, TEMPLATES, **kw), session, now=now)  # type: ignore[arg-type]


async def test_single_message_goes_through_send_sms_with_out_id(make_sim, session) -> None:
    sim = await make_sim()
    [res] = await adapter(sim, session).send([sms(1)])
    assert res.outcome is Outcome.ACCEPTED and res.code == "OK"
    assert res.provider_message_id.endswith("^0")
    [rec] = sim.records
    assert rec.delivery_id == "d-1" and rec.recipient == phone(1)
    assert rec.text.startswith("【盘锦政务】您可能符合专精特新中小企业奖励") and rec.text.endswith("回复TD退订")


async def test_batch_is_split_into_send_batch_sms_calls_of_100(make_sim, session) -> None:
    sim = await make_sim()
    results = await adapter(sim, session).send([sms(i) for i in range(250)])
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 250
    assert len({r.provider_message_id for r in results}) == 3  # one BizId per SendBatchSms call
    assert sim.requests == 3 and len(sim.records) == 250
    assert [r.delivery_id for r in results] == [f"d-{i}" for i in range(250)]


async def test_unreachable_number_in_a_batch_is_isolated(make_sim, session) -> None:
    sim = await make_sim(AliyunSimConfig(send_scenarios={phone(3): "isv.BLACK_KEY_CONTROL_LIMIT"}))
    results = await adapter(sim, session).send([sms(i) for i in range(5)])
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 3 + [Outcome.UNREACHABLE, Outcome.ACCEPTED]
    assert len(sim.records) == 4


async def test_outcome_classes(make_sim, session) -> None:
    sim = await make_sim(AliyunSimConfig(send_scenarios={phone(2): "isv.MOBILE_NUMBER_ILLEGAL"}))
    ch = adapter(sim, session, use_batch=False)
    results = await ch.send([sms(1), sms(2), sms(3, template="unapproved"), sms(4, reason="详见 www.example.com")])
    assert [(r.outcome, r.code) for r in results] == [
        (Outcome.ACCEPTED, "OK"),
        (Outcome.UNREACHABLE, "isv.MOBILE_NUMBER_ILLEGAL"),
        (Outcome.PERMANENT, "isv.SMS_TEMPLATE_ILLEGAL"),
        (Outcome.PERMANENT, "PARAM_URL"),  # caught before sending: no URL inside a variable
    ]


async def test_system_error_is_retryable_provider_fault(make_sim, session) -> None:
    sim = await make_sim(faults=Faults(error_rates={"isp.SYSTEM_ERROR": 1.0}))
    [res] = await adapter(sim, session).send([sms(1)])
    assert res.outcome is Outcome.RETRYABLE and res.provider_fault and not res.maybe_sent
    assert sim.records == []


async def test_http_503_is_retryable_and_maybe_sent(make_sim, session) -> None:
    sim = await make_sim(faults=Faults(error_rates={"HTTP_503": 1.0}))
    [res] = await adapter(sim, session).send([sms(1)])
    assert res.outcome is Outcome.RETRYABLE and res.maybe_sent and res.code == "HTTP_503"


async def test_flow_control_50_a_day_per_sign_template_phone(make_sim, session) -> None:
    sim = await make_sim(AliyunSimConfig(daily_limit_per_phone=3))
    ch = adapter(sim, session)
    results = [(await ch.send([sms(i, recipient=phone(7))]))[0] for i in range(4)]
    assert [r.code for r in results] == ["OK", "OK", "OK", "isv.BUSINESS_LIMIT_CONTROL"]
    assert results[-1].outcome is Outcome.RETRYABLE and not results[-1].provider_fault


async def test_default_flow_control_is_50(make_sim, session) -> None:
    sim = await make_sim()
    results = await adapter(sim, session, use_batch=False).send([sms(i, recipient=phone(9)) for i in range(51)])
    assert sum(r.code == "isv.BUSINESS_LIMIT_CONTROL" for r in results) == 1


async def test_bad_signature_is_refused(make_sim, session) -> None:
    sim = await make_sim()
    [res] = await adapter(sim, session, secret="wrong-secret").send([sms(1)])
    assert (res.outcome, res.code) == (Outcome.PERMANENT, "SignatureDoesNotMatch")
    assert sim.records == []


async def test_unknown_access_key_is_refused(make_sim, session) -> None:
    sim = await make_sim(AliyunSimConfig(access_keys={"other": SECRET}))
    [res] = await adapter(sim, session).send([sms(1)])
    assert res.code == "InvalidAccessKeyId.NotFound" and res.outcome is Outcome.PERMANENT


async def test_timestamp_more_than_15_minutes_off_is_refused(make_sim, session) -> None:
    sim = await make_sim()
    [res] = await adapter(sim, session, now=lambda: time.time() - 16 * 60).send([sms(1)])
    assert res.code == "InvalidTimeStamp.Expired"
    [ok] = await adapter(sim, session, now=lambda: time.time() - 14 * 60).send([sms(2)])
    assert ok.outcome is Outcome.ACCEPTED


async def test_reused_nonce_is_refused(make_sim, session) -> None:
    sim = await make_sim()
    form = adapter(sim, session).signed_form("SendSms", {"PhoneNumbers": phone(1), "SignName": SIGN,
                                                         "TemplateCode": "SMS_900001", "TemplateParam": "{}"})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with session.post(sim.url + "/", data=form, headers=headers) as first:
        assert (await first.json())["Code"] == "isv.TEMPLATE_MISSING_PARAMETERS"  # got past the gateway
    async with session.post(sim.url + "/", data=form, headers=headers) as second:
        assert second.status == 400
        assert (await second.json())["Code"] == "SignatureNonceUsed"


async def test_get_requests_are_verified_too(make_sim, session) -> None:
    sim = await make_sim()
    ch = adapter(sim, session)
    form = ch.signed_form("QuerySendDetails", {"PhoneNumber": phone(1), "SendDate": "20240101",
                                               "PageSize": "10", "CurrentPage": "1"})
    async with session.get(f"{sim.url}/?{form}") as resp:
        assert (await resp.json())["Code"] == "SignatureDoesNotMatch"  # signed for POST, sent as GET


async def test_timeout_is_settled_by_query_send_details(make_sim, session) -> None:
    sim = await make_sim(faults=Faults(timeout_rate=1.0, hang_s=5.0))
    ch = adapter(sim, session, timeout_s=0.3)
    [res] = await ch.send([sms(1)])
    assert res.outcome is Outcome.RETRYABLE and res.maybe_sent
    sim.faults = Faults()
    [found] = await ch.query([Inquiry(sms(1).delivery_id, sms(1).recipient, "policy_notice")])
    assert found.sent is True
    [never_sent] = await ch.query([Inquiry(sms(2).delivery_id, sms(2).recipient, "policy_notice")])
    assert never_sent.sent is False


async def test_timeout_of_a_batch_is_settled_by_its_out_id(make_sim, session) -> None:
    sim = await make_sim(faults=Faults(timeout_rate=1.0, hang_s=5.0))
    ch = adapter(sim, session, timeout_s=0.3)
    results = await ch.send([sms(1), sms(2)])
    assert all(r.maybe_sent for r in results)
    sim.faults = Faults()
    answers = await ch.query([Inquiry(m.delivery_id, m.recipient, "policy_notice") for m in (sms(1), sms(2))])
    assert [a.sent for a in answers] == [True, True]


async def test_a_marker_in_the_text_identifies_a_message_after_a_restart(make_sim, session) -> None:
    """A new adapter (a restarted worker) knows no batch OutId: the link code in the text tells."""
    sim = await make_sim()
    one, two = sms(1, link="c0de0001"), sms(2, link="c0de0002")
    results = await adapter(sim, session).send([one, two])
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    fresh = adapter(sim, session)
    found, unsure = await fresh.query([Inquiry(one.delivery_id, one.recipient, "policy_notice", markers=("c0de0001",)),
                                       Inquiry(two.delivery_id, two.recipient, "policy_notice")])  # fmt: skip
    assert found.sent is True
    assert unsure.sent is None  # a record of this template to that phone, but nothing ties it to this message


async def test_query_send_details_reports_delivery(make_sim, session) -> None:
    sim = await make_sim(AliyunSimConfig(receipt_delay_s=0.0, receipt_scenarios={phone(2): "MK:0001"}))
    ch = adapter(sim, session)
    results = await ch.send([sms(1), sms(2)])
    await asyncio.sleep(0.05)
    today = time.strftime("%Y%m%d", time.gmtime(time.time() + 8 * 3600))
    [row] = await ch.query_send_details(phone(1), today, biz_id=results[0].provider_message_id)
    assert (row.send_status, row.err_code, row.template_code) == (3, "DELIVERED", "SMS_900001")
    [failed] = await ch.query_send_details(phone(2), today)
    assert (failed.send_status, failed.err_code) == (2, "MK:0001")


async def test_receipts_are_pushed_and_parsed(make_sim, session, receiver: CallbackReceiver) -> None:
    sim = await make_sim(AliyunSimConfig(callback_url=receiver.url, receipt_delay_s=0.0,
                                         receipt_scenarios={phone(2): "MK:0001"}))
    results = await adapter(sim, session, use_batch=False).send([sms(1), sms(2)])
    await receiver.wait_for(1)
    receipts = [r for body in receiver.bodies for r in parse_aliyun_sms_report(body)]
    by_phone = {r.recipient: r for r in receipts}
    assert by_phone[phone(1)].delivered and by_phone[phone(1)].delivery_id == "d-1"
    assert by_phone[phone(1)].provider_message_id == results[0].provider_message_id
    assert not by_phone[phone(2)].delivered and by_phone[phone(2)].outcome is Outcome.UNREACHABLE


async def test_receipt_push_retries_on_the_scaled_schedule(make_sim, session, receiver: CallbackReceiver) -> None:
    receiver.fail_first = 2
    sim = await make_sim(AliyunSimConfig(callback_url=receiver.url, receipt_delay_s=0.0, time_factor=0.001))
    await adapter(sim, session).send([sms(1)])
    await receiver.wait_for(1)
    await sim.pusher.drain()
    assert [(a[1], a[2]) for a in sim.pusher.attempts] == [(1, 500), (2, 500), (3, 200)]


async def test_receipt_push_gives_up_after_the_schedule(make_sim, session, receiver: CallbackReceiver) -> None:
    receiver.fail_first = 100
    sim = await make_sim(AliyunSimConfig(callback_url=receiver.url, receipt_delay_s=0.0, time_factor=0.0001))
    await adapter(sim, session).send([sms(1)])
    await asyncio.sleep(0.01)
    await sim.pusher.drain()
    assert [a[1] for a in sim.pusher.attempts] == [1, 2, 3, 4]  # first push + retries after 1, 5, 10 min
    assert receiver.bodies == []


async def test_lost_receipts_fault(make_sim, session, receiver: CallbackReceiver) -> None:
    sim = await make_sim(AliyunSimConfig(callback_url=receiver.url, receipt_delay_s=0.0),
                         faults=Faults(lost_receipt_rate=1.0))
    await adapter(sim, session).send([sms(1)])
    await asyncio.sleep(0.1)
    assert len(sim.records) == 1 and receiver.bodies == []


async def test_daily_quota_of_the_limiter_is_enforced_without_calling(make_sim, session) -> None:
    sim = await make_sim()
    ch = adapter(sim, session, rate=RateLimit(requests_per_s=1000, messages_per_day=3))
    results = await ch.send([sms(i) for i in range(3)])
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    [res] = await ch.send([sms(9)])
    assert res.code == "QUOTA_EXHAUSTED" and res.outcome is Outcome.RETRYABLE and res.retry_after_s
    assert sim.requests == 1


async def test_simulated_clock_moves_the_flow_control_window(make_sim, session) -> None:
    clock = FakeClock(time.time())
    sim = await make_sim(AliyunSimConfig(daily_limit_per_phone=1), clock=clock)
    ch = adapter(sim, session, now=clock)
    assert (await ch.send([sms(1)]))[0].outcome is Outcome.ACCEPTED
    assert (await ch.send([sms(2, recipient=phone(1))]))[0].code == "isv.BUSINESS_LIMIT_CONTROL"
    clock.advance(24 * 3600 + 1)
    assert (await ch.send([sms(3, recipient=phone(1))]))[0].outcome is Outcome.ACCEPTED
