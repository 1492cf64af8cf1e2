"""Request counts shared by every process on one PostgreSQL database (logins, people's-link look-ups).

A limiter kept in each process's memory gives an attacker N times the budget across N ``serve``
processes.  Here each hit is one atomic ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` on a row keyed by
bucket and one-minute window, so concurrent hits from any process are counted exactly once each.  The
first hit of a window deletes the windows that can no longer count.  SQLite runs one process, whose
memory limiter is exact, and does not use this.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from .tables import RateWindowRow

__all__ = ["SharedWindows"]

_t = RateWindowRow.__table__


class SharedWindows:
    """Fixed one-minute windows counted in the database; ``hash_client`` keeps addresses out of it."""

    def __init__(self, engine: AsyncEngine, hash_client: Callable[[str], str]) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("shared rate windows need PostgreSQL (SQLite serves one process: use the memory limiter)")
        self.engine = engine
        self._hash = hash_client

    async def hit(self, bucket: str, client: str, *, now: float | None = None) -> int:
        """Count one request of ``client`` in ``bucket``; the number counted in this window so far, this one included."""
        window = int((time.time() if now is None else now) // 60)
        key = f"{bucket}:{self._hash(client)}"[:96]
        upsert = insert(_t).values(bucket=key, window_start=window, hits=1)
        upsert = upsert.on_conflict_do_update(
            index_elements=[_t.c.bucket, _t.c.window_start], set_={"hits": _t.c.hits + 1}
        ).returning(_t.c.hits)
        async with self.engine.begin() as conn:
            hits = int((await conn.execute(upsert)).scalar_one())
            if hits == 1:
                await conn.execute(delete(_t).where(_t.c.window_start < window - 1))
        return hits
