"""The change feed: which policies and profiles any process wrote, in commit order.

Every repository write of a policy or profile calls :func:`record` in its own transaction. The number it
takes comes from the one-row ``change_counter``; taking it locks that row until the transaction ends, so
a reader that has seen number *n* has seen every change numbered up to *n* (no gaps from transactions
still open, which a plain sequence would leave). A running service polls :func:`since` with the last
number it applied (``MatchService.follow_changes``).  On PostgreSQL each change also sends ``NOTIFY`` on
:data:`CHANNEL` with its number (delivered when the transaction commits), so a listening node applies it
at once (``policy_push.matching.listen``); the poll stays as the catch-up that misses nothing, whether a
notification was lost or the listener was disconnected.

Rows older than a week are pruned: a service that was down longer rebuilds its view from the tables
themselves (the match index's start-up catch-up).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.statuses import ChangeOp

from .sql import insert_append
from .tables import ChangeCounterRow, ChangeRow, utcnow

__all__ = ["CHANNEL", "KEEP", "Change", "latest", "prune", "record", "since"]

changes: Table = ChangeRow.__table__  # type: ignore[assignment]
counter: Table = ChangeCounterRow.__table__  # type: ignore[assignment]
#: how long changes are kept for services to catch up with
KEEP = dt.timedelta(days=7)
#: the PostgreSQL notification channel of the feed; the payload is the change number
CHANNEL = "policy_push_changes"


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    kind: str
    entity_id: str
    op: ChangeOp


async def record(session: AsyncSession, kind: str, ids: Collection[str], op: ChangeOp) -> None:
    """Note that ``ids`` of ``kind`` were written (or deleted) by the caller's transaction."""
    if not ids:
        return
    seq = await session.scalar(
        update(counter).where(counter.c.id == 1).values(seq=counter.c.seq + 1).returning(counter.c.seq)
    )
    if seq is None:  # a database made before the counter row existed
        await session.execute(insert(counter).values(id=1, seq=1))
        seq = 1
    now = utcnow()
    await insert_append(
        session, changes, [{"seq": seq, "kind": kind, "entity_id": i, "op": op.value, "at": now} for i in sorted(ids)]
    )
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_notify(CHANNEL, str(seq))))


async def latest(session: AsyncSession) -> int:
    """The newest change number committed (0 when there is none)."""
    return int(await session.scalar(select(func.coalesce(func.max(counter.c.seq), 0))) or 0)


async def since(session: AsyncSession, after: int, *, limit: int = 10_000) -> list[Change]:
    """Changes numbered above ``after``, oldest first; whole transactions only (a number's rows are never split)."""
    c = changes.c
    top = await session.scalar(
        select(c.seq).where(c.seq > after).order_by(c.seq).offset(max(0, limit - 1)).limit(1)
    )
    stmt = select(c.seq, c.kind, c.entity_id, c.op).where(c.seq > after)
    if top is not None:
        stmt = stmt.where(c.seq <= top)
    rows = await session.execute(stmt.order_by(c.seq, c.id))
    return [Change(int(seq), kind, eid, ChangeOp(op)) for seq, kind, eid, op in rows]


async def prune(session: AsyncSession) -> int:
    """Drop changes older than :data:`KEEP` (stamped on the real clock, like the rows they describe)."""
    result = await session.execute(delete(changes).where(changes.c.at < utcnow() - KEEP))
    return int(getattr(result, "rowcount", 0) or 0)
