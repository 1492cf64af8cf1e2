"""Pulling JPush delivery reports for pushes made through the adapter."""

from __future__ import annotations

import asyncio

import pytest

from channels import AuthError, DeviceStatus, JPush, JPushConfig, JPushReports, Outcome, parse_jpush_received
from channels.simulators import JPushSimConfig, JPushSimulator
from tests.channels.helpers import push, reg_id

KEY, SECRET = "simappkey000000000000000", "simmastersecret000000000"


async def test_received_status_and_receipts(start_sim, session) -> None:
    sim = await start_sim(JPushSimulator, JPushSimConfig(receipt_delay_s=0.05, undelivered_ids=frozenset({reg_id(2)})))
    config = JPushConfig(KEY, SECRET, base_url=sim.url)
    results = await JPush(config, session).send([push(1, text="给1"), push(2, text="给2")])
    ids = [r.provider_message_id for r in results]
    reports = JPushReports(config, session, report_url=sim.url)
    assert [c.received for c in await reports.received(ids)] == [0, 0]  # not yet
    await asyncio.sleep(0.15)
    counts = await reports.received(ids)
    assert [(c.msg_id, c.delivered) for c in counts] == [(ids[0], True), (ids[1], False)]
    assert [c.delivered for c in await reports.received(ids, detail=False)] == [True, False]
    assert await reports.message_status(ids[1], [reg_id(2), reg_id(1)]) == {
        reg_id(2): DeviceStatus.NOT_DELIVERED, reg_id(1): DeviceStatus.NOT_A_TARGET,
    }  # fmt: skip
    # not delivered is only final once the time to live has passed
    assert await reports.receipts(ids[1], [reg_id(2)], final=False) == []
    [gone] = await reports.receipts(ids[1], [reg_id(2)], final=True)
    assert (gone.recipient, gone.delivered, gone.outcome) == (reg_id(2), False, Outcome.UNREACHABLE)
    [got] = await reports.receipts(ids[0], [reg_id(1)], final=False)
    assert (got.delivered, got.provider_message_id) == (True, ids[0])


async def test_wrong_secret_and_bad_ids(start_sim, session) -> None:
    sim = await start_sim(JPushSimulator)
    with pytest.raises(AuthError):
        await JPushReports(JPushConfig(KEY, "wrong"), session, report_url=sim.url).received(["1"])
    from channels import PermanentError

    with pytest.raises(PermanentError):
        await JPushReports(JPushConfig(KEY, SECRET), session, report_url=sim.url).received(["not-a-number"])


def test_a_report_without_data_is_not_a_delivery() -> None:
    body = b'[{"msg_id": "1", "android_received": null, "ios_apns_sent": null}, {"msg_id": "2", "android_received": 3}]'
    counts = parse_jpush_received(body)
    assert [(c.received, c.delivered) for c in counts] == [(None, False), (3, True)]
