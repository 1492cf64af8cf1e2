"""SIGTERM to a real ``policy-push worker`` / ``policy-push serve`` while it is sending (a WeChat account that
answers in 0.4 s, 20 messages a second, so a claimed batch of 120 takes six seconds): it stops claiming, lets the running tick finish its
slice, records what providers answered, hands back what it had claimed but not sent, and exits 0 within
``STOP_GRACE_S`` without a traceback. A second worker then sends the rest: everyone gets the push once."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from sqlalchemy import func, select

from channels.simulators import Faults, SimulatorSet, WechatSimConfig, WechatSimulator
from channels.simulators import start_all as _start_all
from policy_push.statuses import DeliveryStatus
from policy_push.storage.campaign_tables import DeliveryRow

from ...faults.harness import Fleet, process_env, received
from ..sending.seed import seed_campaign
from .cli_run import free_port

N = 120
GRACE_S = 10.0

pytestmark = pytest.mark.slow


@pytest.fixture
def db_kind() -> str:
    return "sqlite"  # the default database; the stop path is the same on PostgreSQL


async def _sims() -> SimulatorSet:
    sims = await _start_all(time_factor=0.001)
    await sims.wechat.close()
    slow = WechatSimulator(WechatSimConfig(), faults=Faults(latency_s=0.4))
    await slow.start()
    return SimulatorSet(aliyun=sims.aliyun, tencent=sims.tencent, wechat=slow, jpush=sims.jpush)


async def _counts(sessions) -> dict[str, int]:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        rows = await s.execute(select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status))
        return {status: int(n) for status, n in rows}


@pytest.mark.parametrize("command", ["worker", "serve"])
async def test_sigterm_while_sending_stops_cleanly_and_loses_nothing(db_settings, session_factory, cipher, command: str) -> None:
    sims = await _sims()
    fleet: Fleet | None = None
    try:
        await seed_campaign(session_factory, cipher, db_settings, n=N, urgent=True, channel_of=lambda i: "wechat", fallbacks=False)
        env = process_env(db_settings, sims, defaults=True, LOG_LEVEL="INFO", STOP_GRACE_S=GRACE_S, WECHAT_RATE_PER_S=20)
        fleet = Fleet(env)
        args = ["serve", "--port", str(free_port())] if command == "serve" else ["worker", "--worker-id", "first"]
        fleet.add("first", *args)
        await fleet.start("first")
        started = time.monotonic()
        while len(sims.wechat.request_times) < 10:  # a claimed batch is being sent (the simulator counts requests)
            assert time.monotonic() - started < 120, fleet.procs["first"].log[-3000:].decode(errors="replace")
            await asyncio.sleep(0.05)
        process = fleet.procs["first"].process
        assert process is not None
        stop_at = time.monotonic()
        requests = len(sims.wechat.request_times)
        os.kill(process.pid, signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 60)
        took = time.monotonic() - stop_at
        await asyncio.sleep(0.2)
        log = fleet.procs["first"].log.decode(errors="replace")
        after = await _counts(session_factory)
        print(f"\n{command}: SIGTERM after {requests} WeChat requests; exit {code} after {took:.1f} s; {after}")
        assert code == 0, log[-3000:]
        assert took <= GRACE_S, log[-3000:]
        assert "Traceback" not in log and "CancelledError" not in log, log[-3000:]
        assert after.get(DeliveryStatus.SENDING, 0) == 0, after  # recorded or handed back, none left claimed
        assert after.get(DeliveryStatus.CREATED, 0) > 0, after  # the stop came mid-way: work was handed back

        fleet.add("second", "worker", "--worker-id", "second")
        await fleet.start("second")
        while (await _counts(session_factory)).get(DeliveryStatus.SENT, 0) < N:
            assert time.monotonic() - stop_at < 150, fleet.procs["second"].log.decode(errors="replace")[-3000:]
            await asyncio.sleep(0.2)
        final = await _counts(session_factory)
        got = received(sims)["wechat"]
        assert final.get(DeliveryStatus.SENT, 0) == N, final
        assert len(got) == N and max(got.values()) == 1, got.most_common(3)  # everyone once, nobody twice
    finally:
        if fleet is not None:
            await fleet.stop_all()
        await sims.close()
