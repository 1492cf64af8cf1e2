"""A second dispatching process for ``bench.dispatch`` (``--workers 2``): its own engine, runtime and pipeline
on the same database, started when the first process starts sending; it sends until nothing is left.

Run by ``multiprocessing`` (spawn): the parent sends the settings' values, then "go"; the child answers
with (CPU seconds it spent sending, whether it saw the outbox idle).
"""

from __future__ import annotations

import asyncio
import resource
from multiprocessing.connection import Connection
from typing import Any

from policy_push.config import Settings
from policy_push.refdata import load_reference_data
from policy_push.runtime import Runtime
from policy_push.security import PiiCipher
from policy_push.sending import open_pipeline
from policy_push.storage import create_engine, session_factory
from scheduler import SystemClock


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _send(values: dict[str, Any], conn: Connection) -> tuple[float, bool]:
    settings = Settings(**values)
    engine = create_engine(settings)
    sessions = session_factory(engine)
    runtime = Runtime(settings, engine, sessions, PiiCipher.from_settings(settings), load_reference_data())
    try:
        conn.send("ready")
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "go"
        cpu0 = _cpu()
        async with open_pipeline(runtime, clock=SystemClock()) as p:
            p.send_budget_s = None
            idle = await p.run_until_idle(timeout_s=600, leader=False)
        return _cpu() - cpu0, idle
    finally:
        await engine.dispose()


def run(values: dict[str, Any], conn: Connection) -> None:
    conn.send(asyncio.run(_send(values, conn)))
