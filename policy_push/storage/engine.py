"""Engines for the embedded SQLite file and for PostgreSQL.

SQLite is tuned per connection: WAL lets readers run beside the one writer, ``busy_timeout``
makes a second writer wait instead of failing at once, ``synchronous=NORMAL`` is safe with WAL
and much faster than FULL, and foreign keys are off by default in SQLite.

A PostgreSQL URL may carry ``?search_path=schema`` (the tests, and several deployments in one database,
work in their own schema) and ``?application_name=name`` (what ``pg_stat_activity`` shows for the
connections, so an operator can tell whose they are).  asyncpg takes both as server settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from policy_push.config import Settings
from policy_push.security.files import private_dir, touch_private

__all__ = ["create_engine", "database_url", "session_factory"]

_DEFAULT_BUSY_TIMEOUT_MS = 5000


def database_url(settings_or_url: Settings | str | URL) -> URL:
    if isinstance(settings_or_url, Settings):
        return make_url(settings_or_url.effective_database_url)
    return make_url(settings_or_url)


def create_engine(
    settings_or_url: Settings | str | URL,
    *,
    busy_timeout_ms: int | None = None,
    echo: bool = False,
    **engine_kw: Any,
) -> AsyncEngine:
    """An ``AsyncEngine`` for the configured database (or a URL).

    SQLite: the file's directory is created; each connection gets WAL, the busy timeout,
    foreign keys and ``synchronous=NORMAL``.  PostgreSQL: asyncpg; ``?search_path=`` is honoured.
    """
    url = database_url(settings_or_url)
    in_memory = url.get_backend_name() == "sqlite" and (url.database or ":memory:") == ":memory:"
    if isinstance(settings_or_url, Settings) and "poolclass" not in engine_kw and not in_memory:
        # a request past the pool's size opens (and closes) a connection of its own: on SQLite a new
        # thread, connect and pragmas each time, which cost more than the query the request came for
        engine_kw.setdefault("pool_size", settings_or_url.db_pool_size)
    if busy_timeout_ms is None:
        busy_timeout_ms = (
            settings_or_url.sqlite_busy_timeout_ms
            if isinstance(settings_or_url, Settings)
            else _DEFAULT_BUSY_TIMEOUT_MS
        )
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout_ms=busy_timeout_ms, echo=echo, **engine_kw)
    if url.get_backend_name() == "postgresql":
        return _postgres_engine(url, echo=echo, **engine_kw)
    raise ValueError(
        f"unsupported database {url.get_backend_name()!r}: use sqlite+aiosqlite:// or postgresql+asyncpg://"
    )


def _sqlite_engine(url: URL, *, busy_timeout_ms: int, echo: bool, **engine_kw: Any) -> AsyncEngine:
    if url.drivername == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        # personal data: the file is created owner-only (its -wal and -shm files take its mode)
        path = Path(url.database).expanduser()
        private_dir(path.parent)
        touch_private(path)
    engine = _create_async_engine(url, echo=echo, **engine_kw)

    @event.listens_for(engine.sync_engine, "connect")
    def _tune(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return engine


def _postgres_engine(url: URL, *, echo: bool, **engine_kw: Any) -> AsyncEngine:
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+asyncpg")
    connect_args: dict[str, Any] = dict(engine_kw.pop("connect_args", {}))
    server_settings = dict(connect_args.get("server_settings", {}))
    for name in ("search_path", "application_name"):
        value = url.query.get(name)
        if value:
            url = url.difference_update_query([name])
            server_settings[name] = str(value)
    if server_settings:
        connect_args["server_settings"] = server_settings
    engine_kw.setdefault("pool_pre_ping", True)
    return _create_async_engine(url, echo=echo, connect_args=connect_args, **engine_kw)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: repositories return plain dataclasses, but callers may still hold
    # rows after the transaction ends and must not trigger lazy loads outside it
    return async_sessionmaker(engine, expire_on_commit=False)
