"""Waking a node's index as soon as another process writes (PostgreSQL ``LISTEN``).

Every change to policies and profiles sends ``NOTIFY policy_push_changes`` when its transaction
commits (``policy_push.storage.changes``).  ``follow_notifications`` holds one connection that
listens on that channel and calls ``wake`` for each notification, and once more after every
(re)connection, since notifications sent while it was away are lost.  What ``wake`` starts,
``follow_changes``, reads the feed by change number, so a lost notification only delays a change
until the next one or the periodic poll (``follow_changes_s``), never drops it.  SQLite has no
notifications: there the poll alone carries changes between processes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from policy_push.storage.changes import CHANNEL

__all__ = ["OnWake", "follow_notifications"]

log = logging.getLogger(__name__)


async def follow_notifications(engine: AsyncEngine, wake: Callable[[], None], *, retry_s: float = 2.0) -> None:
    """Listen until cancelled, reconnecting after a lost connection (a no-op on SQLite)."""
    if engine.dialect.name != "postgresql":
        return
    # its own connection, outside the pool: held for good, it must not starve the requests' pool
    own = create_async_engine(engine.url, poolclass=NullPool)
    try:
        await _listen(own, wake, retry_s)
    finally:
        await own.dispose()


async def _listen(engine: AsyncEngine, wake: Callable[[], None], retry_s: float) -> None:
    while True:
        lost = asyncio.Event()
        try:
            async with engine.connect() as conn:
                raw = await conn.get_raw_connection()
                pg = raw.driver_connection  # asyncpg's own connection: LISTEN needs it held
                assert pg is not None
                notified = lambda *_: wake()  # noqa: E731 - asyncpg needs the same object to remove it
                await pg.add_listener(CHANNEL, notified)
                pg.add_termination_listener(lambda *_, lost=lost: lost.set())
                try:
                    wake()  # what was written while this node did not listen
                    await lost.wait()
                finally:
                    if not pg.is_closed():
                        await asyncio.shield(pg.remove_listener(CHANNEL, notified))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database is away: the poll carries on meanwhile
            log.warning("change notifications: %s; listening again in %.0f s", type(exc).__name__, retry_s)
        await asyncio.sleep(retry_s)


class OnWake:
    """Runs ``job`` after each ``wake()``; wakes that come while it runs are folded into one more
    run, so a burst of writes costs a run or two, not one per write.  ``stop()`` lets a run in
    progress finish (a cancelled run would leave the index's executor mid-change) and ends."""

    def __init__(self, job: Callable[[], Awaitable[object]]) -> None:
        self._job = job
        self._due = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="follow-notifications")

    def wake(self) -> None:
        self._due.set()

    async def _loop(self) -> None:
        while True:
            await self._due.wait()
            self._due.clear()
            if self._stopping:
                return
            try:
                await self._job()
            except Exception as exc:  # the poll tick tries again; logged without personal data
                log.warning("following the change feed after a notification failed: %s", type(exc).__name__)

    async def stop(self) -> None:
        self._stopping = True
        self._due.set()
        await self._task
