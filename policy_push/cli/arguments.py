"""What the offline commands (``match``, ``suggest``) read from their command lines the same way: a
number from 0 to 1."""

from __future__ import annotations

import argparse

__all__ = ["fraction"]


def fraction(raw: str) -> float:
    """A score or confidence: a number from 0 to 1."""
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {raw!r}")
    return value
