"""One suite every adapter must pass (scikit-learn's check_estimator idea), over its simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from channels import Channel, OutboundMessage, Outcome
from channels.simulators import SimulatorSet, start_all
from tests.channels.helpers import push, sms, wechat

KINDS = ["aliyun_sms", "tencent_sms", "wechat", "jpush"]


@pytest.fixture
async def sims() -> AsyncIterator[SimulatorSet]:
    s = await start_all(time_factor=0.01)
    yield s
    await s.close()


def _pick(sims: SimulatorSet, session: aiohttp.ClientSession, name: str) -> Channel:
    return {ch.name: ch for ch in sims.channels(session)}[name]


def _messages(channel: Channel, n: int) -> list[OutboundMessage]:
    make = {"sms": sms, "wechat": wechat, "app": push}[channel.kind]
    return [make(i) for i in range(n)]


@pytest.mark.parametrize("name", KINDS)
async def test_one_result_per_message_in_order(sims, session, name: str) -> None:
    channel = _pick(sims, session, name)
    batch = _messages(channel, 7)
    results = await channel.send(batch)
    assert [r.delivery_id for r in results] == [m.delivery_id for m in batch]
    assert all(r.outcome is Outcome.ACCEPTED and r.provider == name for r in results)


@pytest.mark.parametrize("name", KINDS)
async def test_dead_provider_gives_retryable_results_not_exceptions(sims, session, name: str) -> None:
    channel = _pick(sims, session, name)
    await sims.close()  # nobody listens any more
    results = await channel.send(_messages(channel, 2))
    assert [r.outcome for r in results] == [Outcome.RETRYABLE] * 2
    assert all(r.provider_fault and not r.maybe_sent for r in results)


@pytest.mark.parametrize("name", KINDS)
async def test_every_code_in_the_table_is_an_outcome(sims, session, name: str) -> None:
    channel = _pick(sims, session, name)
    assert channel.code_table and all(isinstance(o, Outcome) for o in channel.code_table.values())
    assert channel.throttle_codes <= set(channel.code_table) | {"QUOTA_EXHAUSTED"}
