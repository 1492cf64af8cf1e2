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
import hashlib
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ._columns import Grow
from ._criteria import TRUE, UNKNOWN, compile_criteria, to_ymd
from ._errors import NotFittedError, UnknownProfileError
from ._feedback import FEEDBACK_KINDS, FeedbackEvent, FeedbackStore, adjust
from ._fields import Audience
from ._hierarchy import Hierarchy
from ._policyset import PolicySet
from ._ranking import POLICY_FIELDS, PROFILE_FIELDS, Ranking, joined_fields, split_fields, weighted_terms
from ._reasons import SIZE_FIGURES, Explainer, text_reason
from ._records import CompiledPolicy, MatchRecord, PolicyMatches, ProfileMatches, Reason
from ._store import load_state, read_meta, save_state, saved_ranking
from ._table import DERIVED_YEARS, ProfileTable, normalise_profile
from ._text import Tokenizer
from ._textindex import TextIndex
from ._topk import best_of, top_rows

__all__ = ["MatchEngine", "PolicyStream", "TextStats", "profile_text"]

#: explained (conditions' values, fields' values) a streamed policy remembers: rows of one policy
#: repeat them across batches; bounded, as a million rows can hold that many distinct ones
_STREAM_EXPLAINED = 50_000


def profile_text(record: Mapping[str, Any], ranking: Ranking | None = None) -> str:
    """The text indexed for a profile, its fields joined (one tokenizer call cuts them all)."""
    return joined_fields((ranking or Ranking()).profile_texts(record))


@dataclass(slots=True)
class TextStats:
    """What the text weights of a shard need from the profiles it does not hold: in how many of them
    each term occurs, how many there are and their summed weighted length (``MatchEngine.count_outside``)."""

    df: Counter[str] = field(default_factory=Counter)
    n: int = 0
    total_length: float = 0.0


def _text_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


