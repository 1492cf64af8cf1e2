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
