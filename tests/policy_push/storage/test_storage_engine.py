from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from policy_push.config import Settings
from policy_push.storage import create_engine


async def test_sqlite_pragmas_and_data_dir(tmp_path: Path, pii_key: str) -> None:
    settings = Settings(data_dir=tmp_path / "new" / "dir", sqlite_busy_timeout_ms=1234, pii_key=pii_key)
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            values = {
                name: (await conn.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
            }
    finally:
        await engine.dispose()
    # synchronous 1 = NORMAL
    assert values == {"journal_mode": "wal", "busy_timeout": 1234, "foreign_keys": 1, "synchronous": 1}
    assert (tmp_path / "new" / "dir" / "policy_push.db").exists()


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database 'mysql'"):
        create_engine("mysql+aiomysql://u@h/db")


@pytest.mark.postgres
async def test_postgres_search_path_from_url(pg_schema_url: str) -> None:
    engine = create_engine(pg_schema_url)
    try:
        async with engine.connect() as conn:
            schema = (await conn.execute(text("SELECT current_schema()"))).scalar()
    finally:
        await engine.dispose()
    assert schema == make_url(pg_schema_url).query["search_path"]
