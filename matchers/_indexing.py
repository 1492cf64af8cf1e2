"""The profile index of a ``MatchEngine``: the state every part of the engine shares, and
building it (``fit``, with ``count_outside`` for a shard), updating it (``upsert``, ``remove``,
``hand_over`` when a shard's regions change) and compacting it (``compact``, ``merge_in_background``).

Updates append a new row and mask the old one; a merge drops masked rows and refreshes idf.  It
runs by itself, in a background thread, when masked plus unmerged rows exceed ``merge_fraction``;
what is written meanwhile is named in a journal and replayed onto the merged rows.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np

from ._columns import Grow
from ._errors import NotFittedError
from ._feedback import FeedbackStore
from ._fields import Audience
from ._hierarchy import Hierarchy
from ._policyset import PolicySet
from ._ranking import PROFILE_FIELDS, Ranking, joined_fields, split_fields, weighted_terms
from ._table import ProfileTable, normalise_profile
from ._text import Tokenizer
from ._textindex import TextIndex

__all__ = ["ProfileIndex", "TextStats", "profile_text"]


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


def _row_length(counts: Iterable[float]) -> float:
    # the length as an index row holds it: float32 counts summed in float64, stored as float32
    return float(np.float32(sum(float(np.float32(c)) for c in counts)))


def _text_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


class ProfileIndex:
    """Profiles of one audience, indexed for criteria (``table_``) and text (``text_``).

    ``MatchEngine.__init__`` sets the parameters and locks; ``fit`` (or ``MatchEngine.load``) the
    learned attributes.  The other parts of the engine (``_policies``, ``_scoring``,
    ``_policy_matching``, ``_profile_matching``) read them under ``_lock``.
    """

    audience: Audience
    ranking: Ranking
    regions: Hierarchy
    industries: Hierarchy
    tokenizer: Tokenizer | None
    n_jobs: int
    merge_fraction: float
    merge_min_rows: int
    _lock: threading.RLock
    _merged: threading.Condition
    _generation: int
    _journal: set[str] | None
    policies_: PolicySet
    feedback_: FeedbackStore
    table_: ProfileTable
    text_: TextIndex
    hashes_: Grow
    row_ids_: list[str]
    rows_: dict[str, int]

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
            stats.total_length += _row_length(terms.values())

    def hand_over(self, gained: Iterable[Mapping[str, Any]], lost: Iterable[str]) -> None:
        """A shard's regions changed: index ``gained`` (profiles it now holds, until now counted among
        those held elsewhere) and drop ``lost`` (now held elsewhere, counted there from now on), then
        compact, so that idf and average length stay the whole corpus's.  Only the gained texts are cut.
        A profile the outside count never saw (written elsewhere after the build) is taken out of it as
        far as it can be (never below zero): the drift a shard's count has after writes anyway."""
        self._check()
        if self.text_.outside_ is None:
            raise ValueError("hand_over is for a shard's index (fitted with outside=...)")
        records = list(gained)
        values = [normalise_profile(r, self.audience) for r in records]
        texts = [profile_text(r, self.ranking) for r in records]
        terms = [self._profile_terms(t) for t in self._tok().tokenize_many(texts, n_jobs=self.n_jobs)]
        with self._lock:
            while self._journal is not None:  # a background merge is running: let it finish
                self._merged.wait()
            df, n, total = self.text_.outside_
            out = Counter(df)
            for pid, v, text, row_terms in zip((str(r["id"]) for r in records), values, texts, terms, strict=True):
                old = self.rows_.get(pid)
                if old is None:  # it was counted elsewhere until now
                    out.subtract(row_terms.keys())
                    n, total = n - 1, total - _row_length(row_terms.values())
                self.text_.append(row_terms, len(self.rows_))
                self._append(pid, v, _text_hash(text), old)
            for pid in lost:
                row = self.rows_.pop(pid, None)
                if row is None:
                    continue
                ids, counts = self.text_.row_terms(row)
                out.update(self.text_.terms_[i] for i in ids.tolist())
                n, total = n + 1, total + _row_length(counts.tolist())
                self.table_.kill(row)
                self.feedback_.forget(pid)
            self.text_.outside_ = ({t: c for t, c in out.items() if c > 0}, max(n, 0), max(total, 0.0))
            self._journal = set()  # claimed: the merge below refreshes the weights with the new count
        self._merge()

    def fit(self, records: Iterable[Mapping[str, Any]], *, outside: TextStats | None = None) -> Self:
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
            due = (
                self._journal is None
                and n
                and stale > self.merge_fraction * n
                and stale > self.merge_min_rows
            )
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
                self.text_.append(
                    {old_text.terms_[i]: float(c) for i, c in zip(ids_, cnt, strict=True)}, len(self.rows_)
                )
                self._append(pid, old_table.row_values(src), int(old_hashes.a[src]), None)
        self._generation += 1
