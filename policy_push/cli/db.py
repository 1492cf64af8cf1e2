"""``policy-push db upgrade|downgrade|status|history``: schema migrations.

Migrations ship inside the package (no alembic.ini needed). Take a backup before an upgrade or a downgrade
(docs/operations.md). `serve`, `worker`, `import` and `export` refuse a schema that is not current (exit
status 6).

Example::

  policy-push db upgrade
  policy-push db status
  policy-push db history
  policy-push db downgrade 0004
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from policy_push.storage import create_engine, schema_status, upgrade
from policy_push.storage.schema import SchemaStatus, downgrade, history

from .help import add_action, add_actions, add_documented

T = TypeVar("T")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_documented(sub, "db", "database schema: upgrade, downgrade, status, history", __doc__)
    actions = add_actions(p, "db_command")
    up = add_action(actions, "upgrade", "apply every pending migration (or up to REVISION)", _upgrade)
    up.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    down = add_action(actions, "downgrade", "undo migrations down to REVISION (`base`: an empty schema)", _downgrade)
    down.add_argument("revision", help="target revision, e.g. 0004, or -1 for one step back")
    add_action(actions, "status", "show the schema revision and whether it is current", _status)
    add_action(actions, "history", "list the migrations, oldest first, marking the database's revision", _history)


def _on_engine(args: argparse.Namespace, use: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run ``use`` on an engine of this run's database, disposed of afterwards."""
    from policy_push.cli import settings_from

    settings = settings_from(args)

    async def run() -> T:
        engine = create_engine(settings)
        try:
            return await use(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _upgrade(args: argparse.Namespace) -> int:
    async def up(engine: AsyncEngine) -> SchemaStatus:
        await upgrade(engine, revision=args.revision)
        return await schema_status(engine)

    status = _on_engine(args, up)
    state = "current" if status.is_current else f"head is {status.head}"
    print(f"database schema at revision {status.current} ({state})")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    status = _on_engine(args, lambda engine: downgrade(engine, revision=args.revision))
    print(f"database schema at revision {status.current or '(empty)'}; `policy-push db upgrade` returns to {status.head}")
    return 0


def _status(args: argparse.Namespace) -> int:
    status = _on_engine(args, schema_status)
    state = "current" if status.is_current else f"out of date: run `policy-push db upgrade` to reach {status.head}"
    print(f"database schema at revision {status.current or '(empty)'}; {state}")
    return 0 if status.is_current else 1


def _history(args: argparse.Namespace) -> int:
    current = _on_engine(args, schema_status).current
    for revision, title in history():
        mark = "  <- database" if revision == current else ""
        print(f"{revision:<28} {title}{mark}")
    return 0
