"""``policy-push db upgrade|downgrade|status|history``: schema migrations."""

from __future__ import annotations

import argparse
import asyncio

from policy_push.storage import create_engine, schema_status, upgrade
from policy_push.storage.schema import downgrade, history

from .help import add_command


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(
        sub, "db", "database schema: upgrade, downgrade, status, history",
        "Migrations ship inside the package (no alembic.ini needed). Take a backup before an upgrade or a "
        "downgrade (docs/operations.md). `serve`, `worker`, `import` and `export` refuse a schema that is not "
        "current (exit status 6).",
        "  policy-push db upgrade\n  policy-push db status\n  policy-push db history\n  policy-push db downgrade 0004",
    )  # fmt: skip
    dbsub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dbsub.add_parser("upgrade", help="apply every pending migration (or up to REVISION)")
    up.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    up.set_defaults(handler=_upgrade)
    down = dbsub.add_parser("downgrade", help="undo migrations down to REVISION (`base`: an empty schema)")
    down.add_argument("revision", help="target revision, e.g. 0004, or -1 for one step back")
    down.set_defaults(handler=_downgrade)
    st = dbsub.add_parser("status", help="show the schema revision and whether it is current")
    st.set_defaults(handler=_status)
    hi = dbsub.add_parser("history", help="list the migrations, oldest first, marking the database's revision")
    hi.set_defaults(handler=_history)


def _upgrade(args: argparse.Namespace) -> int:
    from policy_push.cli import settings_from

    settings = settings_from(args)

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await upgrade(engine, revision=args.revision)
            status = await schema_status(engine)
        finally:
            await engine.dispose()
        state = "current" if status.is_current else f"head is {status.head}"
        print(f"database schema at revision {status.current} ({state})")

    asyncio.run(run())
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    from policy_push.cli import settings_from

    settings = settings_from(args)

    async def run() -> None:
        engine = create_engine(settings)
        try:
            status = await downgrade(engine, revision=args.revision)
        finally:
            await engine.dispose()
        print(f"database schema at revision {status.current or '(empty)'}; `policy-push db upgrade` returns to {status.head}")

    asyncio.run(run())
    return 0


def _status(args: argparse.Namespace) -> int:
    from policy_push.cli import settings_from

    settings = settings_from(args)

    async def run() -> int:
        engine = create_engine(settings)
        try:
            status = await schema_status(engine)
        finally:
            await engine.dispose()
        state = "current" if status.is_current else f"out of date: run `policy-push db upgrade` to reach {status.head}"
        print(f"database schema at revision {status.current or '(empty)'}; {state}")
        return 0 if status.is_current else 1

    return asyncio.run(run())


def _history(args: argparse.Namespace) -> int:
    from policy_push.cli import settings_from

    settings = settings_from(args)

    async def run() -> str | None:
        engine = create_engine(settings)
        try:
            return (await schema_status(engine)).current
        finally:
            await engine.dispose()

    current = asyncio.run(run())
    for revision, title in history():
        mark = "  <- database" if revision == current else ""
        print(f"{revision:<28} {title}{mark}")
    return 0
