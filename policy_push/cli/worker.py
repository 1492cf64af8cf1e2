"""``policy-push worker``: the dispatch ticks without the HTTP server.

Run one per node (any number against one PostgreSQL; one on SQLite). ``--exit-when-idle`` runs the
ticks' bodies in a loop until nothing is left to send and exits (for batch jobs and the fault tests);
otherwise the scheduler runs until SIGINT/SIGTERM, then stops gracefully: no new claims, running
ticks finish within ``STOP_GRACE_S``, rows claimed but not sent are handed back, exit status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time

from policy_push.config import Settings
from policy_push.runtime import open_runtime

from .help import add_documented

log = logging.getLogger("policy_push.worker")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_documented(sub, "worker", "run the dispatch ticks (no HTTP server)", _worker.__doc__)
    p.add_argument("--exit-when-idle", action="store_true", help="exit once nothing is left to send")
    p.add_argument("--timeout", type=float, default=3600.0, help="with --exit-when-idle: give up after this many seconds")
    p.add_argument("--worker-id", help="name in deliveries.claimed_by (default host:pid)")
    p.add_argument("--time-factor", type=float, help="simulated seconds per real second (demo)")
    p.set_defaults(handler=_worker)


async def run_worker(settings: Settings, *, exit_when_idle: bool = False, timeout_s: float = 3600.0) -> int:
    from policy_push.sending import build_scheduler, open_pipeline

    async with open_runtime(settings) as runtime, open_pipeline(runtime) as pipeline:
        if exit_when_idle:
            # a single worker on SQLite, or one of several on PostgreSQL: settle is safe to overlap
            idle = await pipeline.run_until_idle(timeout_s=timeout_s)
            stats = pipeline.dispatcher.stats
            print(f"worker {pipeline.dispatcher.worker_id}: claimed {stats.claimed}, accepted {stats.accepted}, "
                  f"idle={idle}", flush=True)  # fmt: skip
            return 0 if idle else 1
        scheduler = build_scheduler(settings, pipeline.ticks(), clock=pipeline.clock)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        scheduler.start()
        print(f"worker {pipeline.dispatcher.worker_id}: ticks {sorted(scheduler.ticks)} (Ctrl+C to stop)", flush=True)
        try:
            await stop.wait()
        finally:
            started = time.monotonic()
            log.info("stopping: no new claims; waiting up to %.0f s for running ticks", settings.stop_grace_s)
            pipeline.dispatcher.stopping = True
            await scheduler.shutdown()
        held = pipeline.dispatcher.in_flight
    # open_pipeline's exit recorded what was held and handed back what was never sent
    print(f"worker {pipeline.dispatcher.worker_id}: stopped in {time.monotonic() - started:.1f} s "
          f"({held} claimed row(s) recorded or handed back)", flush=True)  # fmt: skip
    return 0


def _worker(args: argparse.Namespace) -> int:
    """``policy-push worker``

    Claims due deliveries and sends them, settles lapsed claims, polls receipts, closes expired policies
    and starts deadline reminders. Any number of workers may share one PostgreSQL database (one on SQLite).
    SIGTERM or SIGINT: no new claims, running ticks finish within POLICY_PUSH_STOP_GRACE_S, unsent claimed
    rows are handed back, exit status 0.

    Example::

      POLICY_PUSH_DATABASE_URL=postgresql+asyncpg://pp@db:5432/policy_push policy-push worker
      policy-push worker --exit-when-idle --timeout 600    # batch job: send what is due, then exit
    """
    from policy_push.cli import settings_from

    settings = settings_from(args, worker_id=args.worker_id, time_factor=args.time_factor)
    from policy_push.cli.serve import refuse_demo_key

    refuse_demo_key(settings)
    return asyncio.run(run_worker(settings, exit_when_idle=args.exit_when_idle, timeout_s=args.timeout))
