"""The policies an engine holds: criteria catalogue, term statistics and query vectors.

A policy's query vector weighs each of its terms by the term's field-weighted count, its idf
among the policies held here, and its idf in a general corpus (``Ranking.query_idf``).  The
vector is L2-normalised over every term, so a term the profiles never use still counts in the norm.
Vectors live in the profile index's term space, so a pair scores the same whichever direction it
is asked from.  The ``policies x terms`` matrix used for profile -> policies is rebuilt lazily:
when the catalogue changes (the statistics move), or when the vocabulary gains a term some
policy uses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._catalog import PolicyCatalog
from ._hierarchy import Hierarchy
from ._ranking import Ranking, background_idf, policy_idf
from ._reasons import Explainer
from ._records import CompiledPolicy
from ._textindex import TextIndex

__all__ = ["PolicySet"]


class PolicySet:
    """Compiled policies of one audience with their catalogue and a CSC ``policies x terms``."""

    def __init__(self, hierarchies: Mapping[str, Hierarchy], ranking: Ranking | None = None) -> None:
        self.hierarchies = hierarchies
        self.ranking = ranking or Ranking()
        self.policies: dict[str, CompiledPolicy] = {}
        self.df_: Counter[str] = Counter()
        self._version = 0
        self._catalog: PolicyCatalog | None = None
        self._order: list[CompiledPolicy] = []
        self._until = np.zeros(0, np.int64)
        self._weights: list[tuple[list[str], np.ndarray]] = []  # per policy in order: top terms, unit weights
        self._parts: list[tuple[np.ndarray, np.ndarray]] = []  # per policy: query in index space
        self._oov: dict[str, set[int]] = {}  # term not (yet) in the vocabulary -> policies using it
        self._matrix: sp.csc_matrix | None = None
        self._seen: tuple[int, int] = (-1, -1)  # (catalogue version, vocabulary size) of the matrix
        self._index: TextIndex | None = None  # the index whose term space the matrix is in
        self._terms_m: tuple[int, sp.csc_matrix, dict[str, int]] | None = None  # policies x their terms
        self._queries: dict[tuple[int, int], tuple[CompiledPolicy, list[str], np.ndarray]] = {}
        self._explainers: dict[int, Explainer] = {}

    def __len__(self) -> int:
        return len(self.policies)

    def put(self, policies: Iterable[CompiledPolicy]) -> None:
        for p in policies:
            old = self.policies.get(p.id)
            if old is not None:
                self.df_.subtract(old.terms.keys())
            self.df_.update(p.terms.keys())
            self.policies[p.id] = p
        self._changed()

    def remove(self, policy_id: str) -> bool:
        old = self.policies.pop(policy_id, None)
        if old is None:
            return False
        self.df_.subtract(old.terms.keys())
        self._changed()
        return True

    def _changed(self) -> None:
        self.df_ = +self.df_  # drop zero counts
        self._version += 1
        self._catalog = None

    # -- query vectors -----------------------------------------------------------------------

    def query_terms(self, p: CompiledPolicy) -> tuple[list[str], np.ndarray]:
        """(terms, unit weights) of ``p``'s query, its heaviest ``max_query_terms`` only.  A policy
        not held here is weighed as if it were added (its own terms count in the statistics).
        Remembered per compiled policy until the catalogue changes."""
        key = (id(p), self._version)
        got = self._queries.get(key)
        if got is not None and got[0] is p:
            return got[1], got[2]
        terms, w = self._query_terms(p)
        if len(self._queries) >= 1024:
            self._queries.clear()
        self._queries[key] = (p, terms, w)
        return terms, w

    def _query_terms(self, p: CompiledPolicy) -> tuple[list[str], np.ndarray]:
        if not p.terms:
            return [], np.zeros(0, np.float32)
        mode = self.ranking.query_idf
        terms = list(p.terms)
        w = np.fromiter(p.terms.values(), np.float64, len(terms))
        if "policies" in mode:
            old = self.policies.get(p.id)
            n = len(self.policies) + (old is None)
            held = old is not None and old.terms.keys() == p.terms.keys()
            df = np.fromiter((self.df_.get(t, 0) + (0 if held else 1 - (old is not None and t in old.terms))
                              for t in terms), np.float64, len(terms))
            w *= np.asarray([policy_idf(int(d), n) for d in df])
        if "background" in mode:
            bg, median = background_idf()
            w *= np.fromiter((bg.get(t, median) for t in terms), np.float64, len(terms))
        norm = float(np.sqrt(np.dot(w, w)))
        if norm:
            w /= norm
        k = self.ranking.max_query_terms
        if k and len(terms) > k:
            keep = np.argpartition(-w, k - 1)[:k]
            terms, w = [terms[i] for i in keep], w[keep]
        return terms, w.astype(np.float32)

    def query_terms_in_space(self, p: CompiledPolicy, index: TextIndex) -> tuple[np.ndarray, np.ndarray]:
        """``p``'s query in ``index``'s term space with every term, frequent ones included."""
        return _in_space(*self.query_terms(p), index)

    def query_vector(self, p: CompiledPolicy, index: TextIndex,
                     terms: tuple[list[str], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``p``'s query in ``index``'s term space: (sorted term ids, weights), without the terms
        found in more than ``max_df`` of the profiles (``terms``: ``query_terms(p)`` if known)."""
        ids, ws = _in_space(*(terms if terms is not None else self.query_terms(p)), index)
        return _frequent_dropped(ids, ws, index, self.ranking.max_df, self.ranking.min_df_skip)

    # -- the catalogue (profile -> policies) -----------------------------------------------

    def catalog(self) -> tuple[PolicyCatalog, list[CompiledPolicy], np.ndarray]:
        """(catalogue, policies in catalogue order, apply_until int64 with None as max)."""
        if self._catalog is None:
            self._order = sorted(self.policies.values(), key=lambda p: p.id)
            self._catalog = PolicyCatalog(self.hierarchies).build([p.criteria for p in self._order])
            self._until = np.asarray([p.apply_until or 99991231 for p in self._order], np.int64)
            self._weights = [self.query_terms(p) for p in self._order]
            self._explainers = {}
            self._matrix = None
        return self._catalog, self._order, self._until

    def matrix(self, index: TextIndex) -> sp.csc_matrix:
        """``float32[n_policies, n_terms]`` CSC of the policies' query vectors in ``index``'s space."""
        self.catalog()
        n_terms = len(index.terms_)
        if self._matrix is not None and self._seen == (self._version, n_terms) and self._index is index:
            return self._matrix
        if self._matrix is None or self._seen[0] != self._version or self._index is not index:
            self._parts = [_in_space(terms, w, index) for terms, w in self._weights]
            self._oov = {}
            for i, (terms, _) in enumerate(self._weights):
                for t in terms:
                    if t not in index.vocabulary_:
                        self._oov.setdefault(t, set()).add(i)
        else:  # only the vocabulary grew: redo the policies that use one of its new terms
            touched: set[int] = set()
            for t in index.terms_[self._seen[1] :]:
                touched |= self._oov.pop(t, set())
            for i in touched:
                self._parts[i] = _in_space(*self._weights[i], index)
        lens = [len(ids) for ids, _ in self._parts]
        indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        ids = np.concatenate([i for i, _ in self._parts]) if self._parts else np.zeros(0, np.int32)
        ws = np.concatenate([w for _, w in self._parts]) if self._parts else np.zeros(0, np.float32)
        self._matrix = sp.csr_matrix((ws, ids, indptr), shape=(len(self._order), n_terms)).tocsc()
        self._seen, self._index = (self._version, n_terms), index
        return self._matrix

    def evidence(self, marks: Mapping[str, float]) -> np.ndarray:
        """For each policy in catalogue order: its query vector . ``marks`` (term -> weight), over
        all of each policy's heaviest terms (a profile's feedback evidence)."""
        self.catalog()
        if self._terms_m is None or self._terms_m[0] != self._version:
            vocab: dict[str, int] = {}
            ids = [vocab.setdefault(t, len(vocab)) for terms, _ in self._weights for t in terms]
            indptr = np.concatenate([[0], np.cumsum([len(t) for t, _ in self._weights])]).astype(np.int64)
            ws = np.concatenate([w for _, w in self._weights]) if self._weights else np.zeros(0, np.float32)
            m = sp.csr_matrix((ws, np.asarray(ids, np.int32), indptr), shape=(len(self._weights), len(vocab))).tocsc()
            self._terms_m = (self._version, m, vocab)
        _, m, vocab = self._terms_m
        cols = [(vocab[t], w) for t, w in marks.items() if t in vocab]
        if not cols:
            return np.zeros(m.shape[0], np.float32)
        return np.asarray(m[:, [c for c, _ in cols]] @ np.asarray([w for _, w in cols], np.float32)).ravel()

    def explainer(self, i: int) -> Explainer:
        """The reasons of the policy at catalogue position ``i``, remembered across profiles."""
        got = self._explainers.get(i)
        if got is None:
            got = self._explainers[i] = Explainer(self._order[i].criteria, self.hierarchies)
        return got

    def sources(self) -> list[dict[str, Any]]:
        return [{"source": p.source, "terms": dict(p.terms)} for p in self.policies.values()]


def _in_space(terms: list[str], w: np.ndarray, index: TextIndex) -> tuple[np.ndarray, np.ndarray]:
    vocab = index.vocabulary_
    pairs = sorted((vocab[t], float(x)) for t, x in zip(terms, w, strict=True) if t in vocab)
    if not pairs:
        return np.zeros(0, np.int32), np.zeros(0, np.float32)
    return (np.fromiter((i for i, _ in pairs), np.int32, len(pairs)),
            np.fromiter((x for _, x in pairs), np.float32, len(pairs)))


def _frequent_dropped(ids: np.ndarray, w: np.ndarray, index: TextIndex, max_df: float,
                      floor: int) -> tuple[np.ndarray, np.ndarray]:
    if max_df >= 1.0 or not len(ids) or index.n_base <= floor:
        return ids, w
    df = index.doc_freq(ids)
    keep = (df <= max_df * index.n_base) | (df < floor)
    return ids[keep], w[keep]
