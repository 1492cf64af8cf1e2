"""Fixtures shared by the whole suite.

Databases: ``db_url`` runs a test twice, on SQLite (a fresh file per test, copied from one
migrated template) and on PostgreSQL (one schema ``pp_test_<random>`` per test session, made
with the real Alembic migrations, emptied before each test, dropped at the end).  The
PostgreSQL server comes from ``POLICY_PUSH_TEST_PG_URL``; if it cannot be reached the postgres
tests fail with the reason, unless ``POLICY_PUSH_SKIP_PG=1`` says to skip them.

The ``engine``, ``session_factory`` and ``db_settings`` fixtures build on ``db_url``;
``settings`` and ``cipher`` need no database.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from policy_push.config import Settings
from policy_push.security import PiiCipher, generate_key
from policy_push.storage import create_engine, upgrade
from policy_push.storage import session_factory as make_session_factory

#: simulators, settings pointing at them and a dispatcher, for the dispatch and fault tests
pytest_plugins = ["tests.policy_push.sending.fixtures"]

PG_URL_ENV = "POLICY_PUSH_TEST_PG_URL"
SKIP_PG_ENV = "POLICY_PUSH_SKIP_PG"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
API_TOKEN = "test-token"
# the suite's own switches survive the clean-environment fixture
_KEEP_ENV = {PG_URL_ENV, SKIP_PG_ENV}

T = TypeVar("T")


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a private loop in a private thread, so sync fixtures can
    do async set-up even while a test's event loop is running in this thread."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = asyncio.run(factory())
        except BaseException as exc:  # handed to the calling thread below
            out["error"] = exc

    thread = threading.Thread(target=target, name="fixture-setup")
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No POLICY_PUSH_* variable of the developer's shell leaks into a test's settings."""
    for name in list(os.environ):
        if name.startswith("POLICY_PUSH_") and name not in _KEEP_ENV:
            monkeypatch.delenv(name)


# -- settings and PII ------------------------------------------------------------------------------
@pytest.fixture
def pii_key() -> str:
    return generate_key()


@pytest.fixture
def settings(tmp_path: Path, pii_key: str) -> Settings:
    """Demo-free settings: a random PII key, api token ``test-token``, data in ``tmp_path/data``
    (so the embedded database is ``tmp_path/data/policy_push.db``)."""
    return Settings(data_dir=tmp_path / "data", pii_key=pii_key, api_token=API_TOKEN, demo=False)


@pytest.fixture
def cipher(settings: Settings) -> PiiCipher:
    return PiiCipher.from_settings(settings)


# -- databases -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test copies it instead of migrating again."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    run_async(lambda: upgrade(f"sqlite+aiosqlite:///{path}"))
    # fold the WAL into the main file so one file copy carries everything
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _pg_admin_url() -> str:
    return os.environ.get(PG_URL_ENV) or DEFAULT_PG_URL


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL (``?search_path=pp_test_<random>``) on a freshly migrated schema."""
    if os.environ.get(SKIP_PG_ENV) == "1":
        pytest.skip(f"PostgreSQL tests skipped because {SKIP_PG_ENV}=1")
    admin_url = _pg_admin_url()
    schema = f"pp_test_{secrets.token_hex(6)}"

    async def create() -> None:
        engine = create_engine(admin_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        finally:
            await engine.dispose()

    problem = ""
    try:
        run_async(create)
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if problem:  # failed outside the except block, so the report is the message alone
        shown = make_url(admin_url).render_as_string(hide_password=True)
        pytest.fail(
            f"PostgreSQL at {shown} is unreachable ({problem}). Start it, point {PG_URL_ENV} at a "
            f"reachable server, or set {SKIP_PG_ENV}=1 to skip the PostgreSQL tests.",
            pytrace=False,
        )
    url = make_url(admin_url).update_query_dict({"search_path": schema}).render_as_string(hide_password=False)

    async def drop() -> None:
        engine = create_engine(admin_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            await engine.dispose()

    try:
        run_async(lambda: upgrade(url))
        yield url
    finally:
        run_async(drop)


async def _empty_pg_schema(url: str) -> None:
    """Empty every table but Alembic's, whatever tables later migrations add."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            names = (
                (
                    await conn.execute(
                        text(
                            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'alembic_version'"
                        )
                    )
                )
                .scalars()
                .all()
            )
            if names:
                await conn.execute(
                    text(f"TRUNCATE {', '.join(f'{n!s}' for n in names)} RESTART IDENTITY CASCADE")
                )
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_kind(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgres``; every test that uses a database runs on both."""
    return str(request.param)


@pytest.fixture
def db_url(db_kind: str, request: pytest.FixtureRequest, settings: Settings) -> str:
    """An empty, migrated database: SQLite at ``settings``' embedded path, or the session's
    PostgreSQL schema (with ``?search_path=``; build engines with ``policy_push.storage.create_engine``)."""
    if db_kind == "sqlite":
        target = settings.data_dir / "policy_push.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite+aiosqlite:///{target}"
    url: str = request.getfixturevalue("pg_schema_url")
    run_async(lambda: _empty_pg_schema(url))
    return url


@pytest.fixture
def db_settings(settings: Settings, db_url: str) -> Settings:
    """``settings`` pointed at the test database."""
    return settings.model_copy(update={"database_url": db_url})


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(db_url)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_session_factory(engine)


@pytest.fixture
def empty_db_url(db_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with no tables at all (for migration tests): a new SQLite file, or a new
    PostgreSQL schema dropped afterwards."""
    if db_kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty' / 'policy_push.db'}"
        return
    base = make_url(request.getfixturevalue("pg_schema_url"))
    schema = f"pp_test_{secrets.token_hex(6)}_empty"
    admin_url = base.difference_update_query(["search_path"])

    async def ddl(statement: str) -> None:
        engine = create_engine(admin_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    run_async(lambda: ddl(f'CREATE SCHEMA "{schema}"'))
    try:
        yield base.update_query_dict({"search_path": schema}).render_as_string(hide_password=False)
    finally:
        run_async(lambda: ddl(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
