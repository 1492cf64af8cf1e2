"""Running real ``policy-push worker`` processes against simulators in the test's own event loop."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import Mapping

from sqlalchemy import func, select

from channels.simulators import SimulatorSet
from policy_push.config import Settings
from policy_push.storage.campaign_tables import DeliveryRow

WORKER = [sys.executable, "-m", "policy_push", "worker", "--exit-when-idle", "--timeout", "240"]


def worker_env(settings: Settings, sims: SimulatorSet, **extra: object) -> dict[str, str]:
    """Environment of a worker process: the test's database, PII key and simulators; fast timeouts."""
    assert settings.pii_key is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_PUSH_")}
    values: dict[str, object] = {
        "DATABASE_URL": settings.effective_database_url,
        "PII_KEY": settings.pii_key.get_secret_value(),
        "DATA_DIR": str(settings.data_dir),
        "ALIYUN_SMS_URL": sims.aliyun.url + "/",
        "WECHAT_URL": sims.wechat.url,
        "JPUSH_URL": sims.jpush.url,
        "QUIET_HOURS": "",
        "CLAIM_LEASE_S": 3,
        "RECEIPT_WAIT_S": 0,
        "PROVIDER_TIMEOUT_S": 1.0,
        "RETRY_BASE_DELAY_S": 0.2,
        "RETRY_MAX_DELAY_S": 1.0,
        "RETRY_MAX_ATTEMPTS": 8,
        "SMS_RATE_PER_S": 400,
        "WECHAT_RATE_PER_S": 3000,
        "APP_RATE_PER_S": 200,
        "DISPATCH_BATCH_SIZE": 500,
        "DISPATCH_CONCURRENCY": 4,
        "LOG_LEVEL": "WARNING",
    }
    values.update(extra)
    env.update({f"POLICY_PUSH_{k}": str(v) for k, v in values.items()})
    return env


async def start_worker(env: Mapping[str, str], worker_id: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *WORKER, "--worker-id", worker_id, env=dict(env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def kill9(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()


async def finish(proc: asyncio.subprocess.Process, timeout_s: float = 240) -> str:
    out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, f"worker exited {proc.returncode}:\n{text[-4000:]}"
    return text


async def status_counts(sessions) -> Counter[str]:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        return Counter(dict((await s.execute(select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status))).all()))


def received(sims: SimulatorSet) -> dict[str, Counter[str]]:
    """Per channel: how many times each address got a message, from the simulators' own records."""
    return {
        "sms": Counter(r.recipient for r in sims.aliyun.records),
        "wechat": Counter(r.recipient for r in sims.wechat.records),
        "app": Counter(r.recipient for r in sims.jpush.records),
    }
