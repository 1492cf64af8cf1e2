"""Reading suggested criteria trees in the intake tests."""

from __future__ import annotations

from typing import Any


def criteria_leaves(tree: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The conditions of a criteria tree, through its ``all`` and ``any`` nodes (a ``not`` is one leaf)."""
    if not tree:
        return []
    for logic in ("all", "any"):
        if logic in tree:
            return [leaf for child in tree[logic] for leaf in criteria_leaves(child)]
    return [tree]
