"""The one rule for a duration or rate the caller must give as a positive number."""

from __future__ import annotations

__all__ = ["positive"]


def positive(value: float, what: str) -> float:
    """``value`` as a float; ``ValueError`` naming ``what`` when it is not > 0 (NaN included)."""
    if not value > 0:
        raise ValueError(f"{what} must be > 0, got {value!r}")
    return float(value)
