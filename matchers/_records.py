"""Result records of the engine (formats.md, "Match record") and the compiled-policy value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._criteria import Criteria
from ._fields import field_label

__all__ = ["CompiledPolicy", "MatchRecord", "PolicyMatches", "ProfileMatches", "Reason"]


@dataclass(frozen=True, slots=True)
class Reason:
    """One line of a match record's reasons, with what it rests on.

    ``state`` is "holds" (a condition the profile meets), "missing" (a condition on a field the
    profile leaves empty or that cannot be decided), "fails" (a condition it does not meet) or
    "text" (a policy without criteria: the words policy and profile share).  ``path`` locates the
    condition in the criteria tree ("criteria.all[1].any[0]"); None for a text reason.  ``paths``
    lists every condition the line stands for when identical conditions were given one line.
    ``sensitive`` marks a line that names a sensitive fact (低保, 特困, 残疾, health): staff may see
    it, but it never goes into a message or a public page.  ``advice`` says what to add for a
    missing field ("请补充从业人员和营业收入").
    """

    text: str
    state: str
    field: str | None = None
    path: str | None = None
    sensitive: bool = False
    advice: str = ""
    #: every condition this line stands for (identical conditions give one line); ``path`` first
    paths: tuple[str, ...] = ()
    #: False for a line that says only that a field is filled in (``exists``): true, but it says
    #: nothing about why the policy fits, so a message quotes it last
    telling: bool = True


#: the fields whose lines say the most about why a policy fits, best first (message_reason)
_TELLING = ("qualifications", "tags", "industry", "size", "hukou_region", "established_years", "employees",
            "annual_revenue_wan", "total_assets_wan", "tax_credit_rating", "established_on")
#: lines about age and gender tell the person about themselves more than about the policy
_PRIVATE = frozenset({"age", "gender"})


@dataclass(frozen=True, slots=True)
class MatchRecord:
    """One (policy, profile) outcome; ``to_dict()`` is the formats.md match record.

    ``reasons`` are the lines' texts (``details`` holds them with their state, condition path,
    sensitivity and advice); ``missing`` the criteria fields left unknown (keys, as formats.md
    says; ``missing_labels`` gives their Chinese names).
    """

    policy_id: str
    profile_id: str
    eligible: bool
    score: float
    reasons: tuple[str, ...]
    missing: tuple[str, ...] = ()
    details: tuple[Reason, ...] = ()

    @property
    def sensitive(self) -> tuple[bool, ...]:
        """Per line of ``reasons``: does it name a sensitive fact."""
        return tuple(d.sensitive for d in self.details) if self.details else tuple(False for _ in self.reasons)

    @property
    def public_reasons(self) -> tuple[str, ...]:
        """The lines that may appear in a message or on a public page."""
        return tuple(r for r, s in zip(self.reasons, self.sensitive, strict=True) if not s)

    @property
    def advice(self) -> tuple[str, ...]:
        """What to add so that a may-qualify profile can be decided, one line per missing field."""
        return tuple(dict.fromkeys(d.advice for d in self.details if d.advice))

    @property
    def missing_labels(self) -> tuple[str, ...]:
        """The Chinese names of ``missing`` ("企业规模"), for staff views."""
        return tuple(field_label(f) for f in self.missing)

    def message_reason(self) -> str | None:
        """The one line a message to this person may quote, or None when no line may be quoted.

        Only a line that holds: never a may-qualify line; never a sensitive one.  A policy
        without criteria offers its text line.  Preference goes to the most telling field
        (qualification, tag, industry, size) over region lines, which hold for everyone local, and
        over age and gender lines.
        """
        usable = [d for d in self.details if d.state in ("holds", "text") and not d.sensitive]
        if not usable:
            return None
        rank = {f: i for i, f in enumerate(_TELLING)}

        def key(d: Reason) -> tuple[int, int]:
            if d.state == "text":
                return (0, 0)
            if d.field in _PRIVATE:
                return (4, 0)
            if not d.telling:
                return (3, 0)
            return (1, rank[d.field]) if d.field in rank else (2, 0)

        best = min(usable, key=key)
        return None if best.field in _PRIVATE else best.text

    def to_dict(self, details: bool = False) -> dict[str, Any]:
        """The formats.md record; ``details=True`` adds ``sensitive`` (one flag per reason) and
        ``advice``."""
        out: dict[str, Any] = {"policy_id": self.policy_id, "profile_id": self.profile_id, "eligible": self.eligible,
                               "score": round(float(self.score), 4), "reasons": list(self.reasons),
                               "missing": list(self.missing)}
        if details:
            out["sensitive"] = list(self.sensitive)
            out["advice"] = list(self.advice)
        return out


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
    """A policy ready to match: validated criteria and its text's terms (cut once).

    ``apply_until`` is ``yyyymmdd`` or None (no deadline).  ``terms`` maps each term of the title,
    summary, text and categories to its field-weighted count; the query vector is derived from
    them against the current vocabulary and the catalogue's term statistics.
    """

    id: str
    audience: str
    criteria: Criteria
    apply_until: int | None
    terms: Mapping[str, float] = field(default_factory=dict, compare=False)
    source: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def tokens(self) -> tuple[str, ...]:
        """The distinct terms (kept for callers of the first version)."""
        return tuple(self.terms)

    def term_counts(self, vocabulary: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(known term ids, weighted counts, unknown terms) against ``vocabulary``."""
        ids: list[int] = []
        cnt: list[float] = []
        oov: list[str] = []
        for t, c in self.terms.items():
            i = vocabulary.get(t)
            if i is None:
                oov.append(t)
            else:
                ids.append(i)
                cnt.append(c)
        return np.asarray(ids, np.int32), np.asarray(cnt, np.float32), oov
