"""Policy -> profiles: the profiles eligible for a policy (and those that may qualify), ranked
by score, cut to the best ``k`` (``_topk``) and explained with reasons; or all of them,
explained a batch at a time as they are read (``stream_policy``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._criteria import to_ymd
from ._reasons import SIZE_FIGURES, Explainer, text_reason
from ._records import CompiledPolicy, MatchRecord, PolicyMatches, Reason
from ._scoring import Scoring
from ._topk import best_of, top_rows

__all__ = ["PolicyMatching", "PolicyStream"]

#: explained (conditions' values, fields' values) a streamed policy remembers: rows of one policy
#: repeat them across batches; bounded, as a million rows can hold that many distinct ones
_STREAM_EXPLAINED = 50_000


@dataclass(frozen=True, slots=True)
class PolicyStream:
    """Counts of a policy's match (before any cut) and its records, read once, in order."""

    policy_id: str
    n_eligible: int
    n_unknown: int
    n_ineligible: int
    has_criteria: bool
    records: Callable[[], Iterator[MatchRecord]]


class PolicyMatching(Scoring):
    """``match_policy`` and ``stream_policy``."""

    @staticmethod
    def _fields(fields: Iterable[str]) -> set[str]:
        names = set(fields)
        if "size" in names:  # advice on a missing size names the figures it is derived from
            names |= SIZE_FIGURES.keys()
        return names

    def match_policy(
        self,
        policy: Mapping[str, Any] | CompiledPolicy,
        *,
        on: dt.date,
        top_k: int | None = 100,
        min_score: float = 0.0,
        unknown_k: int | None = None,
    ) -> PolicyMatches:
        """Profiles eligible for ``policy`` on day ``on``, ranked by score, with reasons.

        ``top_k`` (None = all) and ``min_score`` cut the eligible list; ``unknown_k`` (default
        ``top_k``) cuts the "may qualify, missing data" list.  Counts are before any cut.
        """
        p = self._compiled_for(policy)
        on_ymd = to_ymd(on)
        k_unk = top_k if unknown_k is None else unknown_k
        with self._lock:
            ev = self.table_.evaluate(p.criteria, on_ymd)
            q = self._query(p)
            query = (q.ids, q.weights)
            elig_mask, unk_mask = ev.true, ev.unknown
            n_elig, n_unk = int(np.count_nonzero(elig_mask)), int(np.count_nonzero(unk_mask))
            if self._rows_cheaper(q, n_elig + n_unk):
                # a narrow filter: score only the rows it lets through, read row by row
                elig, unk = np.flatnonzero(elig_mask), np.flatnonzero(unk_mask)
                s_elig, s_unk = self._score(q, [elig, unk])
                keep = s_elig >= min_score if min_score > 0 else slice(None)
                picked = [
                    best_of(elig[keep], s_elig[keep], len(s_elig) if top_k is None else top_k),
                    best_of(unk, s_unk, n_unk if k_unk is None else k_unk),
                ]
            else:
                # a wide one: every row's score through the postings, then only the best rows
                # are listed (``top_rows``), never the hundreds of thousands that pass
                scores = self._dense_scores(q)
                if min_score > 0:
                    elig_mask = elig_mask & (scores >= min_score)
                picked = [_pick(elig_mask, scores, top_k), _pick(unk_mask, scores, k_unk)]
            (re, se), (ru, su) = picked
            # one explainer for both lists: a line (a region, a size) read in one is ready for the other
            explainer = Explainer(p.criteria, self.hierarchies)
            out_e = self._ranked(p, re, se, None, ev, on_ymd, query, presorted=True, explainer=explainer)
            out_u = self._ranked(p, ru, su, None, ev, on_ymd, query, presorted=True, explainer=explainer)
            n_live = len(self.rows_)
        return PolicyMatches(
            p.id, out_e, out_u, n_elig, n_unk, n_live - n_elig - n_unk, p.criteria.root is not None
        )

    def _scored(
        self, p: CompiledPolicy, on_ymd: int
    ) -> tuple[Any, np.ndarray, np.ndarray, Any, np.ndarray, np.ndarray]:
        """Under ``_lock``: the criteria's evaluation, eligible and unknown rows, the query and both rows' scores."""
        ev = self.table_.evaluate(p.criteria, on_ymd)
        elig = np.flatnonzero(ev.true)
        unk = np.flatnonzero(ev.unknown)
        q = self._query(p)
        s_elig, s_unk = self._score(q, [elig, unk])
        return ev, elig, unk, q, s_elig, s_unk

    def stream_policy(
        self,
        policy: Mapping[str, Any] | CompiledPolicy,
        *,
        on: dt.date,
        min_score: float = 0.0,
        batch: int = 10_000,
    ) -> PolicyStream:
        """Every profile eligible for ``policy`` (best first), then every one that may qualify,
        as ``match_policy(top_k=None)`` orders them, but explained ``batch`` rows at a time as
        the caller reads ``records()``: a policy matching a million profiles never holds a
        million records.  The engine must not be compacted while the records are read
        (``RuntimeError``); upserts and removals meanwhile are not seen."""
        p = self._compiled_for(policy)
        on_ymd = to_ymd(on)
        with self._lock:
            ev, elig, unk, q, s_elig, s_unk = self._scored(p, on_ymd)
            n_live, generation = len(self.rows_), self._generation
        n_elig, n_unk = len(elig), len(unk)
        if min_score > 0:
            keep = s_elig >= min_score
            elig, s_elig = elig[keep], s_elig[keep]
        parts = []
        for rows, scores in ((elig, s_elig), (unk, s_unk)):
            order = np.lexsort((rows, -scores))  # best score first, then oldest row: stable output
            parts.append((rows[order], scores[order]))

        # one explainer for the whole stream: rows of every batch share its remembered lines
        explainer = Explainer(p.criteria, self.hierarchies, cache_max=_STREAM_EXPLAINED)

        def records() -> Iterator[MatchRecord]:
            for rows, scores in parts:
                for at in range(0, len(rows), batch):
                    with self._lock:
                        if self._generation != generation:
                            raise RuntimeError("the index was compacted while a policy's records were read")
                        got = self._ranked(
                            p,
                            rows[at : at + batch],
                            scores[at : at + batch],
                            None,
                            ev,
                            on_ymd,
                            (q.ids, q.weights),
                            presorted=True,
                            explainer=explainer,
                        )
                    yield from got

        return PolicyStream(
            p.id, n_elig, n_unk, n_live - n_elig - n_unk, p.criteria.root is not None, records
        )

    def _shared_terms_rows(self, query: tuple[np.ndarray, np.ndarray], rows: np.ndarray) -> list[list[str]]:
        """``_shared_terms(query, row_vector(r))`` for each of ``rows``, computed for all at once
        (a list of a hundred thousand rows would otherwise cost an intersection each)."""
        ti = self.text_
        ip = ti.indptr.a
        starts = ip[rows]
        lens = ip[rows + 1] - starts
        n = int(lens.sum())
        which = np.repeat(np.arange(len(rows)), lens)
        pos = np.arange(n) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(starts, lens)
        terms, weights = ti.term_ids.a[pos], ti.weights.a[pos]
        q_ids, q_w = query
        size = max(len(ti.terms_), int(q_ids.max()) + 1 if len(q_ids) else 0)
        dense = np.zeros(size, q_w.dtype)
        dense[q_ids] = q_w
        share = dense[terms] * weights
        keep = share > 0
        which, terms, share = which[keep], terms[keep], share[keep]
        order = np.lexsort((terms, -share, which))  # a row's terms by share, ties by term id
        counts = np.bincount(which, minlength=len(rows)).tolist()
        names = ti.terms_
        flat = [names[t] for t in terms[order].tolist()]
        out, at = [], 0
        for c in counts:
            out.append(flat[at : at + c])
            at += c
        return out

    def _ranked(
        self,
        p: CompiledPolicy,
        rows: np.ndarray,
        scores: np.ndarray,
        k: int | None,
        ev: Any,
        on_ymd: int,
        query: tuple[np.ndarray, np.ndarray],
        presorted: bool = False,
        explainer: Explainer | None = None,
    ) -> list[MatchRecord]:
        if k is not None and len(rows) > k:
            part = np.argpartition(-scores, k - 1)[:k]
            rows, scores = rows[part], scores[part]
        if not presorted:
            order = np.lexsort((rows, -scores))  # best score first, then oldest row: stable output
            rows, scores = rows[order], scores[order]
        if explainer is None:
            explainer = Explainer(p.criteria, self.hierarchies)
        eligible = ev.true[rows].tolist()
        ids = [self.row_ids_[r] for r in rows.tolist()]
        scores_l = scores.tolist()
        if p.criteria.root is None:
            out = []
            for j, shared in enumerate(self._shared_terms_rows(query, rows)):
                line = text_reason(shared, self.audience.value)
                details: tuple[Reason, ...] = (line,) if line else ()
                out.append(MatchRecord(p.id, ids[j], eligible[j], scores_l[j], tuple(d.text for d in details), (), details))
            return out
        # explained a pattern of condition values at a time (``Explainer.rows``), not row by row
        columns = self.table_.values_of(self._fields(p.criteria.fields), rows, on_ymd)
        done = explainer.rows(columns, ev.leaf_values(rows))
        return [
            MatchRecord(p.id, pid, ok, score, d.texts, () if ok else d.missing, d.details)
            for pid, ok, score, d in zip(ids, eligible, scores_l, done, strict=True)
        ]


def _pick(mask: np.ndarray, scores: np.ndarray, k: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``mask`` in ranked order with their scores: all of them (``k`` None) or the best ``k``."""
    if k is None:
        rows = np.flatnonzero(mask)
        return best_of(rows, scores[rows], len(rows))
    return top_rows(mask, scores, k)
