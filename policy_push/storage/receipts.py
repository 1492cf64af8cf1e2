"""Early receipts: provider receipts that arrived before our record of their send, kept (recipient as a
keyed hash only) until the send is recorded (``sending.receipts``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .campaign_tables import early_receipts
from .sql import among, chunks, is_postgres

__all__ = ["count_early", "drop_early", "expire_early", "keep_early", "take_early"]

_e = early_receipts.c


async def keep_early(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    for part in chunks(rows):
        await session.execute(early_receipts.insert(), list(part))


async def take_early(
    session: AsyncSession, *, message_ids: Collection[str] | None = None, limit: int | None = None
) -> list[Any]:
    """Stored early receipts (of these provider message ids, or the oldest ``limit``), locked: one being
    applied by another transaction (the dispatcher vs. the settle sweep) is skipped, not applied twice."""
    stmt = select(_e.id, _e.provider, _e.provider_message_id, _e.recipient_hash, _e.delivered, _e.outcome, _e.code, _e.text)
    stmt = stmt.order_by(_e.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    if message_ids is None:
        return list(await session.execute(stmt))
    rows: list[Any] = []
    for part in chunks(sorted(set(message_ids))):
        rows += list(await session.execute(stmt.where(among(session, _e.provider_message_id, part))))
    return rows


async def drop_early(session: AsyncSession, ids: Collection[int]) -> None:
    for part in chunks(sorted(ids)):
        await session.execute(delete(early_receipts).where(_e.id.in_(part)))


async def expire_early(session: AsyncSession, *, before: dt.datetime) -> int:
    result = await session.execute(delete(early_receipts).where(_e.received_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


async def count_early(session: AsyncSession) -> int:
    """How many early receipts are kept (their number is capped: ``Settings.early_receipt_cap``)."""
    return int(await session.scalar(select(func.count()).select_from(early_receipts)) or 0)
