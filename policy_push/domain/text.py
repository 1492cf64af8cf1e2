"""What text the service can store: valid Unicode (no lone surrogate) and no NUL, which PostgreSQL's text
and JSONB cannot hold.  One rule for the JSON bodies of the API and the lines of an import."""

from __future__ import annotations

from typing import Any

__all__ = ["first_text_problem", "text_problem"]


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored, or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"text is not valid Unicode (a lone surrogate at character {exc.start}); send UTF-8 text"
    if "\x00" in value:
        return f"text contains a NUL character (U+0000) at character {value.index(chr(0))}; remove it"
    return None


def first_text_problem(doc: Any, root: list[str | int]) -> tuple[list[str | int], str] | None:
    """The first string (or key) of a parsed JSON document that cannot be stored, with its location under
    ``root``; iterative, so a deeply nested document cannot exhaust the stack."""
    stack: list[tuple[Any, list[str | int]]] = [(doc, root)]
    while stack:
        node, loc = stack.pop()
        if isinstance(node, str):
            problem = text_problem(node)
            if problem:
                return loc, problem
        elif isinstance(node, dict):
            for key, value in node.items():
                problem = text_problem(key)
                if problem:
                    return loc, problem
                stack.append((value, [*loc, key]))
        elif isinstance(node, list):
            stack.extend((value, [*loc, i]) for i, value in enumerate(node))
    return None
