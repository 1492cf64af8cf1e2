"""A campaign of N recipients (default 1,000,000) drafted, previewed and hashed, on SQLite and PostgreSQL.

The N resident profiles are synthetic rows written straight into the profile table (one encrypted
address per channel copied to every row: drafting reads only that a channel has an address), and
the match answer is synthetic too (every profile eligible, scores in 1,000 steps so they tie) —
the matcher is not what is measured. Drafting goes through the real code path:
``campaigns.prepare_campaign`` (reach and history read per chunk, rows written a chunk per
transaction, counts, texts and the list hash at the end).

Printed per database: drafting wall and CPU time; RSS before drafting (the process holding the
match answer: the baseline) and the peak while drafting; the longest transaction the drafting
process held; on SQLite, the longest wait of another process committing a one-row write every
20 ms meanwhile (the send tick's position); a preview page (50 rows, total included) at the first,
middle and last row by keyset (``after``) and, in the same run, by OFFSET as before; the campaign
view (counts, texts, top lists, kept hash); the streamed approval hash: time and peak RSS.

    python -m bench.campaigns [--n 1000000] [--db sqlite,postgres] [--chunk 2000]
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
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench.campaigns._writer import other_writer
from policy_push.campaigns import approval_hash, list_recipients, load_campaign_view, prepare_campaign
from policy_push.config import Settings
from policy_push.matching.results import PolicyMatchResult, score_histogram
from policy_push.security import PiiCipher, generate_key
from policy_push.storage import PolicyRepository, create_engine, session_factory, upgrade
from policy_push.storage import campaigns as campaign_store
from policy_push.storage.campaign_tables import CampaignRecipientRow
from policy_push.storage.sql import insert_append
from policy_push.storage.tables import ResidentRow
from tests.factories import make_policy

DEFAULT_PG = os.environ.get("POLICY_PUSH_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
PAGE = 50
CHANNEL_COLUMNS = {"sms": "phone", "wechat": "wechat_openid", "app": "app_registration_id"}
REASON = "身份标签：退役军人"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    """Start the peak RSS (VmHWM) again from the current RSS (Linux: 5 > /proc/self/clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


class Answer:
    """A matcher whose answer is made before it is asked (so its memory is in the baseline)."""

    def __init__(self, policy_id: str, n: int) -> None:
        eligible = [
            {"policy_id": policy_id, "profile_id": _pid(i), "eligible": True, "score": round(1 - (i * 1000 // n) / 1000, 4),
             "reasons": [REASON], "missing": []}
            for i in range(n)
        ]  # fmt: skip
        self.result = PolicyMatchResult(
            policy_id=policy_id, eligible=eligible, unknown=[], counts={"eligible": n, "unknown": 0, "profiles": n},
            histogram=score_histogram(r["score"] for r in eligible), no_criteria=False, eligible_total=n,
            message_lines={},
        )  # fmt: skip

    async def match_policy(self, policy: Any, *, on: dt.date, top_k: int | None = None, min_score: float | None = None) -> PolicyMatchResult:
        return self.result


def _pid(i: int) -> str:
    return f"r-{i:08d}"


def _profiles(n: int, cipher: PiiCipher) -> Iterator[list[dict[str, Any]]]:
    now = dt.datetime.now(dt.UTC)
    enc = {ch: cipher.encrypt(col, f"addr-{ch}") for ch, col in CHANNEL_COLUMNS.items()}
    part: list[dict[str, Any]] = []
    for i in range(n):
        pid = _pid(i)
        channels = ["sms", "wechat", "app"][i % 3 :] + ["sms", "wechat", "app"][: i % 3]
        row: dict[str, Any] = {
            "id": pid, "name": f"居民{i}", "region": "211102", "consent": True,
            "document": {"id": pid, "name": f"居民{i}", "channels": channels, "consent": True},
            "content_hash": f"{i:064x}", "created_at": now, "updated_at": now, "hukou_region": "211102",
            "id_number_enc": None, "id_number_hash": None, "phone_source": "测试名册",
        }  # fmt: skip
        for ch, col in CHANNEL_COLUMNS.items():
            row[f"{col}_enc"] = enc[ch]
            row[f"{col}_hash"] = f"{i:08d}{ch}".ljust(64, "0")
        part.append(row)
        if len(part) == 5000:
            yield part
            part = []
    if part:
        yield part


async def _seed(sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher, n: int) -> str:
    policy = make_policy(audience="resident", criteria=None, apply_until="2099-12-31")
    async with sessions() as s, s.begin():
        await PolicyRepository(s).upsert(policy, actor="bench")
    for part in _profiles(n, cipher):
        async with sessions() as s, s.begin():
            await insert_append(s, ResidentRow.__table__, part)  # type: ignore[arg-type]
    return policy.id


class Transactions:
    """The longest write transaction (BEGIN to COMMIT, one that wrote) and the longest read-only one on
    an engine's connections (a reader blocks no writer: WAL on SQLite, MVCC on PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.longest = {True: 0.0, False: 0.0}
        self.count = {True: 0, False: 0}
        self.what = {True: "", False: ""}
        self._open: dict[int, list[Any]] = {}
        sync = engine.sync_engine
        event.listen(sync, "begin", self._begin)
        event.listen(sync, "before_cursor_execute", self._statement)
        event.listen(sync, "commit", self._end)
        event.listen(sync, "rollback", self._end)

    def _begin(self, conn: Any) -> None:
        self._open[id(conn)] = [time.perf_counter(), False, []]

    def _statement(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        opened = self._open.get(id(conn))
        if opened is None:
            return
        if statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE", "BEGIN "):
            opened[1] = True
        opened[2].append(" ".join(statement.split()[:3]))

    def _end(self, conn: Any) -> None:
        opened = self._open.pop(id(conn), None)
        if opened is not None:
            start, wrote, statements = opened
            took = time.perf_counter() - start
            self.count[wrote] += 1
            if took > self.longest[wrote]:
                self.longest[wrote] = took
                self.what[wrote] = f"{len(statements)} statements, first {statements[:2]}"

    def text(self) -> str:
        return (f"{self.count[True]:,} writing, longest {self.longest[True] * 1000:.0f} ms ({self.what[True]}); "
                f"{self.count[False]:,} reading, longest {self.longest[False] * 1000:.0f} ms")  # fmt: skip


async def _cursor_at(sessions: async_sessionmaker[AsyncSession], campaign_id: str, row: int) -> Any:
    r = CampaignRecipientRow
    async with sessions() as s:
        score, pid = (await s.execute(
            select(r.score, r.profile_id).where(r.campaign_id == campaign_id)
            .order_by(r.score.desc(), r.profile_id).offset(row).limit(1))).one()  # fmt: skip
    return campaign_store.RankCursor(score, pid)


async def _timed(coro: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    value = await coro
    return time.perf_counter() - t, value


async def run(db: str, url: str, n: int, chunk: int, sqlite_path: str | None) -> list[str]:
    key = generate_key()
    settings = Settings(data_dir=Path(tempfile.gettempdir()), database_url=url, pii_key=key, campaign_chunk_rows=chunk)
    cipher = PiiCipher.from_settings(settings)
    await upgrade(url)
    engine = create_engine(settings)
    sessions = session_factory(engine)
    out: list[str] = []
    try:
        t = time.perf_counter()
        policy_id = await _seed(sessions, cipher, n)
        seed_s = time.perf_counter() - t
        matcher = Answer(policy_id, n)
        base_rss = _status_mb("VmRSS")
        writer = None
        if sqlite_path:
            ctx = mp.get_context("spawn")
            stop, queue = ctx.Event(), ctx.Queue()
            writer = ctx.Process(target=other_writer, args=(sqlite_path, stop, queue))
            writer.start()
            await asyncio.sleep(1.0)
        tx = Transactions(engine)
        _reset_peak()
        cpu, t = _cpu(), time.perf_counter()
        prepared = await prepare_campaign(sessions, matcher, policy_id, prepared_by="bench", settings=settings)
        draft_s, draft_cpu = time.perf_counter() - t, _cpu() - cpu
        draft_peak = _status_mb("VmHWM")
        ticks = ""
        if writer is not None:
            stop.set()
            commits, longest_wait, median_wait = queue.get(timeout=60)
            writer.join()
            ticks = f"{commits:,} commits, longest wait {longest_wait * 1000:.0f} ms (median {median_wait * 1000:.1f} ms)"
        assert prepared is not None and prepared.summary["recipients"] == n, prepared
        out.append(f"| {db} | drafting {n:,} recipients (chunk {chunk:,}) | {draft_s:.1f} s wall, {draft_cpu:.1f} s CPU | "
                   f"RSS before {base_rss:.0f} MB, peak while drafting {draft_peak:.0f} MB (+{draft_peak - base_rss:.0f}) | "
                   f"{tx.text()} |")  # fmt: skip
        if ticks:
            out.append(f"| {db} | another process writing every 20 ms meanwhile | {ticks} | | |")
        del matcher
        cid = prepared.id
        for label, row in (("first", 0), ("middle", n // 2), ("last", max(n - PAGE, 0))):
            after = None if row == 0 else await _cursor_at(sessions, cid, row - 1)
            async with sessions() as s:
                keyset_s, (lines, total) = await _timed(list_recipients(s, cipher, cid, limit=PAGE, after=after))
                offset_s, (lines2, _) = await _timed(list_recipients(s, cipher, cid, limit=PAGE, offset=row))
            assert [x.profile_id for x in lines] == [x.profile_id for x in lines2] and total == n
            out.append(f"| {db} | preview page at row {row:,} ({label}), {PAGE} rows + total | "
                       f"keyset {keyset_s * 1000:.0f} ms | OFFSET (before) {offset_s * 1000:.0f} ms | |")  # fmt: skip
        async with sessions() as s:
            view_s, view = await _timed(load_campaign_view(s, cipher, cid))
        out.append(f"| {db} | campaign view (counts, texts, top lists, kept hash) | {view_s * 1000:.0f} ms | | |")
        _reset_peak()
        rss = _status_mb("VmRSS")
        async with sessions() as s:
            hash_s, digest = await _timed(approval_hash(s, cid))
        assert digest == view.list_sha256
        out.append(f"| {db} | approval hash, streamed ({n:,} rows) | {hash_s:.1f} s | RSS before {rss:.0f} MB, "
                   f"peak {_status_mb('VmHWM'):.0f} MB | |")  # fmt: skip
        out.append(f"| {db} | (seeding {n:,} synthetic profiles, not timed above) | {seed_s:.1f} s | | |")
    finally:
        await engine.dispose()
    return out


async def _pg_schema(admin_url: str, drop: str | None = None) -> tuple[str, str]:
    engine = create_engine(admin_url)
    schema = drop or f"pp_bench_{secrets.token_hex(4)}"
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE' if drop else f'CREATE SCHEMA "{schema}"'))
    await engine.dispose()
    sep = "&" if "?" in admin_url else "?"
    return schema, f"{admin_url}{sep}search_path={schema}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="recipients")
    ap.add_argument("--db", default="sqlite,postgres")
    ap.add_argument("--chunk", type=int, default=Settings.model_fields["campaign_chunk_rows"].default)
    ap.add_argument("--pg", default=DEFAULT_PG)
    args = ap.parse_args()
    started = dt.datetime.now(dt.UTC)
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
    print(f"# bench/campaigns — {args.n:,} recipients, chunk {args.chunk:,}, started {started:%Y-%m-%d %H:%M} UTC")
    print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"# {platform.node()} · {os.cpu_count()} cores · {cpu} · Python {platform.python_version()}")
    print()
    print("| db | step | time | memory / baseline | transactions |")
    print("|---|---|---|---|---|", flush=True)
    for db in args.db.split(","):
        if db == "sqlite":
            with tempfile.TemporaryDirectory(prefix="pp_bench_campaigns_") as tmp:
                path = f"{tmp}/bench.db"
                lines = asyncio.run(run(db, f"sqlite+aiosqlite:///{path}", args.n, args.chunk, path))
        elif db == "postgres":
            schema, url = asyncio.run(_pg_schema(args.pg))
            try:
                lines = asyncio.run(run(db, url, args.n, args.chunk, None))
            finally:
                asyncio.run(_pg_schema(args.pg, drop=schema))
        else:
            raise SystemExit(f"--db: sqlite or postgres, not {db!r}")
        print("\n".join(lines), flush=True)
    print(f"\n# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"finished {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")

if __name__ == "__main__":
    main()
