"""What changed between two versions of a fetched document, as a unified diff of its lines."""

from __future__ import annotations

import difflib

__all__ = ["text_diff"]


def text_diff(old: str, new: str, *, old_label: str = "before", new_label: str = "after", context: int = 2) -> str:
    """A unified diff, line by line (policy texts are short lines of Chinese prose)."""
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), fromfile=old_label, tofile=new_label, lineterm="", n=context
    )
    return "\n".join(lines)
