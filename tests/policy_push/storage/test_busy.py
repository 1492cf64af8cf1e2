"""``is_busy``: the one rule for "another writer held the database too long", tried on the real errors of both
databases (the web answers those 503 with Retry-After instead of a 500 with a traceback)."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from policy_push.storage import create_engine
from policy_push.storage.sql import is_busy


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
async def test_sqlite_database_is_locked_is_busy(db_url: str) -> None:
    holder = sqlite3.connect(db_url.split("///", 1)[1], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    engine = create_engine(db_url, busy_timeout_ms=50)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as caught:
                await conn.execute(text("BEGIN IMMEDIATE"))
        assert is_busy(caught.value)
    finally:
        holder.rollback()
        holder.close()
        await engine.dispose()


@pytest.mark.parametrize("db_kind", ["postgres"], indirect=True)
async def test_postgres_lock_timeout_is_busy_and_a_plain_error_is_not(engine: AsyncEngine) -> None:
    async with engine.connect() as holder, engine.connect() as waiter:
        await holder.execute(text("LOCK TABLE policies IN ACCESS EXCLUSIVE MODE"))
        await waiter.execute(text("SET lock_timeout = '50ms'"))
        with pytest.raises(DBAPIError) as caught:
            await waiter.execute(text("SELECT count(*) FROM policies"))
        assert is_busy(caught.value)
        await holder.rollback()
        await waiter.rollback()
        with pytest.raises(DBAPIError) as plain:
            await waiter.execute(text("SELECT no_such_column FROM policies"))
        assert not is_busy(plain.value)
