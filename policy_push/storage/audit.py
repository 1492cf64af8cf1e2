"""The audit log: who did what to which record, when.  Details never hold personal values.

Append-only and chained: each row carries the SHA-256 of the row before's hash and its own content
(:func:`row_digest`), so :func:`verify_chain` finds a row edited, inserted or deleted.  A chain proves
only the rows that are there, so the newest rows cut off would leave a shorter chain that still checks
out: the anchor ``audit_head`` (outside the chain, written in the same transaction as the rows) holds
the number of rows and the newest hash, and the walk must end exactly there.  (Someone who can rewrite
the anchor too, or empty both tables, is beyond it: ``audit verify`` prints the head hash so operators
can keep it elsewhere.)  Writers take turns on the chain's head: a transaction-scoped advisory lock on
PostgreSQL, SQLite's write lock (taken before the head is read) elsewhere.

Every row is chained: migration ``i9b_audit_anchor`` chained the rows written before the chain existed,
so a row without a hash is a problem wherever it is."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.domain.canonical import canonical_json

from .records import AuditEntry, detached
from .sql import insert_append
from .tables import AuditRow, Base, utcnow

__all__ = ["GENESIS", "AuditLog", "ChainReport", "row_digest", "verify_chain"]

_audit: Table = Base.metadata.tables["audit_log"]
_head_t: Table = Base.metadata.tables["audit_head"]
#: the anchor's one row
_HEAD_ID = 1
#: the "hash before" of the first chained row
GENESIS = "0" * 64
#: any 64-bit number of our own: the advisory lock that serialises writers of the chain on PostgreSQL
_CHAIN_LOCK = 0x70705F6175646974


def _utc_text(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def row_digest(prev_hash: str, row: dict[str, Any]) -> str:
    """SHA-256 over the hash before and the row's content in canonical JSON."""
    content = {
        "at": _utc_text(row["at"]), "actor": row["actor"], "action": row["action"],
        "entity_type": row["entity_type"], "entity_id": row["entity_id"], "detail": row.get("detail"),
    }  # fmt: skip
    body = canonical_json(content)
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


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
        await self.record_many(
            [{"actor": actor, "action": action, "entity_type": entity_type, "entity_id": entity_id, "detail": detail}]
        )

    async def record_many(self, entries: Sequence[dict[str, Any]]) -> None:
        """Several entries in one executemany; each dict has the keyword arguments of :meth:`record`."""
        if not entries:
            return
        prev = await self._head()
        now = utcnow()
        rows = []
        for e in entries:
            row = {"at": now, "detail": None, **e}
            row["prev_hash"] = prev
            row["row_hash"] = prev = row_digest(prev, row)
            rows.append(row)
        await insert_append(self.session, _audit, rows)
        # the anchor moves in the same transaction: rows and anchor commit together or not at all
        moved = await self.session.execute(
            update(_head_t).where(_head_t.c.id == _HEAD_ID)
            .values(rows=_head_t.c.rows + len(rows), last_hash=prev, updated_at=now)
        )  # fmt: skip
        if moved.rowcount == 0:  # type: ignore[attr-defined]
            await self.session.execute(insert(_head_t).values(id=_HEAD_ID, rows=len(rows), last_hash=prev, updated_at=now))

    async def _head(self) -> str:
        if self.session.bind.dialect.name == "postgresql":
            await self.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
        else:
            # SQLite: take the database's write lock before reading the head (a write that changes
            # nothing does), or two transactions could both chain onto the same row
            await self.session.execute(update(_audit).where(_audit.c.id == -1).values(actor=_audit.c.actor))
        stmt = select(_audit.c.row_hash).order_by(_audit.c.id.desc()).limit(1)
        last = (await self.session.execute(stmt)).scalar_one_or_none()
        return last or GENESIS

    async def list(
        self,
        *,
        entity_type: str | None = None,
        entity_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        """Newest first."""
        stmt = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit).offset(offset)
        if entity_type is not None:
            stmt = stmt.where(AuditRow.entity_type == entity_type)
        if entity_id is not None:
            stmt = stmt.where(AuditRow.entity_id == entity_id)
        if actor is not None:
            stmt = stmt.where(AuditRow.actor == actor)
        if action is not None:
            stmt = stmt.where(AuditRow.action.startswith(action, autoescape=True))
        rows = (await self.session.execute(stmt)).scalars().all()
        return [detached(AuditEntry, r) for r in rows]

    async def count(self) -> int:
        return int((await self.session.execute(select(func.count()).select_from(_audit))).scalar_one())


@dataclass
class ChainReport:
    rows: int = 0
    head: str = GENESIS
    #: what the anchor says: (rows, newest hash); None when it has none (an empty log)
    anchor: tuple[int, str] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify_chain(session: AsyncSession, *, batch: int = 5000) -> ChainReport:
    """Walk the log in id order, recomputing every hash: an edited row fails its own hash, an inserted
    or deleted one breaks the link of the row after it, and the walk must end where the anchor says
    (else the newest rows were deleted)."""
    report = ChainReport()
    head = (await session.execute(select(_head_t.c.rows, _head_t.c.last_hash).where(_head_t.c.id == _HEAD_ID))).first()
    report.anchor = None if head is None else (int(head.rows), str(head.last_hash))
    prev: str | None = None
    last_id = -1
    cols = [_audit.c.id, _audit.c.at, _audit.c.actor, _audit.c.action, _audit.c.entity_type, _audit.c.entity_id,
            _audit.c.detail, _audit.c.prev_hash, _audit.c.row_hash]  # fmt: skip
    while True:
        stmt = select(*cols).where(_audit.c.id > last_id).order_by(_audit.c.id).limit(batch)
        rows = (await session.execute(stmt)).mappings().all()
        if not rows:
            break
        for row in rows:
            last_id = row["id"]
            report.rows += 1
            if row["row_hash"] is None:
                report.problems.append(f"row {row['id']}: has no hash (written around the application, not by it)")
                continue
            expected_prev = GENESIS if prev is None else prev
            if row["prev_hash"] != expected_prev:
                report.problems.append(
                    f"row {row['id']}: does not follow the row before (a row was deleted or inserted before it)"
                )
            if row_digest(row["prev_hash"] or GENESIS, dict(row)) != row["row_hash"]:
                report.problems.append(f"row {row['id']}: content does not match its hash (edited)")
            prev = row["row_hash"]
    report.head = prev or GENESIS
    report.problems += _against_anchor(report)
    return report


def _against_anchor(report: ChainReport) -> list[str]:
    """One line when the walk does not end where the anchor says."""
    if report.anchor is None:
        return [] if report.rows == 0 else [f"the anchor (table audit_head) is missing, but the log holds {report.rows} rows"]
    rows, last = report.anchor
    if report.rows == rows and report.head == last:
        return []
    if report.rows < rows:
        return [f"the log ends after {report.rows} rows (head {report.head[:12]}…) but its anchor counts {rows} "
                f"(head {last[:12]}…): {rows - report.rows} row(s) missing, the newest deleted?"]  # fmt: skip
    if report.rows > rows:
        return [f"the log holds {report.rows} rows but its anchor counts {rows}: {report.rows - rows} row(s) "
                "added around the application"]  # fmt: skip
    return [f"the log's newest hash {report.head[:12]}… is not its anchor's {last[:12]}… (rows replaced?)"]
