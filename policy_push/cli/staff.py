"""``policy-push staff …``: staff accounts and API tokens from the command line (the operator's way to
create the first admin, and to act when nobody can log in)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from policy_push.errors import PolicyPushError
from policy_push.runtime import open_runtime
from policy_push.staff import ROLE_LABELS, Role, StaffDirectory

from .help import add_action, add_actions

__all__ = ["EXIT_REFUSED", "cli_actor", "register"]

#: exit code of a refused staff command (unknown name, bad role, weak password …)
EXIT_REFUSED = 3


def cli_actor() -> str:
    """Who ran the command, for the audit log: the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _role(raw: str) -> Role:
    try:
        return Role.parse(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("staff", help="staff accounts and API tokens: add, list, disable, reset-password, token")
    actions = add_actions(p, "staff_command")
    add = add_action(actions, "add", "create an account; prints its password once", _run(_add))
    add.add_argument("name", help="login name (2-64 characters: 汉字, letters, digits, . _ -)")
    add.add_argument("--role", type=_role, required=True, help="viewer, editor, approver or admin")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input instead of generating one")
    ls = add_action(actions, "list", "list accounts (and with --tokens their API tokens)", _run(_list))
    ls.add_argument("--tokens", action="store_true")
    dis = add_action(actions, "disable", "disable an account: its sessions end and its tokens are revoked", _run(_disable))
    dis.add_argument("name")
    rp = add_action(actions, "reset-password", "set a new password (printed once); its sessions end, a lockout lifts",
                    _run(_reset))
    rp.add_argument("name")
    rp.add_argument("--password-stdin", action="store_true")
    tok = actions.add_parser("token", help="API tokens for machine clients")
    tokens = add_actions(tok, "token_command")
    tc = add_action(tokens, "create", "a token for one client of an account; printed once, stored hashed", _run(_token_create))
    tc.add_argument("name", help="the account the client acts as")
    tc.add_argument("--client", required=True, help="what the token is for (e.g. 'import-job')")
    tc.add_argument("--role", type=_role, help="scope it below the account's role")
    tc.add_argument("--days", type=int, help="lifetime (default POLICY_PUSH_STAFF_TOKEN_DAYS)")
    tr = add_action(tokens, "revoke", "revoke a token by its id (the 16 hex digits after ppt_)", _run(_token_revoke))
    tr.add_argument("token_id")


def _run(action: Callable[[StaffDirectory, argparse.Namespace, Any], Awaitable[int]]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        from policy_push.cli import settings_from

        settings = settings_from(args)

        async def run() -> int:
            async with open_runtime(settings) as runtime, runtime.sessions() as session, session.begin():
                directory = StaffDirectory(session, lockout_failures=settings.staff_lockout_failures,
                                           lockout_minutes=settings.staff_lockout_minutes)  # fmt: skip
                return await action(directory, args, settings)

        try:
            return asyncio.run(run())
        except PolicyPushError as exc:
            print(f"policy-push staff: {exc.msg}", file=sys.stderr)
            return EXIT_REFUSED

    return handler


def _password(args: argparse.Namespace) -> str | None:
    if not getattr(args, "password_stdin", False):
        return None
    return sys.stdin.readline().rstrip("\n")


async def _add(d: StaffDirectory, args: argparse.Namespace, _settings: Any) -> int:
    row, password = await d.add(args.name, args.role, actor=cli_actor(), password=_password(args))
    print(f"added {row.name} ({row.role}, id {row.id})")
    if not args.password_stdin:
        print(f"password: {password}")
    return 0


async def _list(d: StaffDirectory, args: argparse.Namespace, _settings: Any) -> int:
    for row in await d.list():
        state = "active" if row.active else "disabled"
        last = row.last_login_at.isoformat(timespec="minutes") if row.last_login_at else "never"
        print(f"{row.id}  {row.name}  {row.role} ({ROLE_LABELS[Role(row.role)]})  {state}  last login {last}")
    if args.tokens:
        for t in await d.tokens():
            state = "revoked" if t.revoked_at else f"expires {t.expires_at.date().isoformat()}"
            print(f"token {t.id}  account {t.account_id}  client {t.client}  role {t.role}  {state}")
    return 0


async def _disable(d: StaffDirectory, args: argparse.Namespace, _settings: Any) -> int:
    row = await d.disable(args.name, actor=cli_actor())
    print(f"disabled {row.name}: its sessions ended and its tokens are revoked")
    return 0


async def _reset(d: StaffDirectory, args: argparse.Namespace, _settings: Any) -> int:
    password = await d.reset_password(args.name, actor=cli_actor(), password=_password(args))
    print(f"password of {args.name} reset; its sessions ended")
    if not args.password_stdin:
        print(f"password: {password}")
    return 0


async def _token_create(d: StaffDirectory, args: argparse.Namespace, settings: Any) -> int:
    row, token = await d.create_token(args.name, client=args.client, role=args.role,
                                      days=args.days or settings.staff_token_days, actor=cli_actor())  # fmt: skip
    print(f"token {row.id} for {args.client} ({row.role}), expires {row.expires_at.date().isoformat()}")
    # the secret goes to stdout alone on its line, so that `| tail -1` captures it; it is never stored
    print(token)
    return 0


async def _token_revoke(d: StaffDirectory, args: argparse.Namespace, _settings: Any) -> int:
    row = await d.revoke_token(args.token_id, actor=cli_actor())
    print(f"token {row.id} revoked")
    return 0
