"""What the offline commands (``match``, ``suggest``) read from their command lines the same way: the
sub-command with its module docstring as the description, and a number from 0 to 1."""

from __future__ import annotations

import argparse

__all__ = ["command", "fraction"]


def command(sub: argparse._SubParsersAction, name: str, summary: str, doc: str | None) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """The parser of sub-command ``name``: ``summary`` in the command list, ``doc`` as written under ``--help``."""
    return sub.add_parser(name, help=summary, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def fraction(raw: str) -> float:
    """A score or confidence: a number from 0 to 1."""
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {raw!r}")
    return value
