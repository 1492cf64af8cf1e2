"""On PostgreSQL a large chunk of profiles is written by COPY into a staging table and one
INSERT … SELECT … ON CONFLICT, and its audit and change-feed rows by COPY (``sql.insert_append``);
the result must be exactly what the executemany path writes, the audit chain intact."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.security import PiiCipher
from policy_push.storage import EnterpriseRepository, ResidentRepository, create_engine
from policy_push.storage import profiles as profiles_module
from policy_push.storage import session_factory as make_session_factory
from policy_push.storage import sql as sql_module
from policy_push.storage.audit import verify_chain
from policy_push.storage.tables import AuditRow, ChangeRow
from tests.conftest import _empty_pg_schema, run_async
from tests.factories import make_enterprise, make_resident

pytestmark = pytest.mark.postgres

N = 240  # several chunks' worth of rows above COPY_MIN_ROWS, in one call


def _profiles(version: int) -> tuple[list[Any], list[Any]]:
    ents = [make_enterprise(10_000 + i, employees=40 + i + version, interests=f"技术改造 第{version}版")
            for i in range(N)]
    ress = [make_resident(20_000 + i, interests=f"养老 医疗 第{version}版") for i in range(N)]
    if version:  # the update drops some personal values and changes a region
        ress = [r.model_copy(update={"id_number": None}) if i % 3 == 0 else r for i, r in enumerate(ress)]
    return ents, ress


async def _write_and_read(url: str, cipher: PiiCipher) -> dict[str, Any]:
    engine = create_engine(url)
    sessions: async_sessionmaker[AsyncSession] = make_session_factory(engine)
    try:
        outcomes = []
        for version in (0, 1, 1):  # created, updated, unchanged
            ents, ress = _profiles(version)
            async with sessions() as s, s.begin():
                outcomes += [r.outcome for r in await EnterpriseRepository(s, cipher).upsert_many(ents, actor="t")]
                outcomes += [r.outcome for r in await ResidentRepository(s, cipher).upsert_many(ress, actor="t")]
        async with sessions() as s:
            got: dict[str, Any] = {"outcomes": outcomes}
            for repo, table in ((EnterpriseRepository(s, cipher), EnterpriseRepository.table),
                                (ResidentRepository(s, cipher), ResidentRepository.table)):
                got[table.name] = [p async for p in repo.iter_all()]
                skip = {c.name for c in table.columns if c.name.endswith(("_enc", "_at"))}  # random nonces, clocks
                rows = (await s.execute(select(table).order_by(table.c.id))).mappings().all()
                got[table.name + " rows"] = [{k: v for k, v in r.items() if k not in skip} for r in rows]
                got[table.name + " kept created_at"] = all(r["created_at"] <= r["updated_at"] for r in rows)
            got["changes"] = (await s.execute(select(ChangeRow.kind, ChangeRow.entity_id, ChangeRow.op)
                                              .order_by(ChangeRow.id))).all()
            got["audit"] = (await s.execute(select(AuditRow.action, AuditRow.entity_id).order_by(AuditRow.id))).all()
            chain = await verify_chain(s)
            got["audit chain"] = (chain.ok, chain.rows, chain.problems)
            got["change numbers"] = len(set((await s.execute(select(ChangeRow.seq))).scalars()))
        return got
    finally:
        await engine.dispose()


def test_copy_path_writes_what_the_executemany_path_writes(pg_schema_url: str, cipher: PiiCipher,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    copied = []
    real = profiles_module._ProfileRepository._write_rows
    appended: list[str] = []
    real_copy = sql_module.copy_records

    async def counting(self: Any, rows: list[dict[str, Any]]) -> None:
        copied.append(len(rows) >= profiles_module.COPY_MIN_ROWS)
        await real(self, rows)

    async def copying(session: Any, table: Any, rows: Any, columns: Any) -> None:
        appended.append(getattr(table, "name", table))
        await real_copy(session, table, rows, columns)

    monkeypatch.setattr(profiles_module._ProfileRepository, "_write_rows", counting)
    monkeypatch.setattr(sql_module, "copy_records", copying)
    run_async(lambda: _empty_pg_schema(pg_schema_url))
    by_copy = run_async(lambda: _write_and_read(pg_schema_url, cipher))
    assert copied and all(copied)  # every write of this test went by COPY
    assert {"audit_log", "changes"} <= set(appended)  # and so did its audit and change rows
    monkeypatch.setattr(profiles_module, "COPY_MIN_ROWS", 10**9)
    monkeypatch.setattr(sql_module, "COPY_MIN_ROWS", 10**9)
    run_async(lambda: _empty_pg_schema(pg_schema_url))
    by_rows = run_async(lambda: _write_and_read(pg_schema_url, cipher))
    assert by_copy["outcomes"] == by_rows["outcomes"]
    assert by_copy["outcomes"].count("updated") == 2 * N and by_copy["outcomes"].count("unchanged") == 2 * N
    for key in by_rows:
        assert by_copy[key] == by_rows[key], key
    assert len(by_copy["enterprises"]) == N and by_copy["residents"][0].interests.endswith("第1版")
    assert sum(r.id_number is None for r in by_copy["residents"]) == N // 3
    assert by_copy["audit chain"] == (True, 4 * N, []) and by_copy["change numbers"] == 4
