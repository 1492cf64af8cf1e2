"""The jpush Python SDK against the JPush simulator: pushes, errors, faults and the report API.

The SDK's URLs come from ``jpush.common.ZONES``; a test environment adds a zone of its own.
"""

from __future__ import annotations

import asyncio

import jpush
import pytest
from jpush import common

from channels.simulators import Faults, JPushSimConfig, JPushSimulator
from tests.channels.helpers import reg_id

KEY, SECRET = "simappkey000000000000000", "simmastersecret000000000"


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def register(url: str) -> str:
        monkeypatch.setitem(common.ZONES, "SIM", {"PUSH": f"{url}/v3/", "REPORT": f"{url}/v3/"})
        return "SIM"

    return register


def push_to(client: jpush.JPush, *ids: str, text: str = "对新认定的专精特新中小企业给予奖励"):  # type: ignore[no-untyped-def]
    p = client.create_push()
    p.audience = jpush.audience(jpush.registration_id(*ids))
    p.notification = jpush.notification(alert=text, android=jpush.android(alert=text, title="专精特新奖励"))
    p.platform = jpush.all_
    p.options = {"sendno": 12, "time_to_live": 3600}
    return p


async def test_push_validate_and_report(start_sim, zone, in_thread) -> None:
    sim = await start_sim(JPushSimulator, JPushSimConfig(receipt_delay_s=0.05, undelivered_ids=frozenset({reg_id(2)})))
    client = jpush.JPush(KEY, SECRET, timeout=5, zone=zone(sim.url))
    answer = await in_thread(push_to(client, reg_id(1), reg_id(2)).send)
    assert answer.status_code == 200 and answer.payload["sendno"] == "12"
    msg_id = answer.payload["msg_id"]
    validated = await in_thread(push_to(client, reg_id(3)).send_validate)
    assert validated.status_code == 200
    assert [r.recipient for r in sim.records] == [reg_id(1), reg_id(2)]  # validate sends nothing
    await asyncio.sleep(0.2)
    report = client.create_report()
    [received] = (await in_thread(report.get_received, msg_id)).payload
    assert (received["msg_id"], received["android_received"]) == (msg_id, 1)
    [detail] = (await in_thread(report.get_received_detail, msg_id)).payload
    assert detail["jpush_received"] == 1
    status = (await in_thread(report.get_status_message, int(msg_id), [reg_id(1), reg_id(2), reg_id(9)])).payload
    assert status == {reg_id(1): {"status": 0}, reg_id(2): {"status": 1}, reg_id(9): {"status": 3}}


async def test_wrong_secret_is_unauthorized(start_sim, zone, in_thread) -> None:
    sim = await start_sim(JPushSimulator)
    client = jpush.JPush(KEY, "wrong-secret", zone=zone(sim.url))
    with pytest.raises(common.Unauthorized):
        await in_thread(push_to(client, reg_id(1)).send)
    with pytest.raises(common.Unauthorized):
        await in_thread(client.create_report().get_received, "1")
    assert sim.records == []


async def test_errors_and_faults_are_jpush_failures(start_sim, zone, in_thread) -> None:
    sim = await start_sim(JPushSimulator, JPushSimConfig(unknown_ids=frozenset({reg_id(7)}), pushes_per_window=3))
    client = jpush.JPush(KEY, SECRET, timeout=1, zone=zone(sim.url))
    with pytest.raises(common.JPushFailure) as err:
        await in_thread(push_to(client, reg_id(7)).send)
    assert (err.value.error_code, err.value.response.status_code) == (1011, 400)
    sim.faults = Faults(error_rates={"1000": 1.0})
    with pytest.raises(common.JPushFailure) as err:
        await in_thread(push_to(client, reg_id(1)).send)
    assert (err.value.error_code, err.value.response.status_code) == (1000, 500)
    sim.faults = Faults()
    assert (await in_thread(push_to(client, reg_id(1)).send)).status_code == 200  # the third call
    with pytest.raises(common.JPushFailure) as err:  # the fourth call in the window
        await in_thread(push_to(client, reg_id(1)).send)
    assert (err.value.error_code, err.value.response.status_code) == (2001, 429)
    assert err.value.response.headers["X-Rate-Limit-Remaining"] == "0"


async def test_timeout_fault(start_sim, zone, in_thread) -> None:
    sim = await start_sim(JPushSimulator, faults=Faults(timeout_rate=1.0, hang_s=3.0))
    client = jpush.JPush(KEY, SECRET, timeout=1, zone=zone(sim.url))
    # the SDK maps only a connect timeout to APIConnectionException; a read timeout (the push may
    # have gone out) surfaces as APIRequestException "Connection to api.jpush.cn error."
    with pytest.raises(common.APIRequestException):
        await in_thread(push_to(client, reg_id(1)).send)
    assert [r.recipient for r in sim.records] == [reg_id(1)]
