"""The policies a ``MatchEngine`` holds: a formats.md policy dict compiled once (criteria
validated, text cut and weighed), and the catalogue ``match_profile`` answers from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Self

from ._criteria import compile_criteria, to_ymd
from ._indexing import ProfileIndex
from ._policyset import PolicySet
from ._ranking import POLICY_FIELDS, joined_fields, split_fields, weighted_terms
from ._records import CompiledPolicy

__all__ = ["PolicyCatalogue"]


class PolicyCatalogue(ProfileIndex):
    """Compiling policies and holding the catalogue of one audience's policies."""

    def compile_policy(self, policy: Mapping[str, Any]) -> CompiledPolicy:
        """Validate a formats.md policy dict and cut its text once (raises CriteriaError)."""
        criteria = compile_criteria(policy.get("criteria"), policy.get("audience", self.audience.value))
        until = policy.get("apply_until")
        texts = self.ranking.policy_texts(policy)
        tokens = self._tok().tokens(joined_fields(texts)) if any(t.strip() for t in texts) else []
        terms = weighted_terms(split_fields(tokens, len(POLICY_FIELDS)), self.ranking.policy_weights())
        keep = {k: policy.get(k) for k in ("id", "audience", "apply_until", "criteria", "title")}
        return CompiledPolicy(
            str(policy["id"]),
            criteria.audience.value,
            criteria,
            None if until is None else to_ymd(until),
            terms,
            keep,
        )

    def set_policies(self, policies: Iterable[Mapping[str, Any] | CompiledPolicy]) -> Self:
        """Replace the policies ``match_profile`` answers from (other audiences are skipped)."""
        compiled = [p if isinstance(p, CompiledPolicy) else self.compile_policy(p) for p in policies]
        with self._lock:
            self.policies_ = PolicySet(self.hierarchies, self.ranking)
            self.policies_.put(p for p in compiled if p.audience == self.audience.value)
        return self

    def put_policy(self, policy: Mapping[str, Any] | CompiledPolicy) -> None:
        """Add or replace one policy of the catalogue."""
        p = policy if isinstance(policy, CompiledPolicy) else self.compile_policy(policy)
        if p.audience == self.audience.value:
            with self._lock:
                self.policies_.put([p])

    def remove_policy(self, policy_id: str) -> bool:
        with self._lock:
            return self.policies_.remove(policy_id)

    def _compiled_for(self, policy: Mapping[str, Any] | CompiledPolicy) -> CompiledPolicy:
        self._check()
        p = policy if isinstance(policy, CompiledPolicy) else self.compile_policy(policy)
        if p.audience != self.audience.value:
            raise ValueError(
                f"policy {p.id} is for {p.audience} profiles, this engine holds {self.audience.value}"
            )
        return p
