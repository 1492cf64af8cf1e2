"""The Tencent adapter against the Tencent simulator over loopback HTTP."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from channels import OutboundMessage, Outcome, TencentSms, TencentSmsConfig, TencentTemplate
from channels.signing import Tc3Request, tc3_authorization
from channels.simulators import Faults, TencentSimConfig, TencentSimulator
from tests.channels.helpers import POLICY_PARAMS, phone, sms

SECRET_ID, SECRET_KEY, APP = "sim-secret-id", "sim-secret-key", "1400000001"
TEMPLATES = {"policy_notice": TencentTemplate("2000001", ("title", "benefit", "deadline", "reason", "link"))}


@pytest.fixture
def make_sim(start_sim: Callable[..., Awaitable[TencentSimulator]]) -> Callable[..., Awaitable[TencentSimulator]]:
    return functools.partial(start_sim, TencentSimulator)


@pytest.fixture
async def sim(make_sim) -> TencentSimulator:
    return await make_sim()


def adapter(sim: TencentSimulator, session: aiohttp.ClientSession, *, key: str = SECRET_KEY, now=time.time) -> TencentSms:
    config = TencentSmsConfig(SECRET_ID, key, APP, "盘锦政务", TEMPLATES, base_url=sim.url + "/", timeout_s=2.0)
    return TencentSms(config, session, now=now)


async def test_success_with_serial_numbers(sim, session) -> None:
    results = await adapter(sim, session).send([sms(1), sms(2, reason="您的企业是高新技术企业")])
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 2
    assert all(r.provider_message_id.startswith("5000:") for r in results)
    assert sim.records[0].text.startswith("【盘锦政务】您可能符合专精特新中小企业奖励")
    assert sim.requests == 2  # different parameters cannot share a call


async def test_identical_messages_share_calls_that_name_every_delivery_id(sim, session) -> None:
    results = await adapter(sim, session).send([sms(i) for i in range(450)])
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    assert len(sim.records) == 450
    contexts = {r.delivery_id for r in sim.records}  # the simulator records each call's SessionContext
    assert sim.requests == len(contexts) and all(len(c.encode()) <= 512 for c in contexts)
    # "d-0".."d-449" joined: about 85 ids to a call; each 200-number call splits into parts that fit
    assert 3 < sim.requests <= 7
    for rec in sim.records:
        own = next(m.delivery_id for m in [sms(i) for i in range(450)] if m.recipient == rec.recipient)
        assert own in rec.delivery_id.split(",")


async def test_long_ids_still_go_out_and_are_named(sim, session) -> None:
    batch = [OutboundMessage(f"{'x' * 200}-{i}", phone(i), "policy_notice", POLICY_PARAMS) for i in range(5)]
    results = await adapter(sim, session).send(batch)
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    assert sim.requests == 3  # two 203-byte ids fit in 512 bytes, three do not
    contexts = {r.delivery_id for r in sim.records}
    assert sorted(c for ctx in contexts for c in ctx.split(",")) == sorted(m.delivery_id for m in batch)


async def test_per_number_verdicts(make_sim, session) -> None:
    sim = await make_sim(config=TencentSimConfig(send_scenarios={"+86" + phone(2): "FailedOperation.PhoneNumberInBlacklist"}))
    results = await adapter(sim, session).send([sms(1), sms(2), sms(3, recipient="12345")])
    assert [(r.outcome, r.code) for r in results] == [
        (Outcome.ACCEPTED, "Ok"),
        (Outcome.UNREACHABLE, "FailedOperation.PhoneNumberInBlacklist"),
        (Outcome.UNREACHABLE, "InvalidParameterValue.IncorrectPhoneNumber"),
    ]


async def test_wrong_key_is_refused(sim, session) -> None:
    [res] = await adapter(sim, session, key="wrong").send([sms(1)])
    assert (res.outcome, res.code) == (Outcome.PERMANENT, "AuthFailure.SignatureFailure")
    assert sim.records == []


async def test_timestamp_more_than_5_minutes_off_is_refused(sim, session) -> None:
    [res] = await adapter(sim, session, now=lambda: time.time() - 400).send([sms(1)])
    assert res.code == "AuthFailure.SignatureExpire"


async def test_signed_headers_must_include_host(sim, session) -> None:
    payload = json.dumps({"PhoneNumberSet": ["+8613800000001"]}).encode()
    ts = int(time.time())
    headers = {"content-type": "application/json; charset=utf-8"}
    auth = tc3_authorization(secret_id=SECRET_ID, secret_key=SECRET_KEY, service="sms", timestamp=ts,
                             request=Tc3Request(headers, ["content-type"], payload))
    async with session.post(sim.url + "/", data=payload, headers={
        "Content-Type": headers["content-type"], "X-TC-Action": "SendSms", "X-TC-Version": "2021-01-11",
        "X-TC-Region": "ap-guangzhou", "X-TC-Timestamp": str(ts), "Authorization": auth,
    }) as resp:  # fmt: skip
        body = await resp.json()
    assert body["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"


async def test_internal_error_is_a_retryable_provider_fault(make_sim, session) -> None:
    sim = await make_sim(faults=Faults(error_rates={"InternalError": 1.0}))
    [res] = await adapter(sim, session).send([sms(1)])
    assert res.outcome is Outcome.RETRYABLE and res.provider_fault


async def test_daily_limit_per_number(make_sim, session) -> None:
    sim = await make_sim(config=TencentSimConfig(daily_limit_per_phone=1))
    ch = adapter(sim, session)
    await ch.send([sms(1)])
    [res] = await ch.send([sms(2, recipient=phone(1))])
    assert res.code == "LimitExceeded.PhoneNumberDailyLimit" and res.outcome is Outcome.RETRYABLE
    assert not res.provider_fault


async def test_missing_template_parameter_is_caught_before_sending(sim, session) -> None:
    msg = sms(1)
    broken = type(msg)(msg.delivery_id, msg.recipient, msg.template, {"title": "x"})
    [res] = await adapter(sim, session).send([broken])
    assert res.outcome is Outcome.PERMANENT and sim.requests == 0
