"""tencentcloud-sdk-python-sms (API 2021-01-11) against the Tencent simulator.

The SDK signs ``content-type;host`` only, and raises ``TencentCloudSDKException`` for a
``Response.Error`` only when the answer's Content-Type is exactly ``application/json``.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models, sms_client

from channels.simulators import Faults, TencentSimConfig, TencentSimulator
from tests.channels.sdk.conftest import host_of

APP = "1400000001"


def client(
    url: str, *, secret: str = "sim-secret-key", secret_id: str = "sim-secret-id", method: str = "POST", timeout: int = 5,
    unsigned: bool = False,
) -> sms_client.SmsClient:
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=host_of(url), protocol="http", reqMethod=method, reqTimeout=timeout))
    profile.unsignedPayload = unsigned
    return sms_client.SmsClient(credential.Credential(secret_id, secret), "ap-guangzhou", profile)


def send_request(*phones: str, context: str = "d-1") -> models.SendSmsRequest:
    req = models.SendSmsRequest()
    req.SmsSdkAppId, req.SignName, req.TemplateId = APP, "盘锦政务", "2000001"
    req.TemplateParamSet = ["专精特新奖励", "最高30万元", "6月30日", "您是专精特新企业", "Ab3x"]
    req.PhoneNumberSet = list(phones)
    req.SessionContext = context
    return req


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_send_one_and_many(start_sim, in_thread, method: str) -> None:
    sim = await start_sim(TencentSimulator)
    one = await in_thread(client(sim.url, method=method).SendSms, send_request("+8613800000001"))
    [status] = one.SendStatusSet
    assert (status.Code, status.PhoneNumber, status.SessionContext) == ("Ok", "+8613800000001", "d-1")
    assert status.SerialNo and status.Fee == 2 and one.RequestId
    many = await in_thread(client(sim.url, method=method).SendSms, send_request("13800000002", "+8613800000003", context="B-2"))
    assert [(s.PhoneNumber, s.Code) for s in many.SendStatusSet] == [("+8613800000002", "Ok"), ("+8613800000003", "Ok")]
    assert [(r.recipient, r.delivery_id) for r in sim.records] == [
        ("13800000001", "d-1"), ("13800000002", "B-2"), ("13800000003", "B-2"),
    ]  # fmt: skip


async def test_unsigned_payload_is_accepted(start_sim, in_thread) -> None:
    sim = await start_sim(TencentSimulator)
    answer = await in_thread(client(sim.url, unsigned=True).SendSms, send_request("+8613800000001"))
    assert answer.SendStatusSet[0].Code == "Ok"


async def test_wrong_secret_and_unknown_secret_id_raise(start_sim, in_thread) -> None:
    sim = await start_sim(TencentSimulator)
    with pytest.raises(TencentCloudSDKException) as err:
        await in_thread(client(sim.url, secret="wrong").SendSms, send_request("+8613800000001"))
    assert err.value.get_code() == "AuthFailure.SignatureFailure" and err.value.get_request_id()
    with pytest.raises(TencentCloudSDKException) as err:
        await in_thread(client(sim.url, secret_id="AKIDnobody").SendSms, send_request("+8613800000001"))
    assert err.value.get_code() == "AuthFailure.SecretIdNotFound"
    assert sim.records == []


async def test_request_level_errors_reach_the_sdk(start_sim, in_thread) -> None:
    sim = await start_sim(TencentSimulator)
    bad = send_request("+8613800000001")
    bad.TemplateId = "999"
    with pytest.raises(TencentCloudSDKException) as err:
        await in_thread(client(sim.url).SendSms, bad)
    assert err.value.get_code() == "FailedOperation.TemplateIncorrectOrUnapproved"
    bad = send_request("+8613800000001")
    bad.SmsSdkAppId = "1400999999"
    with pytest.raises(TencentCloudSDKException) as err:
        await in_thread(client(sim.url).SendSms, bad)
    assert err.value.get_code() == "InvalidParameterValue.SdkAppIdNotExist"


async def test_per_number_verdicts_and_injected_faults(start_sim, in_thread) -> None:
    sim = await start_sim(
        TencentSimulator,
        TencentSimConfig(send_scenarios={"13800000009": "FailedOperation.PhoneNumberInBlacklist"}),
        faults=Faults(error_rates={"InternalError": 1.0}),
    )
    with pytest.raises(TencentCloudSDKException) as err:
        await in_thread(client(sim.url).SendSms, send_request("+8613800000001"))
    assert err.value.get_code() == "InternalError"
    sim.faults = Faults(error_rates={"RequestLimitExceeded": 1.0})
    with pytest.raises(TencentCloudSDKException) as err:
        await in_thread(client(sim.url).SendSms, send_request("+8613800000001"))
    assert err.value.get_code() == "RequestLimitExceeded"
    sim.faults = Faults(error_rates={"HTTP_502": 1.0})
    with pytest.raises(TencentCloudSDKException) as err:
        await in_thread(client(sim.url).SendSms, send_request("+8613800000001"))
    assert err.value.get_code() == "ServerNetworkError"
    sim.faults = Faults()
    mixed = await in_thread(client(sim.url).SendSms, send_request("+8613800000009", "+8613800000001", "12345"))
    assert [s.Code for s in mixed.SendStatusSet] == [
        "FailedOperation.PhoneNumberInBlacklist", "Ok", "InvalidParameterValue.IncorrectPhoneNumber",
    ]  # fmt: skip
    assert [r.recipient for r in sim.records] == ["13800000001"]


async def test_timeout_fault(start_sim, in_thread) -> None:
    sim = await start_sim(TencentSimulator, faults=Faults(timeout_rate=1.0, hang_s=3.0))
    with pytest.raises(TencentCloudSDKException) as err:
        await in_thread(client(sim.url, timeout=1).SendSms, send_request("+8613800000001"))
    assert err.value.get_code() == "ClientNetworkError"
    assert [r.recipient for r in sim.records] == ["13800000001"]


async def test_status_pulls_and_reply_pull(start_sim, in_thread) -> None:
    sim = await start_sim(
        TencentSimulator, TencentSimConfig(receipt_delay_s=0.05, receipt_scenarios={"13800000002": "MK:0001"})
    )
    sent_at = int(time.time()) - 1
    await in_thread(client(sim.url).SendSms, send_request("+8613800000001", "+8613800000002", context="B-7"))
    await asyncio.sleep(0.3)
    req = models.PullSmsSendStatusRequest()
    req.SmsSdkAppId, req.Limit = APP, 100
    pulled = await in_thread(client(sim.url).PullSmsSendStatus, req)
    got = {(s.PhoneNumber, s.ReportStatus, s.Description, s.SessionContext) for s in pulled.PullSmsSendStatusSet}
    assert got == {("+8613800000001", "SUCCESS", "DELIVRD", "B-7"), ("+8613800000002", "FAIL", "MK:0001", "B-7")}
    again = await in_thread(client(sim.url).PullSmsSendStatus, req)
    assert again.PullSmsSendStatusSet == []  # a queue: each report is handed out once

    by_phone = models.PullSmsSendStatusByPhoneNumberRequest()
    by_phone.SmsSdkAppId, by_phone.PhoneNumber, by_phone.BeginTime = APP, "+8613800000002", sent_at
    by_phone.Offset, by_phone.Limit = 0, 10
    [row] = (await in_thread(client(sim.url).PullSmsSendStatusByPhoneNumber, by_phone)).PullSmsSendStatusSet
    assert (row.ReportStatus, row.SubscriberNumber, row.SerialNo) == ("FAIL", "13800000002", sim.records[1].message_id)

    sim.reply("+8613800000001", "TD")
    replies = models.PullSmsReplyStatusRequest()
    replies.SmsSdkAppId, replies.Limit = APP, 10
    [reply] = (await in_thread(client(sim.url).PullSmsReplyStatus, replies)).PullSmsReplyStatusSet
    assert (reply.PhoneNumber, reply.ReplyContent, reply.SignName) == ("+8613800000001", "TD", "盘锦政务")
