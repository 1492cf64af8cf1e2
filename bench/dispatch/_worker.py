"""A further dispatching process for ``bench.dispatch`` (``--db postgres:2``): its own engine, runtime and
pipeline on the same database, told to start when the first process starts its dispatch tick; it claims,
sends and records until nothing is left.

Run by ``multiprocessing`` (spawn): the parent sends the settings' values, then "go"; the child answers
with (CPU seconds it spent sending, whether it saw the outbox idle).
"""

from __future__ import annotations

import asyncio
import resource
import time
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
        deadline = time.monotonic() + 600
        async with open_pipeline(runtime, clock=SystemClock()) as p:
            # a sender only (the first process runs the dispatch tick): claims from the first committed batch
            while not (idle := await p.is_idle()) and time.monotonic() < deadline:
                if not await p.dispatcher.send_due():
                    await asyncio.sleep(0.05)
        return _cpu() - cpu0, idle
    finally:
        await engine.dispose()


def run(values: dict[str, Any], conn: Connection) -> None:
    conn.send(asyncio.run(_send(values, conn)))
