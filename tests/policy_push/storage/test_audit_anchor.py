"""The audit chain's anchor: the newest rows deleted (which a chain alone cannot show) are found, in one
line; and migration i9b_audit_anchor chains the rows written before the chain existed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from policy_push.storage import AuditLog, create_engine, upgrade
from policy_push.storage import session_factory as make_sessions
from policy_push.storage.audit import GENESIS, row_digest, verify_chain
from policy_push.storage.tables import AuditHeadRow, AuditRow

Sessions = async_sessionmaker[AsyncSession]


async def _write(sessions: Sessions, n: int, *, start: int = 0) -> None:
    for i in range(start, start + n):
        async with sessions() as s, s.begin():
            await AuditLog(s).record(actor=f"a{i}", action="test.write", entity_type="t", entity_id=str(i), detail={"i": i})


async def _verify(sessions: Sessions) -> Any:
    async with sessions() as s:
        return await verify_chain(s)


async def _delete_newest(sessions: Sessions, n: int) -> None:
    async with sessions() as s, s.begin():
        newest = (await s.execute(select(AuditRow.id).order_by(AuditRow.id.desc()).limit(n))).scalars().all()
        await s.execute(delete(AuditRow).where(AuditRow.id.in_(newest)))


async def test_deleting_the_newest_rows_is_found(session_factory: Sessions) -> None:
    await _write(session_factory, 5)
    report = await _verify(session_factory)
    assert report.ok and report.rows == 5 and report.anchor == (5, report.head), report.problems
    await _delete_newest(session_factory, 2)
    report = await _verify(session_factory)
    # the chain that is left is whole: only the anchor tells
    assert len(report.problems) == 1, report.problems
    assert "3 rows" in report.problems[0] and "counts 5" in report.problems[0] and "2 row(s) missing" in report.problems[0]


async def test_truncation_stays_visible_after_later_writes(session_factory: Sessions) -> None:
    await _write(session_factory, 3)
    await _delete_newest(session_factory, 1)
    await _write(session_factory, 2, start=10)  # the application goes on writing onto the shortened chain
    report = await _verify(session_factory)
    assert not report.ok and "1 row(s) missing" in " ".join(report.problems), report.problems


async def test_the_anchor_deleted_or_everything_deleted(session_factory: Sessions) -> None:
    assert (await _verify(session_factory)).ok  # an empty log with no anchor is a new database
    await _write(session_factory, 2)
    async with session_factory() as s, s.begin():
        await s.execute(delete(AuditHeadRow))
    report = await _verify(session_factory)
    assert report.problems == ["the anchor (table audit_head) is missing, but the log holds 2 rows"]
    await _write(session_factory, 1, start=5)  # the anchor comes back with the next write, and still disagrees
    assert not (await _verify(session_factory)).ok
    async with session_factory() as s, s.begin():
        await s.execute(delete(AuditRow))
    report = await _verify(session_factory)
    assert report.rows == 0 and "0 rows" in report.problems[0] and "row(s) missing" in report.problems[0]


async def test_an_unchained_row_is_a_problem_wherever_it_is(session_factory: Sessions) -> None:
    await _write(session_factory, 2)
    async with session_factory() as s, s.begin():
        await s.execute(insert(AuditRow).values(at=dt.datetime.now(dt.UTC), actor="x", action="login",
                                                entity_type="staff", entity_id="x"))  # fmt: skip
    report = await _verify(session_factory)
    assert any("has no hash" in p for p in report.problems), report.problems


# -- the migration -------------------------------------------------------------------------------
def _row(i: int, *, minute: int) -> dict[str, Any]:
    at = dt.datetime(2026, 11, 1, 9, minute, 0, 123456, tzinfo=dt.UTC)
    return {"at": at, "actor": f"old{i}", "action": "policy.create", "entity_type": "policy", "entity_id": f"p-{i}",
            "detail": {"n": i, "名": "政策"} if i % 2 else None}  # fmt: skip


async def _before_anchor(engine: AsyncEngine, *, tamper: bool = False) -> None:
    """A database at 0011_opened: three rows from before the chain, then two chained as 0010's code chained
    them (onto GENESIS: the rows before had no hash)."""
    await upgrade(engine, revision="0011_opened")
    async with engine.begin() as conn:
        for i in range(3):
            await conn.execute(insert(AuditRow.__table__).values(**_row(i, minute=i)))
        prev = GENESIS
        for i in range(3, 5):
            row = _row(i, minute=i)
            digest = row_digest(prev, row)
            await conn.execute(insert(AuditRow.__table__).values(**row, prev_hash=prev, row_hash=digest))
            prev = digest
        if tamper:
            await conn.execute(AuditRow.__table__.update().where(AuditRow.id == 5).values(actor="someone-else"))


async def test_migration_chains_the_older_rows(empty_db_url: str) -> None:
    engine = create_engine(empty_db_url)
    try:
        await _before_anchor(engine)
        assert (await upgrade(engine)).is_current
        sessions = make_sessions(engine)
        report = await _verify(sessions)
        assert report.ok and report.rows == 5 and report.anchor == (5, report.head), report.problems
        async with sessions() as s:
            assert await s.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.row_hash.is_(None))) == 0
            first = (await AuditLog(s).list(limit=5))[-1]
        assert first.actor == "old0"  # content untouched, only the hashes written
        # and from here on the chain and its anchor grow together
        await _write(sessions, 1, start=9)
        assert (await _verify(sessions)).ok
        await _delete_newest(sessions, 1)
        assert not (await _verify(sessions)).ok
    finally:
        await engine.dispose()


async def test_migration_does_not_bless_a_broken_chain(empty_db_url: str) -> None:
    engine = create_engine(empty_db_url)
    try:
        await _before_anchor(engine, tamper=True)
        await upgrade(engine)
        sessions = make_sessions(engine)
        async with sessions() as s:
            unchained = await s.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.row_hash.is_(None)))
        report = await _verify(sessions)
        assert unchained == 3  # left as they were
        assert any("row 5: content does not match its hash" in p for p in report.problems), report.problems
        assert sum("has no hash" in p for p in report.problems) == 3
    finally:
        await engine.dispose()
