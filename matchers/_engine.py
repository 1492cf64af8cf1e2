"""``MatchEngine``: one audience's profiles, criteria and TF-IDF, matched in both directions.

The application builds one engine per audience at start-up and calls it from an executor
(it is plain synchronous code; every public method takes an internal lock)::

    engine = MatchEngine("enterprise", regions, industries, tokenizer, n_jobs=2).fit(records)
    engine.set_policies(policy_dicts)                      # the open and recent policies
    found = engine.match_policy(policy_dict, on=today, top_k=100)   # -> PolicyMatches
    mine = engine.match_profile("91211100MA0XXXXXXX", on=today)     # -> ProfileMatches
    engine.upsert(record); engine.remove(profile_id)       # incremental, no rebuild
    engine.record_feedback(profile_id, policy_id, "irrelevant")     # 有用 / 已申报 / 不相关
    engine.save(path); engine = MatchEngine.load(path, regions, industries, tokenizer)

Profile records are plain dicts with the keys listed in ``normalise_profile`` (the app's
``policy_push.domain.matcher_record``); policies are formats.md dicts.  Updates append a new row
and mask the old one; ``compact()`` (or ``merge_in_background()``) drops masked rows and
refreshes idf; it runs by itself when masked plus unmerged rows exceed ``merge_fraction``.

Ranking (``Ranking``, docs/ranking.md): field-weighted BM25-saturated profile vectors against
policy vectors weighed by idf among policies and in a general corpus; both unit length, so a
score is a cosine in 0..1, moved within bounds by the profile's feedback (``_feedback``).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

from ._errors import UnknownProfileError
from ._feedback import FEEDBACK_KINDS, FeedbackEvent, FeedbackStore
from ._fields import Audience
from ._hierarchy import Hierarchy
from ._policy_matching import PolicyMatching
from ._policyset import PolicySet
from ._profile_matching import ProfileMatching
from ._ranking import Ranking
from ._records import CompiledPolicy
from ._store import load_state, read_meta, save_state, saved_ranking
from ._text import Tokenizer

__all__ = ["MatchEngine"]


class MatchEngine(PolicyMatching, ProfileMatching):
    """Profiles of one audience, indexed for criteria and text matching.

    Parameters
    ----------
    audience : "enterprise" or "resident"
    regions, industries : Hierarchy
        Reference hierarchies for ``within`` and for names in reasons.
    tokenizer : Tokenizer, optional
        Shared jieba tokenizer (built once by the app); a new one is made when omitted.
    n_jobs : int
        Processes used to tokenise in ``fit`` (jieba is pure Python; 2 on a 2-core box).
    merge_fraction, merge_min_rows : float, int
        Compact in the background once masked plus not-yet-merged rows exceed this share of
        all rows and this count.
    ranking : Ranking, optional
        How text is weighed (fields, BM25 parameters, policy-side idf); the measured defaults
        when omitted.  Saved with the index.

    Attributes (learned): ``table_`` (ProfileTable), ``text_`` (TextIndex), ``row_ids_``
    (profile id per row), ``rows_`` (profile id -> live row), ``feedback_`` (FeedbackStore).

    The class is assembled from one part per concern, each in its own module: the profile index
    (``_indexing``), the policies held (``_policies``), scoring (``_scoring``), policy -> profiles
    (``_policy_matching``) and profile -> policies (``_profile_matching``); feedback and
    persistence are here.
    """

    def __init__(
        self,
        audience: str,
        regions: Hierarchy,
        industries: Hierarchy,
        tokenizer: Tokenizer | None = None,
        *,
        n_jobs: int = 1,
        merge_fraction: float = 0.2,
        merge_min_rows: int = 1000,
        ranking: Ranking | None = None,
    ) -> None:
        self.audience = Audience(audience)
        self.ranking = ranking or Ranking()
        self.regions = regions
        self.industries = industries
        self.tokenizer = tokenizer
        self.n_jobs = n_jobs
        self.merge_fraction = merge_fraction
        self.merge_min_rows = merge_min_rows
        self._lock = threading.RLock()
        self._merged = threading.Condition(self._lock)
        self._generation = 0
        self._journal: set[str] | None = None
        self.policies_ = PolicySet(self.hierarchies, self.ranking)
        self.feedback_ = FeedbackStore()

    # -- feedback -----------------------------------------------------------------------------

    def record_feedback(
        self,
        profile_id: str,
        policy: str | Mapping[str, Any] | CompiledPolicy,
        kind: str,
        *,
        at: dt.date | None = None,
    ) -> None:
        """Remember a person's mark on a policy: ``kind`` is "useful" (有用), "applied" (已申报) or
        "irrelevant" (不相关).  A later mark on the same policy replaces the earlier one.  The
        policy is one the engine holds (by id), or is given whole.  Raises ``UnknownProfileError``
        for a profile not stored, ``KeyError`` for a policy id not held, ``ValueError`` for a kind."""
        self._check()
        if kind not in FEEDBACK_KINDS:
            raise ValueError(f"feedback kind {kind!r} is not one of {', '.join(FEEDBACK_KINDS)}")
        with self._lock:
            if profile_id not in self.rows_:
                raise UnknownProfileError(profile_id)
            if isinstance(policy, str):
                p = self.policies_.policies.get(policy)
                if p is None:
                    raise KeyError(f"policy {policy!r} is not held by the {self.audience.value} engine")
            else:
                p = policy if isinstance(policy, CompiledPolicy) else self.compile_policy(policy)
            terms, weights = self.policies_.query_terms(p)
            self.feedback_.record(profile_id, p.id, kind, terms, weights.tolist(), at)

    def forget_feedback(self, profile_id: str, policy_id: str | None = None) -> int:
        """Drop a person's marks (all, or the one on ``policy_id``); returns how many were dropped."""
        with self._lock:
            return self.feedback_.forget(profile_id, policy_id)

    def feedback(self, profile_id: str | None = None) -> list[FeedbackEvent]:
        """The marks held (of one profile, or all)."""
        with self._lock:
            return self.feedback_.of(profile_id) if profile_id is not None else list(self.feedback_)

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index (profiles, tokens, TF-IDF, policies) to directory ``path``."""
        self._check()
        save_state(self, path)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        regions: Hierarchy,
        industries: Hierarchy,
        tokenizer: Tokenizer | None = None,
        **params: Any,
    ) -> MatchEngine:
        """An engine restored from ``save`` output; no text is re-cut."""
        meta = read_meta(path)
        saved = saved_ranking(meta)
        given = params.setdefault("ranking", saved)
        if (given.profile_fields, given.clean_scope) != (saved.profile_fields, saved.clean_scope):
            raise ValueError(
                f"{path}: indexed with other profile field weights; rebuild it from the profiles"
            )
        engine = cls(meta["audience"], regions, industries, tokenizer, **params)
        load_state(engine, path, meta)
        return engine

    def nbytes(self) -> dict[str, int]:
        """Approximate bytes held: ``arrays`` (columns, tokens, TF-IDF), ``ids`` (Python id
        strings and the id -> row dict), ``vocab`` (terms and code/tag vocabularies)."""
        self._check()
        with self._lock:
            table_arrays, vocabs = self.table_.state()
            arrays = (
                sum(a.nbytes for a in table_arrays.values()) + self.text_.nbytes() + self.hashes_.a.nbytes
            )
            ids = (
                sys.getsizeof(self.row_ids_)
                + sys.getsizeof(self.rows_)
                + sum(sys.getsizeof(s) for s in self.row_ids_)
            )
            vocab = sum(sys.getsizeof(t) for t in self.text_.terms_) + sys.getsizeof(self.text_.vocabulary_)
            vocab += sum(sys.getsizeof(t) for v in vocabs.values() for t in v)
        return {"arrays": int(arrays), "ids": int(ids), "vocab": int(vocab)}
