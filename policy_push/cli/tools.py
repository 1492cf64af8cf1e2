"""Small utilities: ``policy-push keygen``."""

from __future__ import annotations

import argparse

from policy_push.security import generate_key

from .help import add_command


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(
        sub, "keygen", "print a new random PII key for POLICY_PUSH_PII_KEY",
        "Prints base64 of 32 random bytes. Keep it with the database backups: without it the stored phone "
        "numbers, ID numbers and openids cannot be read. To change the key of existing data use `policy-push keys rotate`.",
        "  policy-push keygen > pii.key && chmod 600 pii.key\n  export POLICY_PUSH_PII_KEY=$(cat pii.key)",
    )
    p.set_defaults(handler=_keygen)


def _keygen(_args: argparse.Namespace) -> int:
    print(generate_key())
    return 0
