"""``policy-push audit verify|show``: check the audit log's hash chain, and read it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from policy_push.runtime import open_runtime
from policy_push.storage import AuditLog
from policy_push.storage.audit import verify_chain

from .help import add_action, add_actions

__all__ = ["EXIT_BROKEN", "register"]

#: exit code when the chain is broken (a row edited, inserted or deleted)
EXIT_BROKEN = 4


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("audit", help="the audit log: verify its hash chain, or show its latest entries")
    actions = add_actions(p, "audit_command")
    add_action(actions, "verify", "recompute every row's hash and check the walk ends at the anchor; exit 4 naming the "
               "rows edited, inserted or deleted (the newest included)", _verify)
    show = add_action(actions, "show", "the latest entries as JSON lines", _show)
    show.add_argument("--limit", type=int, default=50)


def _verify(args: argparse.Namespace) -> int:
    from policy_push.cli import settings_from

    settings = settings_from(args)

    async def run() -> int:
        async with open_runtime(settings) as runtime, runtime.sessions() as session:
            report = await verify_chain(session)
        if report.ok:
            print(f"audit log intact: {report.rows} rows, as its anchor counts; head {report.head}")
            return 0
        if len(report.problems) == 1:  # the usual case: one line that says it
            print(f"audit log NOT intact: {report.problems[0]}", file=sys.stderr)
            return EXIT_BROKEN
        for problem in report.problems:
            print(f"audit chain broken: {problem}", file=sys.stderr)
        print(f"audit log NOT intact: {len(report.problems)} problem(s) in {report.rows} rows", file=sys.stderr)
        return EXIT_BROKEN

    return asyncio.run(run())


def _show(args: argparse.Namespace) -> int:
    from policy_push.cli import settings_from

    settings = settings_from(args)

    async def run() -> int:
        async with open_runtime(settings) as runtime, runtime.sessions() as session:
            for e in await AuditLog(session).list(limit=max(1, min(args.limit, 10_000))):
                print(json.dumps({"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                                  "entity": f"{e.entity_type}:{e.entity_id}", "detail": e.detail}, ensure_ascii=False))  # fmt: skip
        return 0

    return asyncio.run(run())
