"""The simulators' control endpoints (``/_sim/…``), as tests and ``policy-push simulators`` drive them."""

from __future__ import annotations

import pytest

from channels import Outcome
from channels.simulators import AliyunSimulator, JPushSimulator, TencentSimulator, WechatSimulator, start_all
from tests.channels.helpers import openid, sms, wechat


async def test_scenarios_set_over_http_change_what_the_next_send_meets(session) -> None:
    sims = await start_all(time_factor=0.01)
    try:
        aliyun, _, wx, _ = sims.channels(session)
        for url, body in [
            (sims.aliyun.url, {"recipient": "13800000001", "scenario": "isv.BLACK_KEY_CONTROL_LIMIT"}),
            (sims.wechat.url, {"recipient": openid(1), "scenario": "not_following"}),
        ]:
            async with session.post(f"{url}/_sim/scenario", json=body) as resp:
                assert resp.status == 200
        assert (await aliyun.send([sms(1, recipient="13800000001")]))[0].outcome is Outcome.UNREACHABLE
        assert (await wx.send([wechat(1)]))[0].code == "43004"
        assert (await aliyun.send([sms(2)]))[0].outcome is Outcome.ACCEPTED
        async with session.get(f"{sims.aliyun.url}/_sim/records") as resp:
            records = (await resp.json())["records"]
        assert [r["delivery_id"] for r in records] == ["d-2"]
    finally:
        await sims.close()


@pytest.mark.parametrize("cls", [AliyunSimulator, TencentSimulator, WechatSimulator, JPushSimulator])
async def test_bad_control_requests_get_one_clear_answer(start_sim, session, cls: type) -> None:
    sim = await start_sim(cls)
    async with session.post(f"{sim.url}/_sim/scenario", data=b"not json") as resp:
        assert resp.status == 400 and "JSON object" in (await resp.json())["error"]
    async with session.post(f"{sim.url}/_sim/scenario", json={"recipient": "x"}) as resp:
        assert resp.status == 422 and (await resp.json())["error"] == "missing scenario"
    async with session.post(f"{sim.url}/_sim/scenario", json={"recipient": "x", "scenario": "no-such-thing"}) as resp:
        assert resp.status in (200, 422)  # SMS simulators take any provider code; the others name their choices
        if cls in (WechatSimulator, JPushSimulator):
            assert "must be" in (await resp.json())["error"]


async def test_reply_control_refuses_a_bad_number(start_sim, session) -> None:
    for cls in (AliyunSimulator, TencentSimulator):
        sim = await start_sim(cls)
        async with session.post(f"{sim.url}/_sim/reply", json={"phone": "12345", "text": "TD"}) as resp:
            assert resp.status == 422 and "not a mainland mobile number" in (await resp.json())["error"]
