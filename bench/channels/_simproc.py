"""The simulators' side of the benchmark, in its own module so a spawned process can import it."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from multiprocessing.connection import Connection


def serve(conn: Connection) -> None:
    """Run all simulators until told to stop; answer "stats" with (CPU time, messages recorded per
    simulator, HTTP requests received per simulator)."""
    from channels.simulators import start_all

    async def main() -> None:
        sims = await start_all()
        sims.wechat.config = dataclasses.replace(sims.wechat.config, daily_quota=10_000_000)
        conn.send(sims.urls)
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command == "stop":
                break
            conn.send((
                time.process_time(),
                {name: len(sim.records) for name, sim in sims.all.items()},
                {name: sim.http_requests for name, sim in sims.all.items()},
            ))
        await sims.close()

    asyncio.run(main())
