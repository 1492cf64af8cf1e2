from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.storage import AuditLog

Sessions = async_sessionmaker[AsyncSession]


async def test_record_and_list_newest_first(session_factory: Sessions) -> None:
    async with session_factory() as s, s.begin():
        log = AuditLog(s)
        await log.record(
            actor="alice", action="campaign.approve", entity_type="campaign", entity_id="c-1", detail={"n": 3}
        )
        await log.record(actor="bob", action="campaign.send", entity_type="campaign", entity_id="c-1")
        await log.record(actor="bob", action="policy.create", entity_type="policy", entity_id="p-1")
    async with session_factory() as s:
        log = AuditLog(s)
        everything = await log.list()
        campaign = await log.list(entity_type="campaign", entity_id="c-1")
        latest = await log.list(limit=1)
    assert [e.action for e in everything] == ["policy.create", "campaign.send", "campaign.approve"]
    assert [e.actor for e in campaign] == ["bob", "alice"]
    assert campaign[1].detail == {"n": 3} and campaign[0].detail is None
    assert campaign[0].at.tzinfo is not None
    assert [e.entity_id for e in latest] == ["p-1"]


async def test_concurrent_writers_keep_one_unbroken_chain(session_factory: Sessions) -> None:
    """Writers in parallel transactions take turns on the chain's head: no fork, no gap."""
    import asyncio

    from policy_push.storage.audit import verify_chain

    async def write(i: int) -> None:
        async with session_factory() as s, s.begin():
            await AuditLog(s).record(actor=f"a{i}", action="test.write", entity_type="t", entity_id=str(i), detail={"i": i})
            await AuditLog(s).record_many([{"actor": f"a{i}", "action": "test.more", "entity_type": "t", "entity_id": str(i)}])

    for attempt in range(3):  # SQLite may refuse a writer while another holds the lock: retry as callers do
        try:
            await asyncio.gather(*(write(attempt * 100 + i) for i in range(8)))
            break
        except Exception:
            if attempt == 2:
                raise
    async with session_factory() as s:
        report = await verify_chain(s)
        total = await AuditLog(s).count()
    assert report.ok, report.problems
    assert report.rows == total and total >= 16 and report.anchor == (total, report.head)
