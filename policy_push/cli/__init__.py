"""The ``policy-push`` command line: one sub-command per module in this package."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from policy_push.config import Settings, load_settings
from policy_push.errors import ConfigurationError

from . import audit, db, demo, match, records, serve, simulators, staff, suggest, tools, worker

__all__ = ["build_parser", "main"]

_COMMANDS = (serve, worker, demo, records, match, suggest, db, simulators, tools, staff, audit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policy-push",
        description="政策找人 — match support policies to the enterprises and residents entitled to them, and tell them.",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (same keys as POLICY_PUSH_* variables)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMANDS:
        module.register(sub)
    return parser


def settings_from(args: argparse.Namespace, **overrides: object) -> Settings:
    clean = {k: v for k, v in overrides.items() if v is not None}
    return load_settings(args.config, **clean) if args.config else load_settings(**clean)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulators"]:
        # the simulators parse their own options; argparse would swallow them at this level
        return simulators.run(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except ValidationError as exc:
        print(f"policy-push: bad configuration:\n{exc}", file=sys.stderr)
        return 2
    except ConfigurationError as exc:
        print(f"policy-push: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
