"""The JPush adapter against the JPush simulator over loopback HTTP."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from channels import Inquiry, JPush, JPushConfig, Outcome, RateLimit, Router
from channels.signing import basic_auth_header
from channels.simulators import Faults, JPushSimConfig, JPushSimulator
from tests.channels.helpers import push, reg_id

APP_KEY, MASTER = "simappkey000000000000000", "simmastersecret000000000"


@pytest.fixture
def make_sim(start_sim: Callable[..., Awaitable[JPushSimulator]]) -> Callable[..., Awaitable[JPushSimulator]]:
    return functools.partial(start_sim, JPushSimulator)


def adapter(sim: JPushSimulator, session: aiohttp.ClientSession, *, secret: str = MASTER, **kw: Any) -> JPush:
    config = JPushConfig(APP_KEY, secret, base_url=sim.url, timeout_s=kw.pop("timeout_s", 2.0),
                         rate=kw.pop("rate", RateLimit(requests_per_s=1000, burst=100)), **kw)
    return JPush(config, session)


async def test_personal_pushes_go_1000_to_a_request_each_under_its_cid(make_sim, session) -> None:
    """Batch single push: every message keeps its own text (its recipient's reason and link)."""
    sim = await make_sim()
    msgs = [push(i, text=f"您符合第{i}项条件") for i in range(2500)]
    results = await adapter(sim, session).send(msgs)
    assert all(r.outcome is Outcome.ACCEPTED and r.provider_message_id for r in results)
    assert len(sim.push_times) == 3 and len(sim.records) == 2500  # 1000 + 1000 + 500, one request each
    assert {rec.text for rec in sim.records} == {f"专精特新奖励: 您符合第{i}项条件" for i in range(2500)}
    assert len({rec.delivery_id for rec in sim.records}) == 2500  # a cid each
    assert all(rec.delivery_id.startswith(f"{APP_KEY}-") for rec in sim.records)


async def test_push_by_text_with_sendno_and_time_to_live(make_sim, session) -> None:
    sim = await make_sim()
    [res] = await adapter(sim, session, time_to_live_s=3600, batch_single=False).send([push(1)])
    assert res.outcome is Outcome.ACCEPTED and res.provider_message_id
    [rec] = sim.records
    assert rec.recipient == reg_id(1) and rec.delivery_id.startswith(f"{APP_KEY}-") and "专精特新奖励" in rec.text


async def test_by_text_audiences_are_batched_by_1000(make_sim, session) -> None:
    sim = await make_sim()
    results = await adapter(sim, session, batch_single=False).send([push(i) for i in range(2500)])
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    assert len(sim.push_times) == 3 and len(sim.records) == 2500
    assert len({r.provider_message_id for r in results}) == 3


async def test_by_text_different_texts_are_separate_pushes(make_sim, session) -> None:
    sim = await make_sim()
    await adapter(sim, session, batch_single=False).send([push(1), push(2, text="另一条政策")])
    assert len(sim.push_times) == 2


async def test_an_appkey_without_batch_single_push_falls_back_to_pushes_by_text(make_sim, session, caplog) -> None:
    sim = await make_sim(config=JPushSimConfig(batch_single=False))  # JPush answers 2006: not a VIP AppKey
    ch = adapter(sim, session)
    first = await ch.send([push(1), push(2, text="另一条政策")])
    assert all(r.outcome is Outcome.ACCEPTED for r in first) and len(sim.records) == 2
    assert "refused batch single push (2006" in caplog.text
    await ch.send([push(3)])
    assert len(sim.records) == 3 and caplog.text.count("refused batch single push") == 1  # asked once


async def test_a_timed_out_push_is_replayed_under_its_cid_never_twice(make_sim, session) -> None:
    """The push reached JPush but its answer did not come back: the router asks, the adapter replays
    the push under its cid, and JPush answers with the first push instead of pushing again."""
    sim = await make_sim(faults=Faults(timeout_rate=1.0, hang_s=5.0))
    ch = adapter(sim, session, timeout_s=0.3)
    router = Router([ch])
    sent = asyncio.ensure_future(router.send("app", [push(1)]))
    await asyncio.sleep(0.2)
    sim.faults = Faults()
    [res] = await sent
    assert res.outcome is Outcome.ACCEPTED and not res.maybe_sent
    assert len(sim.records) == 1 and res.provider_message_id == sim.records[0].message_id
    [again] = await ch.query([Inquiry(push(1).delivery_id, reg_id(1))])
    assert again.sent is None  # answered once; a new adapter (a restart) knows no cid either
    [other] = await adapter(sim, session).query([Inquiry(push(1).delivery_id, reg_id(1))])
    assert other.sent is None


async def test_a_cid_pushes_at_most_once_at_the_simulator(make_sim, session) -> None:
    sim = await make_sim()
    auth = {"Authorization": basic_auth_header(APP_KEY, MASTER)}
    async with session.get(f"{sim.url}/v3/push/cid", params={"count": "1"}, headers=auth) as resp:
        [cid] = (await resp.json())["cidlist"]
    body = {"pushlist": {cid: {"platform": "all", "target": reg_id(1), "notification": {"alert": "x"}}}}
    answers = []
    for _ in range(2):
        async with session.post(f"{sim.url}/v3/push/batch/regid/single", json=body, headers=auth) as resp:
            answers.append((await resp.json())[cid])
    assert answers[0] == answers[1] and "msg_id" in answers[0] and len(sim.records) == 1
    unknown = {"pushlist": {"k-never-issued": body["pushlist"][cid]}}
    async with session.post(f"{sim.url}/v3/push/batch/regid/single", json=unknown, headers=auth) as resp:
        assert (await resp.json())["k-never-issued"]["error"]["code"] == 1003


async def test_unknown_registration_ids_are_unreachable(make_sim, session) -> None:
    sim = await make_sim(config=JPushSimConfig(unknown_ids=frozenset({reg_id(1)})))
    ch = adapter(sim, session)
    [gone] = await ch.send([push(1)])
    assert (gone.outcome, gone.code) == (Outcome.UNREACHABLE, "1011")
    [live] = await ch.send([push(2)])
    assert live.outcome is Outcome.ACCEPTED


async def test_wrong_master_secret_is_refused(make_sim, session) -> None:
    sim = await make_sim()
    [res] = await adapter(sim, session, secret="wrong").send([push(1)])
    assert (res.outcome, res.code) == (Outcome.PERMANENT, "1004")
    assert sim.records == []


async def test_get_is_refused_with_1001(make_sim, session) -> None:
    sim = await make_sim()
    async with session.get(f"{sim.url}/v3/push") as resp:
        assert resp.status == 405 and (await resp.json())["error"]["code"] == 1001


async def test_oversized_audience_is_refused_by_the_simulator(make_sim, session) -> None:
    sim = await make_sim()
    body = {"platform": "all", "audience": {"registration_id": [reg_id(i) for i in range(1001)]},
            "notification": {"alert": "x"}}
    auth = {"Authorization": basic_auth_header(APP_KEY, MASTER)}
    async with session.post(f"{sim.url}/v3/push", json=body, headers=auth) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["code"] == 1003


async def test_payload_too_large_is_1005(make_sim, session) -> None:
    sim = await make_sim()
    [res] = await adapter(sim, session).send([push(1, text="长" * 2100)])
    assert (res.outcome, res.code) == (Outcome.PERMANENT, "1005")


async def test_server_error_is_retryable(make_sim, session) -> None:
    sim = await make_sim(faults=Faults(error_rates={"1000": 1.0}))
    [res] = await adapter(sim, session).send([push(1)])
    assert (res.outcome, res.code) == (Outcome.RETRYABLE, "1000") and res.provider_fault


async def test_rate_limit_headers_are_honoured(make_sim, session) -> None:
    # 5 pushes per 0.3 s window; 12 pushes must span at least two window resets, with no 429 lost
    sim = await make_sim(config=JPushSimConfig(pushes_per_window=5, window_s=60, time_factor=0.005))
    ch = adapter(sim, session)
    results = [await ch.send([push(i, text=f"t{i}")]) for i in range(12)]
    assert all(r[0].outcome is Outcome.ACCEPTED for r in results)
    assert ch.rate_window is not None and ch.rate_window[0] == 5
    times = sim.push_times
    for i in range(len(times) - 5):
        assert times[i + 5] - times[i] >= 0.3 * 0.9  # never more than 5 in a window


async def test_429_is_waited_out_without_spending_a_retry(make_sim, session) -> None:
    sim = await make_sim(config=JPushSimConfig(pushes_per_window=3, window_s=60, time_factor=0.005))
    ch = adapter(sim, session)
    results = await asyncio.gather(*(ch.send([push(i, text=f"t{i}")]) for i in range(8)))
    assert all(r[0].outcome is Outcome.ACCEPTED for r in results)
    assert len(sim.records) == 8


async def test_persistent_429_becomes_retryable(make_sim, session) -> None:
    sim = await make_sim(config=JPushSimConfig(time_factor=0.001), faults=Faults(error_rates={"2001": 1.0}))
    ch = adapter(sim, session, max_throttle_waits=1)
    [res] = await ch.send([push(1)])
    assert (res.outcome, res.code) == (Outcome.RETRYABLE, "2001") and not res.provider_fault
