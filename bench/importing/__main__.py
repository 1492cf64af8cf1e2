"""Import benchmark: 100k enterprise + resident profiles into SQLite and PostgreSQL.

    python -m bench.importing [--n 100000] [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Each row of the table is one full ``import_lines`` run (line cutting, JSON, validation,
encryption, hashing, bulk upsert) timed from the same generated files.  The baseline in the
same run is the parse-and-validate pass alone (no database), so the table shows what storage
costs on top of the unavoidable work, on a machine whose speed varies from run to run.
PostgreSQL runs twice, into fresh schemas: with the profiles (and their audit and change-feed rows)
written by executemany, then by COPY: the profiles into a staging table and one INSERT … SELECT … ON
CONFLICT (``storage.profiles``), the audit and change rows straight into their tables (``storage.sql``).
Peak RSS is read from the kernel after each step.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import resource
import secrets
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from bench.synthetic import enterprises, residents, write_jsonl
from policy_push.config import Settings
from policy_push.domain import ValidationContext, parse_record
from policy_push.importing import import_lines, normalise_kind
from policy_push.refdata import load_reference_data
from policy_push.security import PiiCipher, generate_key
from policy_push.storage import create_engine, session_factory, upgrade
from policy_push.storage import profiles as profiles_module
from policy_push.storage import sql as sql_module

CHUNK = 64 * 1024


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _chunks(path: Path):  # type: ignore[no-untyped-def]
    fh = path.open("rb")
    return fh, iter(lambda: fh.read(CHUNK), b"")


def baseline(files: dict[str, Path]) -> float:
    ctx = ValidationContext(ref=load_reference_data())
    t = time.perf_counter()
    for kind, path in files.items():
        with path.open("rb") as fh:
            for line in fh:
                parse_record(normalise_kind(kind), json.loads(line), ctx)  # type: ignore[arg-type]
    return time.perf_counter() - t


async def run_import(url: str, files: dict[str, Path], key: str) -> tuple[float, float, int]:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        cipher = PiiCipher.from_settings(Settings(pii_key=key))  # type: ignore[arg-type]
        ctx = ValidationContext(ref=load_reference_data())
        times = []
        stored = 0
        for _round in range(2):  # the second round is the idempotent re-import
            t = time.perf_counter()
            for kind, path in files.items():
                fh, chunks = _chunks(path)
                with fh:
                    report = await import_lines(
                        kind, chunks, session_factory=sessions, cipher=cipher, ctx=ctx, actor="bench",
                        max_line_bytes=1 << 20, batch_size=1000,
                    )
                assert not report.rejected, report.rejected[:3]
                stored += report.created
            times.append(time.perf_counter() - t)
        return times[0], times[1], stored
    finally:
        await engine.dispose()


async def pg_schema(admin_url: str) -> tuple[str, str]:
    schema = f"pp_bench_{secrets.token_hex(4)}"
    engine = create_engine(admin_url)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    await engine.dispose()
    sep = "&" if "?" in admin_url else "?"
    return schema, f"{admin_url}{sep}search_path={schema}"


async def drop_schema(admin_url: str, schema: str) -> None:
    engine = create_engine(admin_url)
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="profiles in all, half enterprises and half residents")
    ap.add_argument("--pg", default=os.environ.get("POLICY_PUSH_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()
    key = generate_key()
    with tempfile.TemporaryDirectory(prefix="pp_bench_import_") as tmp:
        d = Path(tmp)
        files = {"enterprises": d / "enterprises.jsonl", "residents": d / "residents.jsonl"}
        write_jsonl(enterprises(args.n // 2), files["enterprises"])
        write_jsonl(residents(args.n - args.n // 2), files["residents"])
        size_mb = sum(p.stat().st_size for p in files.values()) / 1e6
        rows = []
        t = baseline(files)
        rows.append(("parse + validate only (baseline)", t, None, _rss_mb()))
        first, again, stored = asyncio.run(run_import(f"sqlite+aiosqlite:///{d / 'bench.db'}", files, key))
        assert stored == args.n
        rows.append(("import into SQLite", first, again, _rss_mb()))
        copy_min = profiles_module.COPY_MIN_ROWS
        for name, threshold in (("import into PostgreSQL, executemany (no COPY)", 10**9),
                                ("import into PostgreSQL, COPY + INSERT … SELECT", copy_min)):
            profiles_module.COPY_MIN_ROWS = sql_module.COPY_MIN_ROWS = threshold
            schema, url = asyncio.run(pg_schema(args.pg))
            try:
                first, again, stored = asyncio.run(run_import(url, files, key))
                assert stored == args.n
                rows.append((name, first, again, _rss_mb()))
            finally:
                asyncio.run(drop_schema(args.pg, schema))
        profiles_module.COPY_MIN_ROWS = sql_module.COPY_MIN_ROWS = copy_min
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
    print(f"# bench/importing — {args.n:,} profiles ({size_mb:.0f} MB JSONL), {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"# {platform.node()} · {os.cpu_count()} cores · {cpu} · Python {platform.python_version()}")
    print()
    print("| step | first import (s) | profiles/s | re-import, unchanged (s) | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|")
    for name, first, again, rss in rows:
        again_s = "" if again is None else f"{again:.1f}"
        print(f"| {name} | {first:.1f} | {args.n / first:,.0f} | {again_s} | {rss:.0f} |")


if __name__ == "__main__":
    main()
