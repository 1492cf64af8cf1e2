"""What the data-access modules share: the dialect, write transactions, chunked IN lists, insert-or-ignore
and the database's clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import String, Table, any_, bindparam, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = [
    "CHUNK", "COPY_MIN_ROWS", "TWICE_IN_A_BATCH", "among", "begin_write", "chunks", "copy_records", "database_now",
    "insert_append", "insert_ignore", "is_busy", "is_postgres", "once_each",
]  # fmt: skip

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


def among(session: AsyncSession, column: Any, values: Sequence[str]) -> Any:
    """``column IN (values)`` for a chunk of string keys. On PostgreSQL ``column = ANY(:array)``: one bound
    array, so the statement is compiled once and prepared once, where an IN list renders one placeholder
    per value on every execution (in a profile of the dispatcher, the largest single cost in SQLAlchemy)."""
    if is_postgres(session):
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(String)))
    return column.in_(list(values))


#: PostgreSQL's lock_not_available, deadlock_detected and serialization_failure: a writer that lost a wait, not a fault
_BUSY_SQLSTATES = frozenset({"55P03", "40P01", "40001"})


def is_busy(exc: BaseException) -> bool:
    """Whether a driver error says only that another writer held what this one needed for too long (SQLite's
    "database is locked" after busy_timeout, a PostgreSQL lock or deadlock timeout): the same request succeeds
    when retried a moment later."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if "database is locked" in str(orig) or "database table is locked" in str(orig):
        return True
    return (getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)) in _BUSY_SQLSTATES


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


#: on PostgreSQL, a write of at least this many rows goes by COPY (``insert_append``, ``storage.profiles``)
COPY_MIN_ROWS = 50


async def copy_records(session: AsyncSession, table: str | Table, rows: Sequence[dict[str, Any]], columns: Sequence[Any]) -> None:
    """COPY ``rows`` into ``table`` (PostgreSQL only) inside the session's transaction. ``columns``: the
    SQLAlchemy columns whose types convert the values, as an INSERT's bind processing would (UTC
    datetimes, JSON documents); ``table`` may be a staging table's name."""
    conn = await session.connection()
    procs = [c.type._cached_bind_processor(conn.dialect) for c in columns]
    names = [c.name for c in columns]
    records = [tuple(v if f is None else f(v) for f, v in zip(procs, (r[n] for n in names), strict=True)) for r in rows]
    raw = (await conn.get_raw_connection()).driver_connection
    await raw.copy_records_to_table(table if isinstance(table, str) else table.name, records=records, columns=names)


async def insert_append(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Append ``rows`` (each with the same keys; no conflicts expected) in the order given.

    On PostgreSQL many rows go by COPY, which costs far less per row than an executemany's bound
    statements (an import writes an audit row and a change-feed row per profile); rows keep their order,
    so a serial id numbers them as an INSERT would."""
    if not rows:
        return
    if is_postgres(session) and len(rows) >= COPY_MIN_ROWS:
        await copy_records(session, table, rows, [table.c[k] for k in rows[0]])
        return
    await session.execute(insert(table), list(rows))
