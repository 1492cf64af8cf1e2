"""A rejected record leaves everything stored as it was (formats.md)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from policy_push.errors import RecordConflict as Conflict
from policy_push.security import PiiCipher
from policy_push.storage import EnterpriseRepository, PolicyRepository, ResidentRepository
from policy_push.storage.tables import Base
from tests.factories import make_enterprise, make_policy, make_resident

Sessions = async_sessionmaker[AsyncSession]


async def _snapshot(engine: AsyncEngine) -> dict[str, list[tuple[str, ...]]]:
    out: dict[str, list[tuple[str, ...]]] = {}
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = (await conn.execute(select(table))).all()
            out[table.name] = sorted(tuple(repr(v) for v in row) for row in rows)
    return out


class Boom(Exception):
    pass


async def _seed(session_factory: Sessions, cipher: PiiCipher) -> dict[str, Any]:
    policy, ent, res = make_policy(), make_enterprise(), make_resident()
    async with session_factory() as s, s.begin():
        await PolicyRepository(s).upsert(policy, actor="seed")
        await EnterpriseRepository(s, cipher).upsert(ent, actor="seed")
        await ResidentRepository(s, cipher).upsert(res, actor="seed")
    return {"policy": policy, "enterprise": ent, "resident": res}


async def test_failed_transaction_changes_nothing(
    session_factory: Sessions, engine: AsyncEngine, cipher: PiiCipher
) -> None:
    seeded = await _seed(session_factory, cipher)
    before = await _snapshot(engine)
    with pytest.raises(Boom):
        async with session_factory() as s, s.begin():
            await PolicyRepository(s).upsert(seeded["policy"].model_copy(update={"title": "改"}), actor="x")
            await PolicyRepository(s).upsert(make_policy(), actor="x")
            await EnterpriseRepository(s, cipher).upsert_many(
                [make_enterprise() for _ in range(5)], actor="x"
            )
            await ResidentRepository(s, cipher).delete(seeded["resident"].id, actor="x")
            raise Boom
    assert await _snapshot(engine) == before


async def test_conflict_mid_batch_changes_nothing(
    session_factory: Sessions, engine: AsyncEngine, cipher: PiiCipher
) -> None:
    seeded = await _seed(session_factory, cipher)
    before = await _snapshot(engine)
    batch = [make_resident(), make_resident(), make_resident(id_number=seeded["resident"].id_number)]
    with pytest.raises(Conflict):
        async with session_factory() as s, s.begin():
            await PolicyRepository(s).upsert(make_policy(), actor="x")
            await ResidentRepository(s, cipher).upsert_many(batch, actor="x")
    assert await _snapshot(engine) == before
