"""``policy-push db upgrade|status``: schema migrations."""

from __future__ import annotations

import argparse
import asyncio

from policy_push.storage import create_engine, schema_status, upgrade


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("db", help="database schema: upgrade to the current version, or show its status")
    dbsub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dbsub.add_parser("upgrade", help="apply every pending migration")
    up.set_defaults(handler=_upgrade)
    st = dbsub.add_parser("status", help="show the schema revision and whether it is current")
    st.set_defaults(handler=_status)


def _upgrade(args: argparse.Namespace) -> int:
    from policy_push.cli import settings_from

    settings = settings_from(args)

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await upgrade(engine)
            status = await schema_status(engine)
        finally:
            await engine.dispose()
        print(f"database schema at revision {status.current} (current)")

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
