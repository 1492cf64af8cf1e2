"""Where a PostgreSQL dispatch run's CPU goes: ``bench.dispatch`` with the CPU of the PostgreSQL backends of
its connections (read from ``/proc``, so the server must run on this machine) and, with ``--cprofile``, a
CPU profile of the timed part grouped by package.

    python -m bench.dispatch.profile [--cprofile] --n 20000 --db postgres
"""

from __future__ import annotations

import collections
import contextlib
import cProfile
import os
import pstats
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event

import bench.dispatch.__main__ as bench


def _backend_cpu(pids: set[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _by_package(stats: pstats.Stats) -> collections.Counter[str]:
    out: collections.Counter[str] = collections.Counter()
    for (path, _, name), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "site-packages/" in path:
            key = path.split("site-packages/")[1].split("/")[0]
        elif path.startswith(("~", "<")):
            key = "built-in " + name
        elif "/lib/python3" in path:
            key = "stdlib " + path.rsplit("/", 1)[-1]
        else:
            key = "/".join(path.split("/")[-2:])
        out[key] += own
    return out


def main(argv: list[str]) -> int:
    profiling = "--cprofile" in argv
    argv = [a for a in argv if a != "--cprofile"]
    pids: set[int] = set()
    make_engine = bench.create_engine

    def create_engine(*a: Any, **k: Any) -> Any:
        engine = make_engine(*a, **k)
        if engine.dialect.name == "postgresql":

            @event.listens_for(engine.sync_engine, "connect")
            def _remember(dbapi_conn: Any, _: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("select pg_backend_pid()")
                pids.add(cur.fetchone()[0])
                cur.close()

        return engine

    prof = cProfile.Profile(time.process_time)
    open_pipeline = bench.open_pipeline

    @contextlib.asynccontextmanager
    async def timed_pipeline(*a: Any, **k: Any) -> AsyncIterator[Any]:
        before = _backend_cpu(pids)
        if profiling:
            prof.enable()
        try:
            async with open_pipeline(*a, **k) as p:
                yield p
        finally:
            prof.disable()
            print(f"  PostgreSQL backend CPU during the timed part: {_backend_cpu(pids) - before:.1f} s "
                  f"({len(pids)} connections of the first process)", flush=True)  # fmt: skip

    bench.create_engine = create_engine  # type: ignore[assignment]
    bench.open_pipeline = timed_pipeline  # type: ignore[assignment]
    rc = bench.main(argv)
    if profiling:
        by = _by_package(pstats.Stats(prof))
        print(f"profiled CPU {sum(by.values()):.1f} s (cProfile inflates it), own time by package:")
        for key, seconds in by.most_common(30):
            print(f"{seconds:7.2f}  {key}")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
