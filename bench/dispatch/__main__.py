"""A 100,000-recipient campaign end to end against the simulators (no latency), on SQLite and PostgreSQL.

End to end = from a scheduled, approved campaign to every delivery recorded: the dispatch tick
verifies the approval and writes the outbox, then claim -> provider call -> record until nothing is
left (``Pipeline.run_until_idle``). Seeding the profiles and the campaign is not timed. The
simulators run in a child process (``bench.channels._simproc``), so "CPU" below is the dispatching
process alone. The baseline sends the same messages through the same adapters with no database.

With ``postgres:2`` a second process (``bench.dispatch._worker``) sends beside the first from the moment the
dispatch tick starts; each has half the providers' rates, so the pair is held to one worker's pace. Its CPU is
added to the dispatcher CPU column; "all sent once" counts, at the simulators, every delivery exactly once.

    python -m bench.dispatch [--n 100000] [--db sqlite,postgres,postgres:2] [--out bench/dispatch/RESULTS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing as mp
import os
import platform
import resource
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select, text

from bench.channels._simproc import serve
from bench.dispatch import _worker
from channels import OutboundMessage, Router
from policy_push.campaigns import render_for_recipient
from policy_push.campaigns.messages import short_code
from policy_push.config import Settings
from policy_push.refdata import load_reference_data
from policy_push.runtime import Runtime
from policy_push.security import PiiCipher, generate_key
from policy_push.security.links import LinkSigner
from policy_push.sending import open_pipeline
from policy_push.sending.providers import build_router
from policy_push.storage import create_engine, session_factory, upgrade
from policy_push.storage.campaign_tables import DeliveryRow
from scheduler import SystemClock
from tests.policy_push.sending.seed import address, by_share, seed_campaign

MIX = {"sms": 0.5, "wechat": 0.3, "app": 0.2}
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@dataclass
class Row:
    name: str
    deliveries: int
    wall_s: float
    outbox_s: float
    cpu_s: float
    sim_cpu_s: float
    rss_mb: float
    #: HTTP requests the simulators received
    requests: int
    ok: str

    def line(self) -> str:
        outbox = f"{self.outbox_s:.1f}" if self.outbox_s else "-"
        return (f"| {self.name} | {self.deliveries:,} | {self.wall_s:.1f} | {self.deliveries / self.wall_s:,.0f} | {outbox} | "
                f"{self.cpu_s:.1f} | {self.sim_cpu_s:.1f} | {self.rss_mb:.0f} | {self.requests:,} | {self.ok} |")  # fmt: skip


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: the providers' rates (messages per second) all the dispatching processes together are held to
RATES = {"sms_rate_per_s": 5000, "wechat_rate_per_s": 20000, "app_rate_per_s": 1000}


def _values(data_dir: Path, url: str, urls: dict[str, str], *, workers: int = 1, pii_key: str | None = None) -> dict[str, Any]:
    """The settings of one dispatching process; with several, each has its share of the providers' rates
    (each process paces itself), so together they are held to the one worker's pace."""
    return dict(
        data_dir=data_dir, database_url=url, pii_key=pii_key or generate_key(), quiet_hours="", receipt_wait_s=0,
        aliyun_sms_url=urls["aliyun"] + "/", wechat_url=urls["wechat"], jpush_url=urls["jpush"],
        **{k: v / workers for k, v in RATES.items()},
        dispatch_batch_size=1000, dispatch_concurrency=4, log_level="WARNING",
    )  # fmt: skip


def _settings(data_dir: Path, url: str, urls: dict[str, str], **kw: Any) -> Settings:
    return Settings(**_values(data_dir, url, urls, **kw))


class _Sims:
    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve, args=(child,), daemon=True)
        self.proc.start()
        self.urls: dict[str, str] = self.conn.recv()

    def stats(self) -> tuple[float, dict[str, int], dict[str, int]]:
        """(simulator CPU s, messages recorded per simulator, HTTP requests received per simulator)"""
        self.conn.send("stats")
        return self.conn.recv()  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.conn.send("stop")
        self.proc.join(10)


