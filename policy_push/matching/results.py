"""The answer of a policy -> profiles match, in the shape campaigns and the preview API use."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from matchers import MatchRecord, PolicyMatches

__all__ = ["HISTOGRAM_BINS", "PolicyMatchResult", "score_histogram"]

#: ten buckets of width 0.1 over the score range 0..1
HISTOGRAM_BINS = 10


def score_histogram(scores: Iterable[float], bins: int = HISTOGRAM_BINS) -> list[dict[str, Any]]:
    """``[{"from": 0.0, "to": 0.1, "count": n}, ...]``; the last bucket includes 1.0."""
    counts = [0] * bins
    for s in scores:
        counts[min(max(int(s * bins), 0), bins - 1)] += 1
    return [{"from": round(i / bins, 4), "to": round((i + 1) / bins, 4), "count": c} for i, c in enumerate(counts)]


@dataclass(slots=True)
class PolicyMatchResult:
    """Who qualifies for one policy.

    ``eligible`` (best score first) and ``unknown`` ("may qualify, missing data") hold formats.md
    match records, cut by ``top_k``/``min_score``; ``counts`` are before any cut:
    ``{"eligible", "unknown", "profiles"}`` (profiles = every profile of the audience).
    ``histogram`` buckets the scores of every eligible profile.  ``no_criteria`` True means the
    policy has no criteria and so matches every profile of its audience: a preview must say so.
    ``eligible_total`` counts the eligible at or above ``min_score`` (``counts["eligible"]`` when
    none is given).
    """

    policy_id: str
    eligible: list[dict[str, Any]]
    unknown: list[dict[str, Any]]
    counts: dict[str, int]
    histogram: list[dict[str, Any]]
    no_criteria: bool
    #: eligible profiles at or above ``min_score`` (before ``top_k``): the length of a paged list
    eligible_total: int = 0
    #: profile id -> (the one line a message may quote, the lines a public page may show): never a
    #: sensitive fact (低保, 特困, 残疾, health), never a may-qualify line in a message (matchers)
    message_lines: dict[str, tuple[str | None, list[str]]] = field(default_factory=dict)

    @classmethod
    def from_matches(cls, full: PolicyMatches, *, top_k: int | None = None, min_score: float | None = None) -> PolicyMatchResult:
        """Cut an uncut engine answer (``top_k=None``) to the caller's ``top_k``/``min_score``."""
        eligible: list[MatchRecord] = full.eligible
        if min_score:
            # against the score as shown (4 places): a threshold copied from a record keeps it
            eligible = [r for r in eligible if round(r.score, 4) >= min_score]
        unknown: list[MatchRecord] = full.unknown
        eligible_total = len(eligible)
        if top_k is not None:
            eligible, unknown = eligible[:top_k], unknown[:top_k]
        return cls(
            policy_id=full.policy_id,
            eligible=[r.to_dict() for r in eligible],
            unknown=[r.to_dict() for r in unknown],
            counts={
                "eligible": full.n_eligible,
                "unknown": full.n_unknown,
                "profiles": full.n_eligible + full.n_unknown + full.n_ineligible,
            },
            histogram=score_histogram(r.score for r in full.eligible),
            no_criteria=not full.has_criteria,
            eligible_total=eligible_total,
            message_lines={
                **{r.profile_id: (None, list(r.public_reasons)) for r in unknown},
                **{r.profile_id: (r.message_reason(), list(r.public_reasons)) for r in eligible},
            },
        )
