"""Scores of a policy over the profile index: its query vector, scored through the postings of
its terms or through the chosen rows' own terms (whichever reads less), with each profile's
feedback applied (``_feedback.adjust``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np

from ._errors import UnknownProfileError
from ._feedback import adjust
from ._policies import PolicyCatalogue
from ._records import CompiledPolicy

__all__ = ["Query", "Scoring"]


class Query(NamedTuple):
    """A policy's query: in the index's term space (``ids``, ``weights``, frequent terms left out)
    and over all its heaviest terms (``terms``, ``term_weights``, for feedback)."""

    ids: np.ndarray
    weights: np.ndarray
    terms: list[str]
    term_weights: np.ndarray


class Scoring(PolicyCatalogue):
    """A policy's query and its scores over stored profiles."""

    def _query(self, p: CompiledPolicy) -> Query:
        terms, w = self.policies_.query_terms(p)
        ids, ws = self.policies_.query_vector(p, self.text_, (terms, w))
        return Query(ids, ws, terms, w)

    def _feedback_rows(self, q: Query) -> tuple[np.ndarray, np.ndarray]:
        """(rows ascending, evidence) of the stored profiles whose feedback bears on the query."""
        pids, evidence = self.feedback_.evidence_for_query(q.terms, q.term_weights)
        if not pids:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        rows = np.fromiter((self.rows_.get(pid, -1) for pid in pids), np.int64, len(pids))
        ok = rows >= 0
        order = np.argsort(rows[ok])
        return rows[ok][order], evidence[ok][order]

    def _rows_cheaper(self, q: Query, n_rows: int) -> bool:
        """Is scoring ``n_rows`` chosen rows row by row cheaper than reading the query's postings?"""
        # a row-major entry (fancy row selection, then the product) costs about twice a posting
        return 2 * n_rows * self.text_._avg() < self.text_.postings_cost(q.ids)

    def _dense_scores(self, q: Query) -> np.ndarray:
        """Every row's score (``float32[n_rows]``, dead rows included), feedback applied."""
        scores = self.text_.score_all(q.ids, q.weights)
        fb_rows, fb_ev = self._feedback_rows(q)
        if len(fb_rows):
            scores[fb_rows] = adjust(scores[fb_rows], fb_ev)
        return scores

    def _score(self, q: Query, parts: list[np.ndarray]) -> list[np.ndarray]:
        """Scores of each array of rows (each sorted ascending), feedback applied: through the
        postings of the query's terms, or through the rows' own terms when those are fewer."""
        text = self.text_
        rows = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if self._rows_cheaper(q, len(rows)):
            scores = text.score_rows(q.ids, q.weights, rows)
        else:
            scores = text.score_all(q.ids, q.weights)[rows]
        fb_rows, fb_ev = self._feedback_rows(q)
        out, at = [], 0
        for part in parts:
            mine = scores[at : at + len(part)]
            at += len(part)
            if len(fb_rows):
                pos = np.searchsorted(part, fb_rows)
                hit = pos < len(part)
                hit[hit] &= part[pos[hit]] == fb_rows[hit]
                if hit.any():
                    mine = mine.copy()
                    mine[pos[hit]] = adjust(mine[pos[hit]], fb_ev[hit])
            out.append(mine)
        return out

    def score_profiles(
        self, policy: Mapping[str, Any] | CompiledPolicy, profile_ids: Iterable[str]
    ) -> np.ndarray:
        """The ranking score of ``policy`` for each of ``profile_ids`` (stored profiles), whatever
        their eligibility, feedback included: ``float32`` in the order given.  Raises
        ``UnknownProfileError``."""
        self._check()
        p = policy if isinstance(policy, CompiledPolicy) else self.compile_policy(policy)
        with self._lock:
            rows = []
            for pid in profile_ids:
                row = self.rows_.get(pid)
                if row is None:
                    raise UnknownProfileError(pid)
                rows.append(row)
            rows_a = np.asarray(rows, np.int64)
            uniq, back = np.unique(rows_a, return_inverse=True)
            (scores,) = self._score(self._query(p), [uniq])
            return scores[back].astype(np.float32)