async def baseline(n: int, sims: _Sims, settings: Settings, body_of: dict[str, dict]) -> Row:  # type: ignore[type-arg]
    """The same messages through the same adapters and limiters, with no database at all."""
    pick = by_share(MIX)
    links = LinkSigner(secrets.token_bytes(32), dt.timedelta(days=90))
    now = datetime.now(UTC)
    by_kind: dict[str, list[OutboundMessage]] = {}
    for i in range(1, n + 1):
        ch, delivery_id = pick(i), f"base{i:028d}"
        code = short_code(delivery_id)
        msg = render_for_recipient(body_of[ch], reason="身份标签：退役军人", delivery_id=delivery_id,
                                   address=address(ch, i + 5_000_000), code=code, token=links.sign(code, now=now))
        by_kind.setdefault(ch, []).append(msg)
    sim_cpu0, _, req0 = sims.stats()
    cpu0, t0 = _cpu(), time.perf_counter()
    accepted = 0
    async with aiohttp.ClientSession() as http:
        router: Router = build_router(settings, http)

        async def lane(kind: str, msgs: list[OutboundMessage]) -> int:
            done = 0
            for start in range(0, len(msgs), 1000):
                done += sum(r.outcome == "accepted" for r in await router.send(kind, msgs[start : start + 1000]))
            return done

        # four lanes as the dispatcher has
        parts = [(k, v[i::2]) for k, v in by_kind.items() for i in range(2)]
        accepted = sum(await asyncio.gather(*(lane(k, v) for k, v in parts)))
    wall = time.perf_counter() - t0
    sim_cpu1, _, req1 = sims.stats()
    return Row("baseline: adapters -> simulators, no database", n, wall, 0.0, _cpu() - cpu0, sim_cpu1 - sim_cpu0, _rss_mb(),
               sum(req1.values()) - sum(req0.values()), "yes" if accepted == n else f"{accepted} accepted")  # fmt: skip


class _Helper:
    """A second dispatching process (``bench.dispatch._worker``), ready to send when told."""

    def __init__(self, values: dict[str, Any]) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker.run, args=(values, child), daemon=True)
        self.proc.start()
        assert self.conn.recv() == "ready"

    def go(self) -> None:
        self.conn.send("go")

    async def result(self) -> tuple[float, bool]:
        """(CPU s it spent sending, whether it saw the outbox idle)"""
        out = await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)
        self.proc.join(10)
        return out  # type: ignore[no-any-return]


async def run_db(kind: str, n: int, sims: _Sims, pg_url: str, workers: int = 1) -> tuple[Row, dict[str, dict]]:  # type: ignore[type-arg]
    tmp = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    schema = f"pp_bench_{secrets.token_hex(4)}"
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'policy_push.db'}"
    else:
        admin = create_engine(pg_url)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await admin.dispose()
        url = f"{pg_url}?search_path={schema}"
    try:
        await upgrade(url)
        settings = _settings(tmp, url, sims.urls, workers=workers)
        engine = create_engine(settings)
        sessions = session_factory(engine)
        cipher = PiiCipher.from_settings(settings)
        t = time.perf_counter()
        seeded = await seed_campaign(sessions, cipher, settings, n=n, channel_of=by_share(MIX), fallbacks=False)
        print(f"  {kind}: seeded {n:,} recipients in {time.perf_counter() - t:.1f}s (not timed)", flush=True)
        async with sessions() as s:
            from policy_push.storage.campaign_tables import CampaignMessageRow

            bodies = dict((await s.execute(select(CampaignMessageRow.channel, CampaignMessageRow.body))).all())
        sim_cpu0, before, req0 = sims.stats()
        runtime = Runtime(settings, engine, sessions, cipher, load_reference_data())
        helpers = [_Helper(_values(tmp, url, sims.urls, workers=workers, pii_key=settings.pii_key.get_secret_value()))
                   for _ in range(workers - 1)]  # fmt: skip
        cpu0, t0 = _cpu(), time.perf_counter()
        async with open_pipeline(runtime, clock=SystemClock()) as p:
            p.send_budget_s = None
            # the send tick runs beside the dispatch tick, as the worker's scheduler runs them: rows are
            # claimed as soon as the first outbox batch is committed
            outbox = asyncio.ensure_future(p.dispatch_due_campaigns())
            for h in helpers:
                h.go()
            while not outbox.done():
                if not await p.dispatcher.send_due():
                    await asyncio.sleep(0.05)
            await outbox
            outbox_s = time.perf_counter() - t0
            idle = await p.run_until_idle(timeout_s=600, leader=False)
            for cpu_h, idle_h in [await h.result() for h in helpers]:
                cpu0 -= cpu_h
                idle = idle and idle_h
        wall = time.perf_counter() - t0
        cpu = _cpu() - cpu0
        sim_cpu1, after, req1 = sims.stats()
        async with sessions() as s:
            statuses = dict((await s.execute(select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status))).all())
        got = {k: after[k] - before[k] for k in after}
        first = [ch for ch, _ in seeded.recipients.values()]
        want = {"aliyun": first.count("sms"), "wechat": first.count("wechat"), "jpush": first.count("app")}
        ok = idle and statuses == {"sent": n} and all(got[sim] == count for sim, count in want.items())
        await engine.dispose()
        requests = sum(req1.values()) - sum(req0.values())
        name = kind if workers == 1 else f"{kind}, {workers} worker processes"
        return Row(name, n, wall, outbox_s, cpu, sim_cpu1 - sim_cpu0, _rss_mb(), requests,
                   "yes" if ok else f"NO {statuses} {got}"), bodies  # fmt: skip
    finally:
        if kind == "postgres":
            admin = create_engine(pg_url)
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await admin.dispose()


