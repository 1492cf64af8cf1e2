"""The ``policy-push`` command line: one sub-command per module in this package."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from policy_push.config import Settings, load_settings
from policy_push.logs import configure_logging

from . import audit, db, demo, keys, match, records, serve, shards, simulators, staff, suggest, tools, worker
from .failures import Exit, explain

__all__ = ["build_parser", "main"]

_COMMANDS = (serve, worker, demo, records, match, suggest, db, keys, shards, simulators, tools, staff, audit)

#: the settings of this run, once loaded: a failure is explained against its database URL
_loaded: list[Settings] = []


def package_version() -> str:
    try:
        return version("policy_push")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policy-push",
        description="政策找人 — match support policies to the enterprises and residents entitled to them, and tell them.",
        epilog="Exit status: 0 done; 1 findings (rejected lines); 2 usage; 3 settings; 4 database unreachable; "
        "5 no such database; 6 schema not current; 7 port in use; 8 wrong PII key; 9 file missing or exists; "
        "130 interrupted. `policy-push COMMAND --help` shows each command with an example.",
    )
    parser.add_argument("--version", action="version", version=f"policy-push {package_version()}")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (same keys as POLICY_PUSH_* variables)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMANDS:
        module.register(sub)
    return parser


def settings_from(args: argparse.Namespace, **overrides: object) -> Settings:
    """Settings of this run (validated completely); logging is configured from them."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    settings = load_settings(args.config, **clean) if args.config else load_settings(**clean)
    _loaded[:] = [settings]
    configure_logging(settings)
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulators"]:
        # the simulators parse their own options; argparse would swallow them at this level
        return simulators.run(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    _loaded.clear()
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return Exit.INTERRUPTED
    except Exception as exc:
        failure = explain(exc, database_url=_loaded[0].effective_database_url if _loaded else "")
        if failure is None:
            raise  # a bug: its traceback is what a report needs
        print(f"policy-push {args.command}: {failure.line}", file=sys.stderr)
        return failure.code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
