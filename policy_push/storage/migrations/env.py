"""Alembic environment, async-aware.

Two ways in:
- programmatic (``policy_push.storage.schema.upgrade`` and the ``policy-push db`` commands): a
  live synchronous connection arrives in ``config.attributes["connection"]``;
- the ``alembic`` command line for developers (``alembic -c policy_push/storage/migrations/alembic.ini
  revision --autogenerate -m ...``): the URL comes from ``sqlalchemy.url`` or, when that is empty,
  from the service's own settings (``POLICY_PUSH_DATABASE_URL`` / ``POLICY_PUSH_DATA_DIR``).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from policy_push.storage.tables import Base

config = context.config
target_metadata = Base.metadata


def _configure_and_run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead
        render_as_batch=sqlite,
        compare_type=True,
    )
    if sqlite:
        # batch mode drops the old copy of a table; with foreign keys on, ON DELETE CASCADE would empty
        # the tables that point at it (a campaign's deliveries). Off for the migration (before its first
        # write, or SQLite ignores it); the caller discards this connection afterwards (schema.upgrade).
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine() -> None:
    from policy_push.config import Settings
    from policy_push.storage.engine import create_engine

    url = config.get_main_option("sqlalchemy.url") or Settings().effective_database_url
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_configure_and_run)
            await conn.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
    else:
        asyncio.run(_run_with_own_engine())


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