def _machine() -> list[str]:
    return [
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: `{' '.join(platform.uname())}`",
        f"- nproc: {os.cpu_count()}, python {platform.python_version()}",
        f"- load average before the run (other work shares the cores): {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]


async def main_async(n: int, dbs: Sequence[str], pg_url: str) -> list[Row]:
    sims = _Sims()
    rows: list[Row] = []
    try:
        bodies: dict[str, dict] = {}  # type: ignore[type-arg]
        for run in dbs:
            kind, _, workers = run.partition(":")
            print(f"{run}: {n:,} recipients ...", flush=True)
            row, bodies = await run_db(kind, n, sims, pg_url, int(workers or 1))
            print("  " + row.line(), flush=True)
            rows.append(row)
        settings = _settings(Path(tempfile.mkdtemp()), "sqlite+aiosqlite:///:memory:", sims.urls)
        row = await baseline(n, sims, settings, bodies)
        print("  " + row.line(), flush=True)
        rows.append(row)
    finally:
        sims.stop()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.dispatch", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--db", default="sqlite,postgres,postgres:2",
                    help="runs, comma-separated: sqlite, postgres, or postgres:N for N dispatching processes")
    ap.add_argument("--pg-url", default=os.environ.get("POLICY_PUSH_TEST_PG_URL", DEFAULT_PG))
    ap.add_argument("--out", type=Path, default=None, help="write the table here (e.g. bench/dispatch/RESULTS.md)")
    args = ap.parse_args(argv)
    head = _machine()
    rows = asyncio.run(main_async(args.n, [d.strip() for d in args.db.split(",") if d.strip()], args.pg_url))
    table = [
        "| run | deliveries | wall s | deliveries/s | outbox written at s | dispatcher CPU s | simulator CPU s | peak RSS MB "
        "| HTTP requests (at the simulators) | all sent once |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *(r.line() for r in rows),
    ]
    print("\n".join(table))
    if args.out:
        text_ = "\n".join([
            "# Dispatch: a campaign end to end against the simulators", "",
            *head,
            f"- campaign: {args.n:,} residents, channel mix {MIX} (each recipient once), no quiet hours, "
            "batches of 1,000, 4 lanes; simulators (no latency) in a child process; `python -m bench.dispatch`; "
            f"{RATES} shared by the workers of a run",
            "- wall = from the dispatch tick's start (approval check + outbox rows, sending beside it as the "
            "scheduler runs the ticks) until every row is recorded and nothing is left; seeding not timed",
            "",
            *table, "",
        ])  # fmt: skip
        args.out.write_text(text_)
    return 0 if all(r.ok == "yes" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
