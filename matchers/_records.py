"""Result records of the engine (formats.md, "Match record") and the compiled-policy value."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._criteria import Criteria

__all__ = ["CompiledPolicy", "MatchRecord", "PolicyMatches", "ProfileMatches"]


@dataclass(frozen=True, slots=True)
class MatchRecord:
    """One (policy, profile) outcome; ``to_dict()`` is the formats.md match record."""

    policy_id: str
    profile_id: str
    eligible: bool
    score: float
    reasons: tuple[str, ...]
    missing: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"policy_id": self.policy_id, "profile_id": self.profile_id, "eligible": self.eligible,
                "score": round(float(self.score), 4), "reasons": list(self.reasons), "missing": list(self.missing)}


@dataclass(frozen=True, slots=True)
class PolicyMatches:
    """Policy -> profiles.  ``eligible`` and ``unknown`` ("may qualify, missing data") are ranked by
    score, best first, and cut by ``top_k``/``min_score``; the counts are before the cut.
    ``has_criteria`` False means every profile of the audience is eligible (say so in a preview)."""

    policy_id: str
    eligible: list[MatchRecord]
    unknown: list[MatchRecord]
    n_eligible: int
    n_unknown: int
    n_ineligible: int
    has_criteria: bool


@dataclass(frozen=True, slots=True)
class ProfileMatches:
    """Profile -> policies open on the day: ``eligible`` ranked by score, ``unknown`` likewise."""

    profile_id: str | None
    eligible: list[MatchRecord]
    unknown: list[MatchRecord]


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """A policy ready to match: validated criteria and its text's tokens (cut once).

    ``apply_until`` is ``yyyymmdd`` or None (no deadline).  ``tokens`` are the tokens of title,
    summary and text; the TF-IDF vector is derived from them against the current vocabulary.
    """

    id: str
    audience: str
    criteria: Criteria
    apply_until: int | None
    tokens: tuple[str, ...]
    source: dict[str, Any] = field(default_factory=dict, compare=False)

    def term_counts(self, vocabulary: dict[str, int]) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(known term ids, counts, unknown terms) against ``vocabulary``."""
        ids: list[int] = []
        oov: list[str] = []
        for t in self.tokens:
            i = vocabulary.get(t)
            if i is None:
                oov.append(t)
            else:
                ids.append(i)
        if not ids:
            return np.zeros(0, np.int32), np.zeros(0, np.float32), oov
        u, c = np.unique(np.asarray(ids, np.int32), return_counts=True)
        return u, c.astype(np.float32), oov
