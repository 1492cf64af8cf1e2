"""The other writer of ``bench.campaigns`` (a module of its own: a spawned process imports it by name)."""

from __future__ import annotations

import sqlite3
import time
from typing import Any


def other_writer(path: str, stop: Any, out: Any) -> None:
    """Another process writing one row every 20 ms, as the send tick does: the longest wait for a commit."""
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS bench_ticks (at REAL)")
    waits: list[float] = []
    while not stop.is_set():
        t = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO bench_ticks VALUES (?)", (t,))
        conn.execute("COMMIT")
        waits.append(time.perf_counter() - t)
        time.sleep(0.02)
    conn.close()
    waits.sort()
    out.put((len(waits), waits[-1] if waits else 0.0, waits[len(waits) // 2] if waits else 0.0))
