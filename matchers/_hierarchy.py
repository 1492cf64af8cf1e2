"""Code hierarchies (regions, industries) for ``within`` and for names in reasons.

The application builds one ``Hierarchy`` per reference table and hands it to the engine::

    regions = Hierarchy.from_pairs((r.code, r.parent_code, r.name) for r in region_rows)

A code lies ``within`` another when it is the same code or a descendant.  A code that is not
in the table (a withdrawn region code, a typo that slipped past validation) never raises: it
is treated as itself only, with no ancestors, and its "name" is the code itself.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Hierarchy"]

# Reference tables are at most a few levels deep; a longer chain means a cycle in the data.
_MAX_DEPTH = 64


class Hierarchy:
    """A forest of codes, each with an optional parent and a display name.

    Parameters
    ----------
    parents : dict[str, str | None]
        code -> parent code (None or "" for a root).
    names : dict[str, str]
        code -> display name used in reasons ("兴隆台区").
    """

    def __init__(self, parents: dict[str, str | None], names: dict[str, str]) -> None:
        self.parents = {c: (p or None) for c, p in parents.items()}
        self.names = dict(names)
        self._chains: dict[str, tuple[str, ...]] = {}

    @classmethod
    def from_pairs(cls, rows: Iterable[tuple[str, str | None, str]]) -> Hierarchy:
        """Build from ``(code, parent_code, name)`` triples, e.g. the rows of regions.csv."""
        parents: dict[str, str | None] = {}
        names: dict[str, str] = {}
        for code, parent, name in rows:
            code = str(code).strip()
            parents[code] = str(parent).strip() if parent else None
            names[code] = str(name)
        return cls(parents, names)

    def __len__(self) -> int:
        return len(self.parents)

    def __contains__(self, code: object) -> bool:
        return code in self.parents

    def chain(self, code: str) -> tuple[str, ...]:
        """The code followed by its ancestors, nearest first; ``(code,)`` when unknown."""
        cached = self._chains.get(code)
        if cached is not None:
            return cached
        out = [code]
        parent = self.parents.get(code)
        while parent is not None and len(out) < _MAX_DEPTH and parent not in out:
            out.append(parent)
            parent = self.parents.get(parent)
        chain = tuple(out)
        self._chains[code] = chain
        return chain

    def is_within(self, code: str, ancestors: Iterable[str]) -> bool:
        """True when ``code`` is one of ``ancestors`` or a descendant of one of them."""
        wanted = set(ancestors)
        return any(c in wanted for c in self.chain(code))

    def name(self, code: str) -> str:
        """Display name of ``code``; the code itself when it is not in the table."""
        return self.names.get(code, code)
