"""Running real ``policy-push serve`` and ``policy-push worker`` processes (normal scheduler mode) against
simulators in the test's own event loop; killing them; cutting their database connections; counting
what reached the simulators."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from channels.simulators import SimulatorSet
from policy_push.config import Settings
from policy_push.storage import create_engine
from policy_push.storage.campaign_tables import DeliveryRow

PYTHON = [sys.executable, "-m", "policy_push"]


def process_env(
    settings: Settings, sims: SimulatorSet, *, defaults: bool = False, **extra: object
) -> dict[str, str]:
    """Environment of a service process: the test's database, PII key and simulators. Unless ``defaults``,
    short leases, retries and timeouts keep a crash test to a minute."""
    assert settings.pii_key is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_PUSH_")}
    values: dict[str, object] = {
        "DATABASE_URL": settings.effective_database_url,
        "PII_KEY": settings.pii_key.get_secret_value(),
        "DATA_DIR": str(settings.data_dir),
        "API_TOKEN": "fault-test-token",
        "ALIYUN_SMS_URL": sims.aliyun.url + "/",
        "TENCENT_SMS_URL": sims.tencent.url + "/",
        "WECHAT_URL": sims.wechat.url,
        "JPUSH_URL": sims.jpush.url,
        "LOG_LEVEL": "WARNING",
    }
    if not defaults:
        values.update({
            "QUIET_HOURS": "", "CLAIM_LEASE_S": 3, "WORKER_POLL_S": 0.2, "RECEIPT_WAIT_S": 2, "PROVIDER_TIMEOUT_S": 1.0,
            "RETRY_BASE_DELAY_S": 0.2, "RETRY_MAX_DELAY_S": 1.0, "RETRY_MAX_ATTEMPTS": 8, "DISPATCH_BATCH_SIZE": 200,
        })  # fmt: skip
    values.update(extra)
    env.update({f"POLICY_PUSH_{k}": str(v) for k, v in values.items()})
    return env


@dataclass
class Proc:
    name: str
    argv: list[str]
    process: asyncio.subprocess.Process | None = None
    started: float = 0.0
    log: bytearray = field(default_factory=bytearray)


class Fleet:
    """Named service processes, started, killed with SIGKILL at chosen moments, restarted."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.procs: dict[str, Proc] = {}
        #: (process name, seconds it had run when killed)
        self.kills: list[tuple[str, float]] = []

    def add(self, name: str, *args: str) -> None:
        self.procs[name] = Proc(name, [*PYTHON, *args])

    async def start(self, name: str) -> None:
        proc = self.procs[name]
        proc.process = await asyncio.create_subprocess_exec(
            *proc.argv, env=self.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        proc.started = time.monotonic()
        asyncio.get_running_loop().create_task(self._drain(proc, proc.process))

    async def _drain(self, proc: Proc, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while chunk := await process.stdout.read(65536):
            proc.log += chunk
            del proc.log[: max(0, len(proc.log) - 200_000)]

    async def kill9(self, name: str) -> float:
        proc = self.procs[name]
        assert proc.process is not None
        age = time.monotonic() - proc.started
        if proc.process.returncode is None:
            os.kill(proc.process.pid, signal.SIGKILL)
        await proc.process.wait()
        self.kills.append((name, age))
        return age

    async def stop_all(self, timeout_s: float = 30.0) -> None:
        for proc in self.procs.values():
            if proc.process is not None and proc.process.returncode is None:
                proc.process.terminate()
        for proc in self.procs.values():
            if proc.process is None:
                continue
            try:
                await asyncio.wait_for(proc.process.wait(), timeout_s)
            except TimeoutError:
                proc.process.kill()
                await proc.process.wait()

    def alive(self, name: str) -> bool:
        proc = self.procs[name]
        return proc.process is not None and proc.process.returncode is None


async def chaos(fleet: Fleet, *, seconds: float, rng: random.Random, at_start_share: float = 0.3) -> None:
    """Kill a random process every 0.3-2.5 s for ``seconds``, and restart it; some kills land within
    milliseconds of a start (the process killed again while it opens its database and providers)."""
    end = time.monotonic() + seconds
    names = list(fleet.procs)
    while time.monotonic() < end:
        await asyncio.sleep(rng.uniform(0.3, 2.5))
        name = rng.choice(names)
        if rng.random() < at_start_share:
            await fleet.kill9(name)
            await fleet.start(name)
            await asyncio.sleep(rng.uniform(0.005, 0.06))
        await fleet.kill9(name)
        await fleet.start(name)


async def cut_connections(
    admin_url: str, application_name: str, *, seconds: float, rng: random.Random
) -> list[int]:
    """``pg_terminate_backend`` of every connection the service processes hold, every 0.5-2 s; returns how
    many were cut each time. Only connections with our application name: other tests share the server."""
    cut: list[int] = []
    engine = create_engine(admin_url)
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            await asyncio.sleep(rng.uniform(0.5, 2.0))
            async with engine.connect() as conn:
                n = await conn.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :a"
                    ),
                    {"a": application_name},
                )
                await conn.commit()
            cut.append(int(n or 0))
    finally:
        await engine.dispose()
    return cut


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_application_name(url: str, name: str) -> str:
    return make_url(url).update_query_dict({"application_name": name}).render_as_string(hide_password=False)


async def status_counts(sessions) -> Counter[str]:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        return Counter(
            dict(
                (await s.execute(select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status))).all()
            )
        )


def received(sims: SimulatorSet) -> dict[str, Counter[str]]:
    """Per channel: how many messages each address got, from the simulators' own records (SMS from
    either provider: a person texted once by Aliyun and once by Tencent got the SMS twice)."""
    return {
        "sms": Counter(r.recipient for r in sims.aliyun.records)
        + Counter(r.recipient.removeprefix("+86") for r in sims.tencent.records),
        "wechat": Counter(r.recipient for r in sims.wechat.records),
        "app": Counter(r.recipient for r in sims.jpush.records),
    }
