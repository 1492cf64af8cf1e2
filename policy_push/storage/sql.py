"""What the data-access modules share: the dialect, write transactions, chunked IN lists, insert-or-ignore
and the database's clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Table, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["CHUNK", "TWICE_IN_A_BATCH", "begin_write", "chunks", "database_now", "insert_ignore", "is_postgres", "once_each"]

T = TypeVar("T")
#: rows per IN (...) list and per executemany: far below SQLite's and asyncpg's parameter limits
CHUNK = 1000


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


#: what a batch of writes that names one record twice is told
TWICE_IN_A_BATCH = "appears twice in one batch; send the update separately"


def once_each(ids: Iterable[str], conflict: Callable[[str], Exception]) -> None:
    """Raise ``conflict(id)`` for the first id that appears twice in one batch of writes."""
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise conflict(i)
        seen.add(i)


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def begin_write(session: AsyncSession) -> None:
    """Make the transaction a writer from its first statement.

    SQLite: ``BEGIN IMMEDIATE`` takes the write lock now, so no other writer can slip between our
    read and our write, and a lock wait happens here (under busy_timeout) rather than failing as a
    deadlock on upgrade. Must be the transaction's first statement. PostgreSQL: nothing to do;
    row locks are taken per statement.
    """
    if not is_postgres(session):
        await session.execute(text("BEGIN IMMEDIATE"))


def insert_ignore(session: AsyncSession, table: Table, keys: Sequence[str] | None = None) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` in the session's dialect (on ``keys``, or any constraint)."""
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=list(keys) if keys else None)


async def database_now(session: AsyncSession) -> dt.datetime:
    """The database server's clock, as an aware UTC datetime.

    Leases are set and compared on this one clock, whichever node (and whichever simulated clock)
    does it, so a worker with a skewed clock or the demo's fast clock cannot lapse a lease early.
    """
    if is_postgres(session):
        value = await session.scalar(select(func.statement_timestamp()))
        assert isinstance(value, dt.datetime)
        return value.astimezone(dt.UTC)
    raw = await session.scalar(select(func.strftime("%Y-%m-%d %H:%M:%f", "now")))
    return dt.datetime.fromisoformat(str(raw)).replace(tzinfo=dt.UTC)
