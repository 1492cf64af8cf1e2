"""The WeChat adapter against the WeChat simulator over loopback HTTP."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from channels import (
    Outcome,
    Router,
    Wechat,
    WechatConfig,
    WechatTemplate,
    parse_wechat_event,
    verify_wechat_signature,
)
from channels.simulators import Faults, WechatSimConfig, WechatSimulator
from channels.wechat import _TokenCache
from tests.channels.helpers import CallbackReceiver, FakeClock, openid, wechat

APPID, SECRET = "wxsimappid0000001", "sim-app-secret"
TEMPLATE_ID = "TPL-policy-notice-0000000000000000000000000"
KEYS = ("thing1", "time2", "thing3", "thing4")


@pytest.fixture
def make_sim(start_sim: Callable[..., Awaitable[WechatSimulator]]) -> Callable[..., Awaitable[WechatSimulator]]:
    return functools.partial(start_sim, WechatSimulator)


def adapter(sim: WechatSimulator, session: aiohttp.ClientSession, *, secret: str = SECRET, **kw: Any) -> Wechat:
    config = WechatConfig(APPID, secret, {"policy_notice": WechatTemplate(TEMPLATE_ID, KEYS)}, base_url=sim.url,
                          timeout_s=kw.pop("timeout_s", 2.0))
    return Wechat(config, session, **kw)


async def test_template_message_carries_client_msg_id(make_sim, session) -> None:
    sim = await make_sim()
    [res] = await adapter(sim, session).send([wechat(1)])
    assert res.outcome is Outcome.ACCEPTED and res.provider_message_id.isdigit()
    [rec] = sim.records
    assert rec.delivery_id == "w-1" and rec.recipient == openid(1) and rec.params["thing1"] == "专精特新中小企业奖励"


async def test_hundred_concurrent_sends_fetch_the_token_exactly_once(make_sim, session) -> None:
    sim = await make_sim()
    ch = adapter(sim, session)
    results = await asyncio.gather(*(ch.send([wechat(i)]) for i in range(100)))
    assert all(r[0].outcome is Outcome.ACCEPTED for r in results)
    assert sim.token_requests == 1 and ch.tokens.fetches == 1


async def test_token_is_renewed_when_less_than_300_seconds_remain(make_sim, session) -> None:
    clock = FakeClock()
    sim = await make_sim(clock=clock)
    ch = adapter(sim, session, clock=clock)
    await ch.send([wechat(1)])
    first = ch.tokens.token
    clock.advance(7200 - 301)
    await ch.send([wechat(2)])
    assert sim.token_requests == 1
    clock.advance(2)  # now 299 s remain
    [res] = await ch.send([wechat(3)])
    assert res.outcome is Outcome.ACCEPTED and sim.token_requests == 2 and ch.tokens.token != first


async def test_expired_token_42001_is_refreshed_and_retried_once(make_sim, session) -> None:
    sim_clock = FakeClock()
    sim = await make_sim(clock=sim_clock)
    ch = adapter(sim, session)  # the adapter's own clock does not know the token expired
    await ch.send([wechat(1)])
    sim_clock.advance(7300)
    [res] = await ch.send([wechat(2)])
    assert res.outcome is Outcome.ACCEPTED and sim.token_requests == 2


async def test_revoked_token_40001_is_refreshed(make_sim, session) -> None:
    sim = await make_sim()
    ch = adapter(sim, session)
    await ch.send([wechat(1)])
    sim.tokens.clear()
    [res] = await ch.send([wechat(2)])
    assert res.outcome is Outcome.ACCEPTED and sim.token_requests == 2


async def test_a_token_dropped_by_the_platform_is_refreshed_and_the_send_retried_once(make_sim, session) -> None:
    sim = await make_sim(faults=Faults(error_rates={"40001": 1.0}))
    ch = adapter(sim, session)
    # a token is never rejected on its first use (the platform does not reject what it just issued)
    [first] = await ch.send([wechat(1)])
    assert first.outcome is Outcome.ACCEPTED
    # now the used token is dropped by the platform: one refresh, one retry with the fresh token
    [second] = await ch.send([wechat(2)])
    assert second.outcome is Outcome.ACCEPTED
    assert sim.token_requests == 2 and sim.requests - sim.token_requests == 3
    assert [r.delivery_id for r in sim.records] == ["w-1", "w-2"]


async def test_same_token_back_forces_a_refresh() -> None:
    calls: list[bool] = []

    async def fetch(force: bool) -> tuple[str, float]:
        calls.append(force)
        return ("T2" if force else "T1"), 7200.0

    cache = _TokenCache(fetch, FakeClock(), 300)
    assert await cache.get() == "T1"
    assert await cache.refresh(rejected="T1") == "T2"
    assert calls == [False, False, True]


async def test_45009_stops_sending_until_midnight(make_sim, session) -> None:
    sim = await make_sim(faults=Faults(error_rates={"45009": 1.0}))
    ch = adapter(sim, session)
    ch.tokens.token, ch.tokens.expires_at = "preset", 1e18
    sim.tokens["preset"] = (APPID, 1e18)
    [res] = await ch.send([wechat(1)])
    assert res.outcome is Outcome.RETRYABLE and res.code == "45009" and res.retry_after_s and res.retry_after_s > 0
    before = sim.requests
    [again] = await ch.send([wechat(2)])
    assert again.code == "45009" and sim.requests == before  # not even asked


async def test_simulator_daily_quota_answers_45009(make_sim, session) -> None:
    sim = await make_sim(config=WechatSimConfig(daily_quota=2))
    results = await adapter(sim, session).send([wechat(i) for i in range(3)])
    assert sorted(r.code for r in results) == ["0", "0", "45009"]


async def test_unreachable_recipients(make_sim, session) -> None:
    users = {openid(1): "not_following", openid(2): "unfollowed", openid(3): "refused"}
    sim = await make_sim(config=WechatSimConfig(users=users))
    results = await adapter(sim, session).send([wechat(1), wechat(2), wechat(3), wechat(4)])
    assert [(r.outcome, r.code) for r in results] == [
        (Outcome.UNREACHABLE, "43004"),
        (Outcome.UNREACHABLE, "40003"),
        (Outcome.UNREACHABLE, "43101"),
        (Outcome.ACCEPTED, "0"),
    ]


async def test_template_rules_are_checked_before_sending(make_sim, session) -> None:
    sim = await make_sim()
    too_long = wechat(1, thing1="一" * 21)
    missing = wechat(2)
    missing = type(missing)(missing.delivery_id, missing.recipient, missing.template, {"thing1": "x"})
    results = await adapter(sim, session).send([too_long, missing])
    assert [(r.outcome, r.code) for r in results] == [(Outcome.PERMANENT, "47003")] * 2
    assert sim.token_requests == 0 and sim.records == []


async def test_simulator_checks_template_keys_itself(make_sim, session) -> None:
    sim = await make_sim()
    async with session.post(f"{sim.url}/cgi-bin/stable_token",
                            json={"grant_type": "client_credential", "appid": APPID, "secret": SECRET}) as r:
        token = (await r.json())["access_token"]
    assert len(token) >= 100
    body = {"touser": openid(1), "template_id": TEMPLATE_ID, "data": {"thing1": {"value": "x"}}}
    async with session.post(f"{sim.url}/cgi-bin/message/template/send", params={"access_token": token}, json=body) as r:
        answer = await r.json()
    assert answer["errcode"] == 47003 and "data.time2.value is empty" in answer["errmsg"]


async def test_bad_secret_is_permanent(make_sim, session) -> None:
    sim = await make_sim()
    [res] = await adapter(sim, session, secret="wrong").send([wechat(1)])
    assert (res.outcome, res.code) == (Outcome.PERMANENT, "40125")


async def test_ip_whitelist(make_sim, session) -> None:
    sim = await make_sim(config=WechatSimConfig(ip_whitelist=frozenset({"10.0.0.1"})))
    [res] = await adapter(sim, session).send([wechat(1)])
    assert (res.outcome, res.code) == (Outcome.PERMANENT, "40164")


async def test_duplicate_client_msg_id_is_sent_once(make_sim, session) -> None:
    sim = await make_sim()
    ch = adapter(sim, session)
    [a] = await ch.send([wechat(1)])
    [b] = await ch.send([wechat(1)])
    assert a.provider_message_id == b.provider_message_id and len(sim.records) == 1


async def test_timeout_is_resent_safely_thanks_to_client_msg_id(make_sim, session) -> None:
    sim = await make_sim()
    ch = adapter(sim, session, timeout_s=0.3)
    await ch.send([wechat(0)])  # fetch the token before faults start
    sim.faults = Faults(timeout_rate=1.0, hang_s=5.0)
    [unsure] = await Router([ch]).send("wechat", [wechat(1)])
    assert unsure.maybe_sent  # WeChat cannot be asked ...
    assert ch.resend_window_s == 600.0  # ... but drops a repeat of the same client_msg_id for ten minutes
    sim.faults = Faults()
    [res] = await ch.send([wechat(1)])
    assert res.outcome is Outcome.ACCEPTED and [r.delivery_id for r in sim.records] == ["w-0", "w-1"]


async def test_events_are_pushed_signed_and_parsed(make_sim, session, receiver: CallbackReceiver) -> None:
    receiver.answer_body = b"success"
    sim = await make_sim(config=WechatSimConfig(callback_url=receiver.url, event_delay_s=0.0,
                                                users={openid(2): "blocked"}))
    results = await adapter(sim, session).send([wechat(1), wechat(2)])
    await receiver.wait_for(2)
    events = {}
    for body, query in zip(receiver.bodies, receiver.queries, strict=True):
        assert verify_wechat_signature("sim-callback-token", query["signature"], query["timestamp"], query["nonce"])
        assert not verify_wechat_signature("other-token", query["signature"], query["timestamp"], query["nonce"])
        event = parse_wechat_event(body)
        assert event is not None
        events[event.provider_message_id] = event
    ok, blocked = events[results[0].provider_message_id], events[results[1].provider_message_id]
    assert ok.delivered and ok.recipient == openid(1)
    assert not blocked.delivered and blocked.outcome is Outcome.UNREACHABLE and blocked.code == "failed:user block"
