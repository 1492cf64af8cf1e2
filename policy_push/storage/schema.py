"""Schema migrations run from the program (no ``alembic.ini`` on the user's side), and the
check that stops ``serve`` on a database the code does not match."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from policy_push.config import Settings
from policy_push.errors import SchemaAhead, SchemaOutOfDate

from .engine import create_engine

__all__ = [
    "SchemaStatus",
    "alembic_config",
    "downgrade",
    "head_revision",
    "history",
    "require_current_schema",
    "schema_status",
    "upgrade",
]

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    current: str | None
    head: str

    @property
    def is_current(self) -> bool:
        return self.current == self.head

    def raise_if_outdated(self) -> None:
        """:class:`SchemaOutOfDate` (or :class:`SchemaAhead`) unless the schema is current."""
        if self.is_current:
            return
        if self.current is not None and not _is_known(self.current):
            raise SchemaAhead(self.current, self.head)
        raise SchemaOutOfDate(self.current, self.head)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations directory has no revisions"
    return head


@contextlib.contextmanager
def _quiet_alembic(quiet: bool) -> Iterator[None]:
    # alembic reports every step at INFO; the CLI prints its own one-line summary instead
    logger = logging.getLogger("alembic")
    old = logger.level
    if quiet:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(old)


def _upgrade_sync(connection: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def upgrade(
    target: AsyncEngine | Settings | str | URL, *, revision: str = "head", quiet: bool = True
) -> SchemaStatus:
    """``alembic upgrade head`` on the database named by ``target``; returns the new status."""
    engine, owned = (target, False) if isinstance(target, AsyncEngine) else (create_engine(target), True)
    try:
        with _quiet_alembic(quiet):
            async with engine.begin() as conn:
                await conn.run_sync(_upgrade_sync, alembic_config(), revision)
        if engine.dialect.name == "sqlite":
            # the migration turned foreign keys off on its connection: new connections turn them on
            await engine.dispose()
        return await schema_status(engine)
    finally:
        if owned:
            await engine.dispose()


def _downgrade_sync(connection: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


async def downgrade(engine: AsyncEngine, *, revision: str, quiet: bool = True) -> SchemaStatus:
    """``alembic downgrade REVISION``; a revision the scripts do not know is a ConfigurationError."""
    from policy_push.errors import ConfigurationError

    if revision not in ("base",) and not revision.startswith("-") and not _is_known(revision):
        raise ConfigurationError(f"no migration {revision!r}; `policy-push db history` lists them")
    try:
        with _quiet_alembic(quiet):
            async with engine.begin() as conn:
                await conn.run_sync(_downgrade_sync, alembic_config(), revision)
    except CommandError as exc:
        raise ConfigurationError(f"cannot downgrade to {revision!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        await engine.dispose()
    return await schema_status(engine)


def history() -> list[tuple[str, str]]:
    """(revision, first line of its docstring), oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    revs = list(script.walk_revisions())
    revs.reverse()
    return [(r.revision, (r.doc or "").strip().splitlines()[0] if r.doc else "") for r in revs]


def _current_sync(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def schema_status(engine: AsyncEngine) -> SchemaStatus:
    # quiet: reading the revision is not news, and alembic logs its dialect choice at INFO
    with _quiet_alembic(True):
        async with engine.connect() as conn:
            current = await conn.run_sync(_current_sync)
    return SchemaStatus(current=current, head=head_revision())


def _is_known(revision: str) -> bool:
    script = ScriptDirectory.from_config(alembic_config())
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


async def require_current_schema(engine: AsyncEngine) -> SchemaStatus:
    """Raise :class:`SchemaOutOfDate` unless the database is at this code's head revision."""
    status = await schema_status(engine)
    status.raise_if_outdated()
    return status
