"""Personal values never reach the database in plain text (design.md, invariant 6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from policy_push.domain import EnterpriseProfile, ResidentProfile
from policy_push.security import PiiCipher
from policy_push.storage import EnterpriseRepository, ResidentRepository
from policy_push.storage.tables import Base
from tests.factories import make_enterprise, make_resident

Sessions = async_sessionmaker[AsyncSession]


def _secrets(ent: EnterpriseProfile, res: ResidentProfile) -> list[str]:
    values = [
        ent.contact.phone,
        ent.contact.wechat_openid,
        ent.contact.app_registration_id,
        res.contact.phone,
        res.contact.wechat_openid,
        res.id_number,
        res.name,  # a person's name is personal data (issue 10); stored encrypted, kept masked
    ]
    assert all(values)
    return [v for v in values if v]


async def _store(session_factory: Sessions, cipher: PiiCipher) -> tuple[EnterpriseProfile, ResidentProfile]:
    ent = make_enterprise()
    res = make_resident()
    async with session_factory() as s, s.begin():
        await EnterpriseRepository(s, cipher).upsert(ent, actor="t")
        await ResidentRepository(s, cipher).upsert(res, actor="t")
    # and once more with a change, so the update path and the audit log are covered too
    async with session_factory() as s, s.begin():
        await ResidentRepository(s, cipher).upsert(res.model_copy(update={"interests": "就业"}), actor="t")
    return ent, res


def _as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")  # every byte kept, so ASCII plain text would show
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


async def test_raw_rows_hold_no_plaintext(
    session_factory: Sessions, engine: AsyncEngine, cipher: PiiCipher
) -> None:
    ent, res = await _store(session_factory, cipher)
    dump: list[str] = []
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in await conn.execute(select(table)):
                dump.extend(_as_text(v) for v in row)
    blob = "\n".join(dump)
    assert ent.id in blob and res.id in blob  # the dump did read the rows
    for secret in _secrets(ent, res):
        assert secret not in blob


async def test_raw_sqlite_file_holds_no_plaintext(
    session_factory: Sessions, engine: AsyncEngine, cipher: PiiCipher, db_url: str, db_kind: str
) -> None:
    ent, res = await _store(session_factory, cipher)
    if db_kind != "sqlite":
        return  # PostgreSQL's files are not ours to read; the row test covers it
    await engine.dispose()
    path = Path(make_url(db_url).database or "")
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert ent.id.encode() in raw
    for secret in _secrets(ent, res):
        assert secret.encode() not in raw


async def test_keyed_hashes_differ_between_keys(session_factory: Sessions, cipher: PiiCipher) -> None:
    """The look-up hash is an HMAC: without the key nobody can test a guessed phone number."""
    import hashlib

    ent = make_enterprise()
    async with session_factory() as s, s.begin():
        await EnterpriseRepository(s, cipher).upsert(ent, actor="t")
    table = Base.metadata.tables["enterprises"]
    async with session_factory() as s:
        stored = (await s.execute(select(table.c.phone_hash, table.c.content_hash))).one()
    assert ent.contact.phone is not None
    assert stored.phone_hash == cipher.lookup_hash("phone", ent.contact.phone)
    assert stored.phone_hash != hashlib.sha256(ent.contact.phone.encode()).hexdigest()
    assert stored.content_hash != ent.content_hash()  # the unkeyed domain hash would leak too
