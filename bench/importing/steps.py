"""Where an import's time goes, step by step: ``python -m bench.importing.steps N``.

One-off timing aid (no baseline; not a benchmark table): runs ``bench.importing.run_import`` (first
import, then the unchanged re-import) of N synthetic profiles into a fresh PostgreSQL schema, with a
``perf_counter`` wrapper around each step of the import path, and prints each step's total seconds
and µs a line over both rounds. Steps nest (``upsert_chunk`` holds ``write_rows``, ``audit`` …).
Env: NOGC=1 turns the garbage collector off; THR=n sets its first threshold.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import policy_push.importing as imp
import policy_push.storage.audit as audit
import policy_push.storage.changes as changes
import policy_push.storage.profiles as prof
from bench.importing.__main__ import drop_schema, pg_schema, run_import
from bench.synthetic import enterprises, residents, write_jsonl
from policy_push.security import generate_key

T: collections.Counter[str] = collections.Counter()


def wrap(obj: Any, name: str, label: str) -> None:
    f = getattr(obj, name, None)
    if f is None:  # an older checkout without this step
        return
    if asyncio.iscoroutinefunction(f):

        @functools.wraps(f)
        async def g(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return await f(*a, **k)
            finally:
                T[label] += time.perf_counter() - t
    else:

        @functools.wraps(f)
        def g(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                T[label] += time.perf_counter() - t

    setattr(obj, name, g)


def main() -> None:
    wrap(imp, "_decode", "decode+textcheck")
    wrap(imp, "parse_record", "validate")
    wrap(imp, "_write_batch", "write_batch (all db)")
    wrap(prof._ProfileRepository, "_row", "_row (encrypt)")
    wrap(prof._ProfileRepository, "_content_hash", "content_hash")
    wrap(prof._ProfileRepository, "_write_rows", "write_rows")
    wrap(prof.ResidentRepository, "_check_conflicts", "check_conflicts")
    wrap(audit.AuditLog, "record_many", "audit")
    wrap(changes, "record", "changes")
    wrap(prof._ProfileRepository, "_upsert_chunk", "upsert_chunk")
    if os.environ.get("NOGC"):
        gc.disable()
    if os.environ.get("THR"):
        gc.set_threshold(int(os.environ["THR"]), 10, 10)
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    pg = os.environ.get("POLICY_PUSH_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    with tempfile.TemporaryDirectory(prefix="pp_bench_steps_") as tmp:
        d = Path(tmp)
        files = {"enterprises": d / "e.jsonl", "residents": d / "r.jsonl"}
        write_jsonl(enterprises(n // 2), files["enterprises"])
        write_jsonl(residents(n - n // 2), files["residents"])
        schema, url = asyncio.run(pg_schema(pg))
        try:
            t = time.perf_counter()
            first, again, stored = asyncio.run(run_import(url, files, generate_key()))
            total = time.perf_counter() - t
        finally:
            asyncio.run(drop_schema(pg, schema))
    print(f"{n:,} profiles: first import {first:.1f} s, re-import {again:.1f} s, stored {stored:,}, total {total:.1f} s")
    for k, v in T.most_common():
        print(f"{k:25s} {v:7.2f} s  {v / (2 * n) * 1e6:6.1f} us/line (both rounds)")


if __name__ == "__main__":
    main()
