"""Small utilities: ``policy-push keygen``."""

from __future__ import annotations

import argparse

from policy_push.security import generate_key


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("keygen", help="print a new random PII key for POLICY_PUSH_PII_KEY")
    p.set_defaults(handler=_keygen)


def _keygen(_args: argparse.Namespace) -> int:
    print(generate_key())
    return 0
