"""Resident names encrypted at rest (issue 10): the repository seals new ones, the migration seals
the ones stored before it, and list views show them masked."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.security import PiiCipher, generate_key, mask_name
from policy_push.storage import ResidentRepository, create_engine, upgrade
from policy_push.storage.tables import Base, utcnow
from tests.factories import make_resident

Sessions = async_sessionmaker[AsyncSession]
_T = Base.metadata.tables["residents"]


def test_mask_name() -> None:
    assert mask_name("张三") == "张*" and mask_name("欧阳娜娜") == "欧***" and mask_name("李") == "*"
    assert mask_name(None) is None


async def test_names_are_sealed_and_read_back(session_factory: Sessions, cipher: PiiCipher) -> None:
    res = make_resident()
    async with session_factory() as s, s.begin():
        await ResidentRepository(s, cipher).upsert(res, actor="t")
    async with session_factory() as s:
        row = (await s.execute(select(_T.c.name, _T.c.name_enc, _T.c.document))).one()
        back = await ResidentRepository(s, cipher).get(res.id)
    assert row.name == mask_name(res.name) and row.document["name"] == mask_name(res.name)
    assert cipher.decrypt("name", row.name_enc) == res.name
    assert back is not None and back.name == res.name


async def test_the_migration_seals_names_stored_before_it(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_key()
    await upgrade(empty_db_url, revision="0005")
    engine = create_engine(empty_db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(_T.insert().values(
                id="r1", name="王小明", region="211102", consent=True, document={"id": "r1", "name": "王小明"},
                content_hash="h", created_at=utcnow(), updated_at=utcnow(),
            ))  # fmt: skip
        monkeypatch.setenv("POLICY_PUSH_PII_KEY", key)
        await upgrade(engine)
        async with engine.connect() as conn:
            row = (await conn.execute(select(_T.c.name, _T.c.name_enc, _T.c.document))).one()
    finally:
        await engine.dispose()
    assert row.name == "王**" and "王小明" not in str(row.document)
    assert PiiCipher(key).decrypt("name", row.name_enc) == "王小明"
