"""``MatchEngine``: one audience's profiles, criteria and TF-IDF, matched in both directions.

The application builds one engine per audience at start-up and calls it from an executor
(it is plain synchronous code; every public method takes an internal lock)::

    engine = MatchEngine("enterprise", regions, industries, tokenizer, n_jobs=2).fit(records)
    engine.set_policies(policy_dicts)                      # the open and recent policies
    found = engine.match_policy(policy_dict, on=today, top_k=100)   # -> PolicyMatches
    mine = engine.match_profile("91211100MA0XXXXXXX", on=today)     # -> ProfileMatches
    engine.upsert(record); engine.remove(profile_id)       # incremental, no rebuild
    engine.save(path); engine = MatchEngine.load(path, regions, industries, tokenizer)

Profile records are plain dicts with the keys listed in ``normalise_profile`` (the app's
``policy_push.domain.matcher_record``); policies are formats.md dicts.  Updates append a new row
and mask the old one; ``compact()`` (or ``merge_in_background()``) drops masked rows and
refreshes idf; it runs by itself when masked plus unmerged rows exceed ``merge_fraction``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ._columns import Grow
from ._criteria import TRUE, UNKNOWN, compile_criteria, to_ymd
from ._errors import NotFittedError, UnknownProfileError
from ._fields import Audience
from ._hierarchy import Hierarchy
from ._policyset import PolicySet
from ._reasons import explain
from ._records import CompiledPolicy, MatchRecord, PolicyMatches, ProfileMatches
from ._store import load_state, save_state
from ._table import DERIVED_YEARS, ProfileTable, normalise_profile
from ._text import Tokenizer
from ._tfidf import TfidfIndex

__all__ = ["MatchEngine", "profile_text"]


def profile_text(record: Mapping[str, Any]) -> str:
    """The text indexed for a profile: business scope, interests, qualification and tag names."""
    parts = [record.get("business_scope"), record.get("interests"),
             *(record.get("qualifications") or ()), *(record.get("tags") or ())]
    return " ".join(p for p in parts if p)


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

    Attributes (learned): ``table_`` (ProfileTable), ``tfidf_`` (TfidfIndex), ``row_ids_``
    (profile id per row), ``rows_`` (profile id -> live row).
    """

    def __init__(self, audience: str, regions: Hierarchy, industries: Hierarchy,
                 tokenizer: Tokenizer | None = None, *, n_jobs: int = 1, merge_fraction: float = 0.2,
                 merge_min_rows: int = 1000) -> None:
        self.audience = Audience(audience)
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
        self.policies_ = PolicySet(self.hierarchies)

    @property
    def hierarchies(self) -> dict[str, Hierarchy]:
        return {"region": self.regions, "industry": self.industries}

    def _tok(self) -> Tokenizer:
        if self.tokenizer is None:
            self.tokenizer = Tokenizer()
        return self.tokenizer

    def _check(self) -> None:
        if not hasattr(self, "table_"):
            raise NotFittedError("MatchEngine is not fitted: call fit(records) or MatchEngine.load(path)")

    # -- building and updating ------------------------------------------------------------

    def fit(self, records: Iterable[Mapping[str, Any]]) -> MatchEngine:
        """Index ``records`` from scratch (tokenising over ``n_jobs`` processes)."""
        records = list(records)
        values = [normalise_profile(r, self.audience) for r in records]
        texts = [profile_text(r) for r in records]
        tokens = self._tok().tokenize_many(texts, n_jobs=self.n_jobs)
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
            self.tfidf_ = TfidfIndex.build(tokens)
            self._generation += 1
        return self

    def upsert(self, record: Mapping[str, Any]) -> None:
        """Add a profile, or replace the stored one with the same id (text re-cut only if changed)."""
        self._check()
        values = normalise_profile(record, self.audience)
        text = profile_text(record)
        h = _text_hash(text)
        with self._lock:
            pid = str(record["id"])
            old = self.rows_.get(pid)
            if old is not None and int(self.hashes_.a[old]) == h:
                self.tfidf_.append_ids(*self.tfidf_.row_tokens(old))
            else:
                self.tfidf_.append(self._tok().tokens(text), len(self.rows_))
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
            if self._journal is not None:
                self._journal.add(profile_id)
        self._maybe_merge()
        return True

    def __len__(self) -> int:
        return len(self.rows_) if hasattr(self, "rows_") else 0

    def __contains__(self, profile_id: object) -> bool:
        return hasattr(self, "rows_") and profile_id in self.rows_

    def _maybe_merge(self) -> None:
        with self._lock:
            n = self.table_.n_rows
            stale = (n - len(self.rows_)) + (n - self.tfidf_.n_base)
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
            table, tfidf, hashes, ids = self.table_, self.tfidf_, self.hashes_, self.row_ids_
        try:
            new = (table.take(live), tfidf.take(live), hashes.a[live].copy(), [ids[r] for r in live])
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

    def _install(self, table: ProfileTable, tfidf: TfidfIndex, hashes: np.ndarray, ids: list[str]) -> None:
        old_table, old_tfidf, old_rows, old_hashes = self.table_, self.tfidf_, self.rows_, self.hashes_
        changed = set(self._journal or ())
        self.table_, self.tfidf_, self.hashes_, self.row_ids_ = table, tfidf, Grow(np.uint64, hashes), ids
        self.rows_ = {pid: r for r, pid in enumerate(ids)}
        # replay what changed while the compaction ran, from the old rows (tokens reused)
        for pid in changed:
            row = self.rows_.pop(pid, None)
            if row is not None:
                self.table_.kill(row)
            src = old_rows.get(pid)
            if src is not None:
                ids_, cnt = old_tfidf.row_tokens(src)
                self.tfidf_.append([t for i, c in zip(ids_, cnt, strict=True) for t in [old_tfidf.terms_[i]] * int(c)],
                                   len(self.rows_))
                self._append(pid, old_table.row_values(src), int(old_hashes.a[src]), None)
        self._generation += 1

    # -- policies ---------------------------------------------------------------------------

    def compile_policy(self, policy: Mapping[str, Any]) -> CompiledPolicy:
        """Validate a formats.md policy dict and cut its text once (raises CriteriaError)."""
        criteria = compile_criteria(policy.get("criteria"), policy.get("audience", self.audience.value))
        until = policy.get("apply_until")
        text = "\n".join(str(policy.get(k) or "") for k in ("title", "summary", "text"))
        keep = {k: policy.get(k) for k in ("id", "audience", "apply_until", "criteria", "title")}
        return CompiledPolicy(str(policy["id"]), criteria.audience.value, criteria,
                              None if until is None else to_ymd(until), tuple(self._tok().tokens(text)), keep)

    def set_policies(self, policies: Iterable[Mapping[str, Any] | CompiledPolicy]) -> MatchEngine:
        """Replace the policies ``match_profile`` answers from (other audiences are skipped)."""
        compiled = [p if isinstance(p, CompiledPolicy) else self.compile_policy(p) for p in policies]
        with self._lock:
            self.policies_ = PolicySet(self.hierarchies)
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

    def _values(self, row: int, fields: Iterable[str], on_ymd: int) -> dict[str, Any]:
        return {f: self.table_.value(f, row, on_ymd) for f in fields}

    def match_policy(self, policy: Mapping[str, Any] | CompiledPolicy, *, on: dt.date,
                     top_k: int | None = 100, min_score: float = 0.0,
                     unknown_k: int | None = None) -> PolicyMatches:
        """Profiles eligible for ``policy`` on day ``on``, ranked by score, with reasons.

        ``top_k`` (None = all) and ``min_score`` cut the eligible list; ``unknown_k`` (default
        ``top_k``) cuts the "may qualify, missing data" list.  Counts are before any cut.
        """
        self._check()
        p = policy if isinstance(policy, CompiledPolicy) else self.compile_policy(policy)
        if p.audience != self.audience.value:
            raise ValueError(f"policy {p.id} is for {p.audience} profiles, this engine holds {self.audience.value}")
        on_ymd = to_ymd(on)
        with self._lock:
            ev = self.table_.evaluate(p.criteria, on_ymd)
            elig = np.flatnonzero(ev.true)
            unk = np.flatnonzero(ev.unknown)
            ids, cnt, _ = p.term_counts(self.tfidf_.vocabulary_)
            q_ids, q_w = self.tfidf_.weigh(ids, cnt)
            cand = np.concatenate([elig, unk])
            avg = self.tfidf_.nnz / max(self.tfidf_.n_rows, 1)
            if len(cand) * avg < self.tfidf_.postings_cost(q_ids):
                scores = self.tfidf_.score_rows(q_ids, q_w, cand)
            else:
                scores = self.tfidf_.score_all(q_ids, q_w)[cand]
            s_elig, s_unk = scores[: len(elig)], scores[len(elig) :]
            keep = s_elig >= min_score if min_score > 0 else slice(None)
            out_e = self._ranked(p, elig[keep], s_elig[keep], top_k, ev, on_ymd)
            out_u = self._ranked(p, unk, s_unk, top_k if unknown_k is None else unknown_k, ev, on_ymd)
            n_live = len(self.rows_)
        return PolicyMatches(p.id, out_e, out_u, len(elig), len(unk), n_live - len(elig) - len(unk),
                             p.criteria.root is not None)

    def _ranked(self, p: CompiledPolicy, rows: np.ndarray, scores: np.ndarray, k: int | None,
                ev: Any, on_ymd: int) -> list[MatchRecord]:
        if k is not None and len(rows) > k:
            part = np.argpartition(-scores, k - 1)[:k]
            rows, scores = rows[part], scores[part]
        order = np.lexsort((rows, -scores))  # best score first, then oldest row: stable output
        out = []
        fields = p.criteria.fields
        for i in order:
            r = int(rows[i])
            leaf = [ev.leaf_value(c.index, r) for c in p.criteria.conditions]
            reasons, missing = explain(p.criteria, self._values(r, fields, on_ymd), leaf, self.hierarchies)
            eligible = bool(ev.true[r])
            out.append(MatchRecord(p.id, self.row_ids_[r], eligible, float(scores[i]), tuple(reasons),
                                   () if eligible else tuple(missing)))
        return out

    def score_profiles(self, policy: Mapping[str, Any] | CompiledPolicy, profile_ids: Iterable[str]) -> np.ndarray:
        """The ranking score of ``policy`` for each of ``profile_ids`` (stored profiles), whatever
        their eligibility: ``float32`` in the order given.  Raises ``UnknownProfileError``."""
        self._check()
        p = policy if isinstance(policy, CompiledPolicy) else self.compile_policy(policy)
        with self._lock:
            rows = []
            for pid in profile_ids:
                row = self.rows_.get(pid)
                if row is None:
                    raise UnknownProfileError(pid)
                rows.append(row)
            ids, cnt, _ = p.term_counts(self.tfidf_.vocabulary_)
            q_ids, q_w = self.tfidf_.weigh(ids, cnt)
            return self.tfidf_.score_rows(q_ids, q_w, np.asarray(rows, np.int64))

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
                q_ids, q_w = self.tfidf_.row_vector(row)
            else:
                stored, pid = normalise_profile(profile, self.audience), profile.get("id")
                ids, cnt = self.tfidf_._ids(self._tok().tokens(profile_text(profile)), 0, grow=False)
                q_ids, q_w = self.tfidf_.weigh(ids, cnt)
            values = dict(stored)
            for name, src in DERIVED_YEARS.items():
                if src in stored:
                    values[name] = None if stored[src] is None else (on_ymd - stored[src]) // 10000
            catalog, order, until = self.policies_.catalog()
            if not order:
                return ProfileMatches(pid, [], [])
            truth, leaf = catalog.evaluate(values)
            matrix = self.policies_.matrix(self.tfidf_, self._generation)
            scores = np.asarray(matrix[:, q_ids] @ q_w).ravel() if len(q_ids) else np.zeros(len(order))
            is_open = until >= on_ymd if open_only else np.ones(len(order), bool)
            lists = []
            for want in (TRUE, UNKNOWN) if include_unknown else (TRUE,):
                idx = np.flatnonzero((truth == want) & is_open)
                idx = idx[np.lexsort((idx, -scores[idx]))][: top_k if top_k is not None else None]
                recs = []
                for i in idx:
                    pol = order[i]
                    reasons, missing = explain(pol.criteria, values, catalog.leaf_values(int(i), leaf),
                                               self.hierarchies)
                    recs.append(MatchRecord(pol.id, str(pid), want == TRUE, float(scores[i]), tuple(reasons),
                                            () if want == TRUE else tuple(missing)))
                lists.append(recs)
        return ProfileMatches(pid, lists[0], lists[1] if include_unknown else [])

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index (profiles, tokens, TF-IDF, policies) to directory ``path``."""
        self._check()
        save_state(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], regions: Hierarchy, industries: Hierarchy,
             tokenizer: Tokenizer | None = None, **params: Any) -> MatchEngine:
        """An engine restored from ``save`` output; no text is re-cut."""
        with open(os.path.join(path, "meta.json"), encoding="utf-8") as f:
            audience = json.load(f)["audience"]
        engine = cls(audience, regions, industries, tokenizer, **params)
        load_state(engine, path)
        return engine

    def nbytes(self) -> dict[str, int]:
        """Approximate bytes held: ``arrays`` (columns, tokens, TF-IDF), ``ids`` (Python id
        strings and the id -> row dict), ``vocab`` (terms and code/tag vocabularies)."""
        self._check()
        with self._lock:
            table_arrays, vocabs = self.table_.state()
            arrays = sum(a.nbytes for a in table_arrays.values()) + self.tfidf_.nbytes() + self.hashes_.a.nbytes
            ids = sys.getsizeof(self.row_ids_) + sys.getsizeof(self.rows_) + sum(sys.getsizeof(s) for s in self.row_ids_)
            vocab = sum(sys.getsizeof(t) for t in self.tfidf_.terms_) + sys.getsizeof(self.tfidf_.vocabulary_)
            vocab += sum(sys.getsizeof(t) for v in vocabs.values() for t in v)
        return {"arrays": int(arrays), "ids": int(ids), "vocab": int(vocab)}
