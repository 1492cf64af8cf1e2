"""The audit log: who did what to which record, when.  Details never hold personal values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from .records import AuditEntry, detached
from .tables import AuditRow, Base, utcnow

__all__ = ["AuditLog"]

_audit: Table = Base.metadata.tables["audit_log"]


class AuditLog:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        *,
        actor: str,
        action: str,
        entity_type: str,
        entity_id: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        await self.session.execute(
            insert(_audit).values(
                at=utcnow(),
                actor=actor,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                detail=detail,
            )
        )

    async def record_many(self, entries: Sequence[dict[str, Any]]) -> None:
        """Several entries in one executemany; each dict has the keyword arguments of :meth:`record`."""
        if not entries:
            return
        now = utcnow()
        rows = [{"at": now, "detail": None, **e} for e in entries]
        await self.session.execute(insert(_audit), rows)

    async def list(
        self, *, entity_type: str | None = None, entity_id: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Newest first."""
        stmt = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if entity_type is not None:
            stmt = stmt.where(AuditRow.entity_type == entity_type)
        if entity_id is not None:
            stmt = stmt.where(AuditRow.entity_id == entity_id)
        rows = (await self.session.execute(stmt)).scalars().all()
        return [detached(AuditEntry, r) for r in rows]
