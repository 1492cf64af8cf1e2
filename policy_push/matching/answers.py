"""Answers of the match index kept per profile until something they depend on changes.

"Policies for me now" is asked far more often than a profile or a policy changes: the same person
opens the app again, or reloads the page. One answer depends on the profile's own record and
feedback marks, on the open policies, on the day asked (in the key) and on the text index's idf
(``MatchEngine.generation``). ``MatchService`` tells this cache what changed: a profile (its record
written or deleted, a mark given; also when applied from the change feed, written by another
process) forgets that profile's answers; a policy written or deleted, or a start, forgets all.

An answer computed while a change was being applied is not kept (the service's mutation counter
moved meanwhile): it may mix the old and the new state.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

__all__ = ["AnswerCache"]

#: (audience, profile id)
ProfileKey = tuple[str, str]


class AnswerCache:
    """At most ``size`` answers, least recently used out first."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._items: OrderedDict[tuple[ProfileKey, Hashable], tuple[int, Any]] = OrderedDict()
        self._by_profile: dict[ProfileKey, set[Hashable]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, profile: ProfileKey, key: Hashable, generation: int) -> Any | None:
        """The answer kept for ``profile`` under ``key`` at this text-index generation; None when none is."""
        found = self._items.get((profile, key))
        if found is None or found[0] != generation:
            self.misses += 1
            return None
        self._items.move_to_end((profile, key))
        self.hits += 1
        return found[1]

    def put(self, profile: ProfileKey, key: Hashable, generation: int, answer: Any) -> None:
        self._items[(profile, key)] = (generation, answer)
        self._items.move_to_end((profile, key))
        self._by_profile.setdefault(profile, set()).add(key)
        while len(self._items) > self.size:
            (old_profile, old_key), _ = self._items.popitem(last=False)
            keys = self._by_profile.get(old_profile)
            if keys is not None:
                keys.discard(old_key)
                if not keys:
                    del self._by_profile[old_profile]

    def forget_profile(self, profile: ProfileKey) -> None:
        for key in self._by_profile.pop(profile, ()):
            self._items.pop((profile, key), None)

    def forget_all(self) -> None:
        self._items.clear()
        self._by_profile.clear()

    def stats(self) -> dict[str, int]:
        return {"answers": len(self._items), "hits": self.hits, "misses": self.misses}
