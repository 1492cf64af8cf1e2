"""Small utilities: ``policy-push keygen`` and ``policy-push sample``."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from policy_push.security import generate_key

from .failures import CommandFailed, Exit
from .help import add_documented

#: what ``policy-push sample`` writes (the files of policy_push/sample/ other than its README)
SAMPLE_FILES = ("policies.jsonl", "enterprises.jsonl", "residents.jsonl", "simulators.toml")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_documented(sub, "keygen", "print a new random PII key for POLICY_PUSH_PII_KEY", _keygen.__doc__)
    p.set_defaults(handler=_keygen)
    register_sample(sub)


def _keygen(_args: argparse.Namespace) -> int:
    """``policy-push keygen``

    Prints base64 of 32 random bytes. Keep it with the database backups: without it the stored phone
    numbers, ID numbers and openids cannot be read. To change the key of existing data use `policy-push keys rotate`.

    Example::

      policy-push keygen > pii.key && chmod 600 pii.key
      export POLICY_PUSH_PII_KEY=$(cat pii.key)
    """
    print(generate_key())
    return 0


def register_sample(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_documented(sub, "sample", "write the bundled Panjin sample files into a directory", _sample.__doc__)
    p.add_argument("--out", type=Path, default=Path("."), help="directory to write into (default: the current one)")
    p.add_argument("--force", action="store_true", help="overwrite files that exist")
    p.set_defaults(handler=_sample)


def _sample(args: argparse.Namespace) -> int:
    """``policy-push sample``

    Writes policies.jsonl (24), enterprises.jsonl (400) and residents.jsonl (600), synthetic records in the
    import format, and simulators.toml (a scripted simulator set-up). Existing files are kept unless --force.

    Example::

      policy-push sample --out .
      policy-push import policies policies.jsonl
    """
    args.out.mkdir(parents=True, exist_ok=True)
    names = list(SAMPLE_FILES)
    taken = [n for n in names if (args.out / n).exists()]
    if taken and not args.force:
        raise CommandFailed(Exit.FILES, f"{', '.join(taken)} exist(s) in {str(args.out)!r}; add --force to overwrite")
    for name in names:
        data = (resources.files("policy_push") / "sample" / name).read_bytes()
        (args.out / name).write_bytes(data)
        print(f"wrote {args.out / name}")
    return 0
