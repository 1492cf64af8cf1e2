"""alibabacloud-dysmsapi20170525 (the Tea/Darabonba SDK) against the Aliyun simulator.

Left at its default the SDK signs with ACS3-HMAC-SHA256 (signature V3): parameters in the query
string, an empty body, ``x-acs-*`` headers and every header it sends signed. With
``signature_algorithm="v2"`` it signs V1 with ``Format=json`` in lower case and no ``RegionId``.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from alibabacloud_dysmsapi20170525 import models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.exceptions import UnretryableException
from darabonba.runtime import RuntimeOptions

from channels.rate_limit import CHINA_TZ
from channels.simulators import AliyunSimConfig, AliyunSimulator, Faults
from tests.channels.helpers import POLICY_PARAMS
from tests.channels.sdk.conftest import host_of

PARAMS = json.dumps(dict(POLICY_PARAMS), ensure_ascii=False)
ALGORITHMS = [None, "v2"]  # None: the SDK's default, V3


def client(host: str, algorithm: str | None, *, secret: str = "sim-access-secret", key: str = "sim-access-key") -> Client:
    cfg = Config(access_key_id=key, access_key_secret=secret, endpoint=host, protocol="http")
    if algorithm:
        cfg.signature_algorithm = algorithm
    return Client(cfg)


def runtime(read_timeout_ms: int = 5000) -> RuntimeOptions:
    return RuntimeOptions(read_timeout=read_timeout_ms, connect_timeout=2000, autoretry=False)


def send_request(phone: str) -> models.SendSmsRequest:
    return models.SendSmsRequest(
        phone_numbers=phone, sign_name="盘锦政务", template_code="SMS_900001", template_param=PARAMS, out_id=f"d-{phone[-2:]}"
    )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_send_batch_and_query(start_sim, in_thread, algorithm: str | None) -> None:
    sim = await start_sim(AliyunSimulator)
    c = client(host_of(sim.url), algorithm)
    sent = await in_thread(c.send_sms_with_options, send_request("13800000001"), runtime())
    assert (sent.status_code, sent.body.code) == (200, "OK") and sent.body.biz_id
    batch = models.SendBatchSmsRequest(
        phone_number_json=json.dumps(["13800000002", "13800000003"]),
        sign_name_json=json.dumps(["盘锦政务"] * 2, ensure_ascii=False),
        template_code="SMS_900001",
        template_param_json=json.dumps([dict(POLICY_PARAMS)] * 2, ensure_ascii=False),
    )
    batched = await in_thread(c.send_batch_sms_with_options, batch, runtime())
    assert batched.body.code == "OK"
    today = datetime.now(CHINA_TZ).strftime("%Y%m%d")
    query = models.QuerySendDetailsRequest(phone_number="13800000001", send_date=today, page_size=10, current_page=1)
    details = await in_thread(c.query_send_details_with_options, query, runtime())
    [row] = details.body.sms_send_detail_dtos.sms_send_detail_dto
    assert (row.out_id, row.send_status, row.phone_num) == ("d-01", 1, "13800000001")
    assert [r.recipient for r in sim.records] == ["13800000001", "13800000002", "13800000003"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_wrong_secret_and_unknown_key_raise_client_exceptions(start_sim, in_thread, algorithm: str | None) -> None:
    sim = await start_sim(AliyunSimulator)
    with pytest.raises(ClientException) as err:
        await in_thread(client(host_of(sim.url), algorithm, secret="wrong").send_sms_with_options, send_request("13800000001"), runtime())
    assert (err.value.code, err.value.status_code) == ("SignatureDoesNotMatch", 400)
    with pytest.raises(ClientException) as err:
        await in_thread(client(host_of(sim.url), algorithm, key="nobody").send_sms_with_options, send_request("13800000001"), runtime())
    assert (err.value.code, err.value.status_code) == ("InvalidAccessKeyId.NotFound", 404)
    assert sim.records == []


async def test_a_tampered_v3_request_is_refused(start_sim, in_thread) -> None:
    """The V3 check covers the query: a parameter changed after signing fails the signature."""
    sim = await start_sim(AliyunSimulator)
    c = client(host_of(sim.url), None)
    request = send_request("13800000001")
    original = c.do_request

    def tampering(params, req, rt):  # type: ignore[no-untyped-def]
        from alibabacloud_tea_openapi import utils as tea_utils

        sign = tea_utils.Utils.get_authorization

        def sign_then_tamper(r, *a):  # type: ignore[no-untyped-def]
            auth = sign(r, *a)
            r.query["PhoneNumbers"] = "13900000000"
            return auth

        tea_utils.Utils.get_authorization = staticmethod(sign_then_tamper)
        try:
            return original(params, req, rt)
        finally:
            tea_utils.Utils.get_authorization = staticmethod(sign)

    c.do_request = tampering  # type: ignore[method-assign]
    with pytest.raises(ClientException) as err:
        await in_thread(c.send_sms_with_options, request, runtime())
    assert err.value.code == "SignatureDoesNotMatch"
    assert sim.records == []


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_business_codes_faults_and_timeouts(start_sim, in_thread, algorithm: str | None) -> None:
    sim = await start_sim(
        AliyunSimulator,
        AliyunSimConfig(send_scenarios={"13800000009": "isv.MOBILE_NUMBER_ILLEGAL"}),
        faults=Faults(error_rates={"isp.SYSTEM_ERROR": 1.0}),
    )
    c = client(host_of(sim.url), algorithm)
    faulted = await in_thread(c.send_sms_with_options, send_request("13800000001"), runtime())
    assert (faulted.status_code, faulted.body.code) == (200, "isp.SYSTEM_ERROR")
    sim.faults = Faults()
    refused = await in_thread(c.send_sms_with_options, send_request("13800000009"), runtime())
    assert refused.body.code == "isv.MOBILE_NUMBER_ILLEGAL"
    sim.faults = Faults(error_rates={"HTTP_503": 1.0})
    with pytest.raises(ServerException) as err:
        await in_thread(c.send_sms_with_options, send_request("13800000001"), runtime())
    assert (err.value.status_code, err.value.code) == (503, "ServiceUnavailable")
    sim.faults = Faults(timeout_rate=1.0, hang_s=2.0)
    with pytest.raises(UnretryableException, match=r"(?i)timed? ?out"):
        await in_thread(c.send_sms_with_options, send_request("13800000001"), runtime(read_timeout_ms=500))
    assert [r.recipient for r in sim.records] == ["13800000001"]  # accepted before the hold: maybe sent