class MatchEngine:
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
    """

    def __init__(self, audience: str, regions: Hierarchy, industries: Hierarchy,
                 tokenizer: Tokenizer | None = None, *, n_jobs: int = 1, merge_fraction: float = 0.2,
                 merge_min_rows: int = 1000, ranking: Ranking | None = None) -> None:
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

    @property
    def hierarchies(self) -> dict[str, Hierarchy]:
        return {"region": self.regions, "industry": self.industries}

    def _tok(self) -> Tokenizer:
        if self.tokenizer is None:
            self.tokenizer = Tokenizer()
        return self.tokenizer

    @property
    def tfidf_(self) -> TextIndex:
        """The text index (its first name; kept for callers of the first version)."""
        return self.text_

    def _profile_terms(self, tokens: list[str]) -> dict[str, float]:
        return weighted_terms(split_fields(tokens, len(PROFILE_FIELDS)), self.ranking.profile_weights())

    def _check(self) -> None:
        if not hasattr(self, "table_"):
            raise NotFittedError("MatchEngine is not fitted: call fit(records) or MatchEngine.load(path)")

    # -- building and updating ------------------------------------------------------------

    def count_outside(self, stats: TextStats, records: Iterable[Mapping[str, Any]]) -> None:
        """Add ``records`` (profiles another shard holds) to ``stats``, which ``fit(outside=...)``
        then weighs text with: cut and counted, never kept."""
        texts = [profile_text(r, self.ranking) for r in records]
        for tokens in self._tok().tokenize_many(texts, n_jobs=self.n_jobs):
            terms = self._profile_terms(tokens)
            stats.df.update(terms.keys())
            stats.n += 1
            # the length as an index row holds it: float32 counts summed in float64, stored as float32
            stats.total_length += float(np.float32(sum(float(np.float32(c)) for c in terms.values())))

    def fit(self, records: Iterable[Mapping[str, Any]], *, outside: TextStats | None = None) -> MatchEngine:
        """Index ``records`` from scratch (tokenising over ``n_jobs`` processes).  ``outside``: a
        shard's count of the profiles held elsewhere, so that idf and average length are the whole
        corpus's and scores equal those of one index of every profile."""
        records = list(records)
        values = [normalise_profile(r, self.audience) for r in records]
        texts = [profile_text(r, self.ranking) for r in records]
        tokens = self._tok().tokenize_many(texts, n_jobs=self.n_jobs)
        terms = [self._profile_terms(t) for t in tokens]
        del tokens
        with self._lock:
            self.table_ = ProfileTable(self.audience, self.regions, self.industries)
            self.row_ids_: list[str] = []
            self.rows_: dict[str, int] = {}
            self.hashes_ = Grow(np.uint64)
            dead = []
            for r, v in zip(records, values, strict=True):
                pid = str(r["id"])
                if pid in self.rows_:
                    dead.append(self.rows_[pid])  # the last record of an id wins
                self.rows_[pid] = self.table_.append(v)
                self.row_ids_.append(pid)
            for row in dead:
                self.table_.kill(row)
            self.hashes_.extend(np.fromiter((_text_hash(t) for t in texts), np.uint64, len(texts)))
            whole = None if outside is None else (dict(outside.df), outside.n, outside.total_length)
            self.text_ = TextIndex.build(terms, self.ranking.k1, self.ranking.b, outside=whole)
            self._generation += 1
        return self

    def upsert(self, record: Mapping[str, Any]) -> None:
        """Add a profile, or replace the stored one with the same id (text re-cut only if changed)."""
        self._check()
        values = normalise_profile(record, self.audience)
        text = profile_text(record, self.ranking)
        h = _text_hash(text)
        with self._lock:
            pid = str(record["id"])
            old = self.rows_.get(pid)
            if old is not None and int(self.hashes_.a[old]) == h:
                self.text_.append_ids(*self.text_.row_terms(old))
            else:
                self.text_.append(self._profile_terms(self._tok().tokens(text)), len(self.rows_))
            self._append(pid, values, h, old)
        self._maybe_merge()

    def _append(self, pid: str, values: Mapping[str, Any], h: int, old: int | None) -> None:
        if old is not None:
            self.table_.kill(old)
        self.rows_[pid] = self.table_.append(values)
        self.row_ids_.append(pid)
        self.hashes_.append(h)
        if self._journal is not None:
            self._journal.add(pid)

    def remove(self, profile_id: str) -> bool:
        """Remove a profile; False when it was not there."""
        self._check()
        with self._lock:
            row = self.rows_.pop(profile_id, None)
            if row is None:
                return False
            self.table_.kill(row)
            self.feedback_.forget(profile_id)  # a removed person's marks go with them
            if self._journal is not None:
                self._journal.add(profile_id)
        self._maybe_merge()
        return True

    def __len__(self) -> int:
        return len(self.rows_) if hasattr(self, "rows_") else 0

    @property
    def generation(self) -> int:
        """Bumped whenever the text index is replaced (a fit, a load, a merge refreshing idf): every
        profile's scores may have moved. Between two bumps a profile's answers change only with its own
        record, its own feedback and the policies."""
        return self._generation

    def __contains__(self, profile_id: object) -> bool:
        return hasattr(self, "rows_") and profile_id in self.rows_

    def _maybe_merge(self) -> None:
        with self._lock:
            n = self.table_.n_rows
            stale = (n - len(self.rows_)) + (n - self.text_.n_base)
            due = self._journal is None and n and stale > self.merge_fraction * n and stale > self.merge_min_rows
            if due:
                self._journal = set()  # claimed here so that no second merge starts meanwhile
        if due:
            threading.Thread(target=self._merge, name="matchers-merge", daemon=True).start()

    def compact(self) -> None:
        """Drop masked rows, refresh idf and fold every row into the term-major base."""
        self._check()
        with self._lock:
            while self._journal is not None:  # a background merge is running: let it finish
                self._merged.wait()
            self._journal = set()
        self._merge()

    def _merge(self) -> None:
        # Only one merge at a time (the journal claims it).  The heavy part runs without the
        # lock: rows are append-only, so rows below the snapshot never change except their
        # alive flag, and what changes meanwhile is named in the journal and replayed.
        with self._lock:
            live = np.flatnonzero(self.table_.alive.a)
            table, text, hashes, ids = self.table_, self.text_, self.hashes_, self.row_ids_
        try:
            new = (table.take(live), text.take(live), hashes.a[live].copy(), [ids[r] for r in live])
            with self._lock:
                self._install(*new)
        finally:
            with self._lock:
                self._journal = None
                self._merged.notify_all()
        self._maybe_merge()  # writes made during this merge may already call for the next one

    def merge_in_background(self) -> threading.Thread:
        """Run ``compact`` in a daemon thread; reads and writes go on meanwhile."""
        thread = threading.Thread(target=self.compact, name="matchers-merge", daemon=True)
        thread.start()
        return thread

    def _install(self, table: ProfileTable, text: TextIndex, hashes: np.ndarray, ids: list[str]) -> None:
        old_table, old_text, old_rows, old_hashes = self.table_, self.text_, self.rows_, self.hashes_
        changed = set(self._journal or ())
        self.table_, self.text_, self.hashes_, self.row_ids_ = table, text, Grow(np.uint64, hashes), ids
        self.rows_ = {pid: r for r, pid in enumerate(ids)}
        # replay what changed while the compaction ran, from the old rows (tokens reused)
        for pid in changed:
            row = self.rows_.pop(pid, None)
            if row is not None:
                self.table_.kill(row)
            src = old_rows.get(pid)
            if src is not None:
                ids_, cnt = old_text.row_terms(src)
                self.text_.append({old_text.terms_[i]: float(c) for i, c in zip(ids_, cnt, strict=True)},
                                  len(self.rows_))
                self._append(pid, old_table.row_values(src), int(old_hashes.a[src]), None)
        self._generation += 1

    # -- policies ---------------------------------------------------------------------------

    def compile_policy(self, policy: Mapping[str, Any]) -> CompiledPolicy:
        """Validate a formats.md policy dict and cut its text once (raises CriteriaError)."""
        criteria = compile_criteria(policy.get("criteria"), policy.get("audience", self.audience.value))
        until = policy.get("apply_until")
        texts = self.ranking.policy_texts(policy)
        tokens = self._tok().tokens(joined_fields(texts)) if any(t.strip() for t in texts) else []
        terms = weighted_terms(split_fields(tokens, len(POLICY_FIELDS)), self.ranking.policy_weights())
        keep = {k: policy.get(k) for k in ("id", "audience", "apply_until", "criteria", "title")}
        return CompiledPolicy(str(policy["id"]), criteria.audience.value, criteria,
                              None if until is None else to_ymd(until), terms, keep)

    def set_policies(self, policies: Iterable[Mapping[str, Any] | CompiledPolicy]) -> MatchEngine:
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

    # -- matching ---------------------------------------------------------------------------

    @staticmethod
    def _fields(fields: Iterable[str]) -> set[str]:
        names = set(fields)
        if "size" in names:  # advice on a missing size names the figures it is derived from
            names |= SIZE_FIGURES.keys()
        return names

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

    def match_policy(self, policy: Mapping[str, Any] | CompiledPolicy, *, on: dt.date,
                     top_k: int | None = 100, min_score: float = 0.0,
                     unknown_k: int | None = None) -> PolicyMatches:
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
                picked = [best_of(elig[keep], s_elig[keep], len(s_elig) if top_k is None else top_k),
                          best_of(unk, s_unk, n_unk if k_unk is None else k_unk)]
            else:
                # a wide one: every row's score through the postings, then only the best rows
                # are listed (``top_rows``), never the hundreds of thousands that pass
                scores = self._dense_scores(q)
                if min_score > 0:
                    elig_mask = elig_mask & (scores >= min_score)
                picked = [_pick(elig_mask, scores, top_k), _pick(unk_mask, scores, k_unk)]
            (re, se), (ru, su) = picked
            out_e = self._ranked(p, re, se, None, ev, on_ymd, query, presorted=True)
            out_u = self._ranked(p, ru, su, None, ev, on_ymd, query, presorted=True)
            n_live = len(self.rows_)
        return PolicyMatches(p.id, out_e, out_u, n_elig, n_unk, n_live - n_elig - n_unk,
                             p.criteria.root is not None)

    def _compiled_for(self, policy: Mapping[str, Any] | CompiledPolicy) -> CompiledPolicy:
        self._check()
        p = policy if isinstance(policy, CompiledPolicy) else self.compile_policy(policy)
        if p.audience != self.audience.value:
            raise ValueError(f"policy {p.id} is for {p.audience} profiles, this engine holds {self.audience.value}")
        return p

    def _scored(self, p: CompiledPolicy, on_ymd: int) -> tuple[Any, np.ndarray, np.ndarray, Any, np.ndarray, np.ndarray]:
        """Under ``_lock``: the criteria's evaluation, eligible and unknown rows, the query and both rows' scores."""
        ev = self.table_.evaluate(p.criteria, on_ymd)
        elig = np.flatnonzero(ev.true)
        unk = np.flatnonzero(ev.unknown)
        q = self._query(p)
        s_elig, s_unk = self._score(q, [elig, unk])
        return ev, elig, unk, q, s_elig, s_unk

    def stream_policy(self, policy: Mapping[str, Any] | CompiledPolicy, *, on: dt.date, min_score: float = 0.0,
                      batch: int = 10_000) -> PolicyStream:
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
                        got = self._ranked(p, rows[at : at + batch], scores[at : at + batch], None, ev, on_ymd,
                                           (q.ids, q.weights), presorted=True, explainer=explainer)
                    yield from got

        return PolicyStream(p.id, n_elig, n_unk, n_live - n_elig - n_unk, p.criteria.root is not None, records)

    def _shared_terms(self, a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> list[str]:
        """Terms of two vectors in the index space, by their share of the cosine, largest first."""
        common, ia, ib = np.intersect1d(a[0], b[0], assume_unique=True, return_indices=True)
        share = a[1][ia] * b[1][ib]
        order = np.argsort(-share, kind="stable")
        return [self.text_.terms_[int(common[i])] for i in order if share[i] > 0]

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

    def _ranked(self, p: CompiledPolicy, rows: np.ndarray, scores: np.ndarray, k: int | None,
                ev: Any, on_ymd: int, query: tuple[np.ndarray, np.ndarray], presorted: bool = False,
                explainer: Explainer | None = None) -> list[MatchRecord]:
        if k is not None and len(rows) > k:
            part = np.argpartition(-scores, k - 1)[:k]
            rows, scores = rows[part], scores[part]
        if not presorted:
            order = np.lexsort((rows, -scores))  # best score first, then oldest row: stable output
            rows, scores = rows[order], scores[order]
        out = []
        if explainer is None:
            explainer = Explainer(p.criteria, self.hierarchies)
        if p.criteria.root is not None:
            leaves = ev.leaf_values(rows)
            columns = self.table_.values_of(self._fields(p.criteria.fields), rows, on_ymd)
        eligible = ev.true[rows].tolist()
        ids, scores_l = self.row_ids_, scores.tolist()
        if p.criteria.root is None:
            shared = self._shared_terms_rows(query, rows)
        for j, r in enumerate(rows.tolist()):
            if p.criteria.root is None:
                line = text_reason(shared[j], self.audience.value)
                details: tuple[Reason, ...] = (line,) if line else ()
                out.append(MatchRecord(p.id, ids[r], eligible[j], scores_l[j], tuple(d.text for d in details), (),
                                       details))
            else:
                done = explainer.columns(columns, j, leaves[j])
                out.append(MatchRecord(p.id, ids[r], eligible[j], scores_l[j], done.texts,
                                       () if eligible[j] else done.missing, done.details))
        return out

    def score_profiles(self, policy: Mapping[str, Any] | CompiledPolicy, profile_ids: Iterable[str]) -> np.ndarray:
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

    def match_profile(self, profile: str | Mapping[str, Any], *, on: dt.date, top_k: int | None = 20,
                      include_unknown: bool = False, open_only: bool = True) -> ProfileMatches:
        """Policies of the catalogue that fit a profile (an indexed id, or a record not stored).

        Only policies whose ``apply_until`` is on or after ``on`` unless ``open_only`` is False.
        """
        self._check()
        on_ymd = to_ymd(on)
        with self._lock:
            if isinstance(profile, str):
                row = self.rows_.get(profile)
                if row is None:
                    raise UnknownProfileError(profile)
                stored, pid = self.table_.row_values(row), profile
                d_ids, d_w = self.text_.row_vector(row)
            else:
                stored, pid = normalise_profile(profile, self.audience), profile.get("id")
                terms = self._profile_terms(self._tok().tokens(profile_text(profile, self.ranking)))
                d_ids, d_w = self.text_.doc_vector(*self.text_.ids_of(terms, grow=False))
            values = dict(stored)
            for name, src in DERIVED_YEARS.items():
                if src in stored:
                    values[name] = None if stored[src] is None else (on_ymd - stored[src]) // 10000
            catalog, order, until = self.policies_.catalog()
            if not order:
                return ProfileMatches(pid, [], [])
            truth, leaf = catalog.evaluate(values)
            columns = {f: [v] for f, v in values.items()}
            matrix = self.policies_.matrix(self.text_)
            scores = np.asarray(matrix[:, d_ids] @ d_w).ravel() if len(d_ids) else np.zeros(len(order), np.float32)
            marks = self.feedback_.profile_vector(str(pid)) if pid is not None else {}
            if marks:
                scores = adjust(scores, self.policies_.evidence(marks))
            is_open = until >= on_ymd if open_only else np.ones(len(order), bool)
            lists = []
            for want in (TRUE, UNKNOWN) if include_unknown else (TRUE,):
                idx = np.flatnonzero((truth == want) & is_open)
                idx = idx[np.lexsort((idx, -scores[idx]))][: top_k if top_k is not None else None]
                recs = []
                for i in idx:
                    pol = order[i]
                    if pol.criteria.root is None:
                        row_i = matrix.getrow(int(i)).tocsr()
                        line = text_reason(self._shared_terms((row_i.indices.astype(np.int32), row_i.data), (d_ids, d_w)),
                                           self.audience.value)
                        details: list[Reason] = [line] if line else []
                        missing: list[str] = []
                        recs.append(_record(pol.id, str(pid), want == TRUE, float(scores[i]), details, missing))
                    else:
                        done = self.policies_.explainer(int(i)).columns(
                            columns, 0, tuple(catalog.leaf_values(int(i), leaf)))
                        recs.append(MatchRecord(pol.id, str(pid), want == TRUE, float(scores[i]), done.texts,
                                                () if want == TRUE else done.missing, done.details))
                lists.append(recs)
        return ProfileMatches(pid, lists[0], lists[1] if include_unknown else [])

    # -- feedback -----------------------------------------------------------------------------

    def record_feedback(self, profile_id: str, policy: str | Mapping[str, Any] | CompiledPolicy, kind: str, *,
                        at: dt.date | None = None) -> None:
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
    def load(cls, path: str | os.PathLike[str], regions: Hierarchy, industries: Hierarchy,
             tokenizer: Tokenizer | None = None, **params: Any) -> MatchEngine:
        """An engine restored from ``save`` output; no text is re-cut."""
        meta = read_meta(path)
        saved = saved_ranking(meta)
        given = params.setdefault("ranking", saved)
        if (given.profile_fields, given.clean_scope) != (saved.profile_fields, saved.clean_scope):
            raise ValueError(f"{path}: indexed with other profile field weights; rebuild it from the profiles")
        engine = cls(meta["audience"], regions, industries, tokenizer, **params)
        load_state(engine, path, meta)
        return engine

    def nbytes(self) -> dict[str, int]:
        """Approximate bytes held: ``arrays`` (columns, tokens, TF-IDF), ``ids`` (Python id
        strings and the id -> row dict), ``vocab`` (terms and code/tag vocabularies)."""
        self._check()
        with self._lock:
            table_arrays, vocabs = self.table_.state()
            arrays = sum(a.nbytes for a in table_arrays.values()) + self.text_.nbytes() + self.hashes_.a.nbytes
            ids = sys.getsizeof(self.row_ids_) + sys.getsizeof(self.rows_) + sum(sys.getsizeof(s) for s in self.row_ids_)
            vocab = sum(sys.getsizeof(t) for t in self.text_.terms_) + sys.getsizeof(self.text_.vocabulary_)
            vocab += sum(sys.getsizeof(t) for v in vocabs.values() for t in v)
        return {"arrays": int(arrays), "ids": int(ids), "vocab": int(vocab)}


@dataclass(frozen=True, slots=True)
class PolicyStream:
    """Counts of a policy's match (before any cut) and its records, read once, in order."""

    policy_id: str
    n_eligible: int
    n_unknown: int
    n_ineligible: int
    has_criteria: bool
    records: Callable[[], Iterator[MatchRecord]]


class Query(NamedTuple):
    """A policy's query: in the index's term space (``ids``, ``weights``, frequent terms left out)
    and over all its heaviest terms (``terms``, ``term_weights``, for feedback)."""

    ids: np.ndarray
    weights: np.ndarray
    terms: list[str]
    term_weights: np.ndarray


def _pick(mask: np.ndarray, scores: np.ndarray, k: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``mask`` in ranked order with their scores: all of them (``k`` None) or the best ``k``."""
    if k is None:
        rows = np.flatnonzero(mask)
        return best_of(rows, scores[rows], len(rows))
    return top_rows(mask, scores, k)


def _record(policy_id: str, profile_id: str, eligible: bool, score: float, details: list[Reason],
            missing: list[str]) -> MatchRecord:
    return MatchRecord(policy_id, profile_id, eligible, score, tuple(d.text for d in details),
                       () if eligible else tuple(missing), tuple(details))
