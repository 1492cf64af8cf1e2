"""The policies an engine answers "which policies fit me" with: criteria catalogue + text vectors.

Policy vectors live in the profile index's term space (same vocabulary and idf), so a pair
scores the same whichever direction it is asked from.  They are rebuilt lazily: in full when
the idf changes (a compaction), and only for the policies concerned when the vocabulary
gains a term that some policy uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._catalog import PolicyCatalog
from ._hierarchy import Hierarchy
from ._records import CompiledPolicy
from ._tfidf import TfidfIndex

__all__ = ["PolicySet"]


class PolicySet:
    """Compiled policies of one audience with their catalogue and a CSC ``policies x terms``."""

    def __init__(self, hierarchies: Mapping[str, Hierarchy]) -> None:
        self.hierarchies = hierarchies
        self.policies: dict[str, CompiledPolicy] = {}
        self._catalog: PolicyCatalog | None = None
        self._order: list[CompiledPolicy] = []
        self._until = np.zeros(0, np.int64)
        self._vectors: list[tuple[np.ndarray, np.ndarray]] = []
        self._oov: dict[str, set[int]] = {}
        self._matrix: sp.csc_matrix | None = None
        self._seen: tuple[int, int] = (-1, -1)  # (tfidf generation, vocabulary size) of the vectors

    def __len__(self) -> int:
        return len(self.policies)

    def put(self, policies: Iterable[CompiledPolicy]) -> None:
        for p in policies:
            self.policies[p.id] = p
        self._catalog = None

    def remove(self, policy_id: str) -> bool:
        found = self.policies.pop(policy_id, None) is not None
        self._catalog = None if found else self._catalog
        return found

    def catalog(self) -> tuple[PolicyCatalog, list[CompiledPolicy], np.ndarray]:
        """(catalogue, policies in catalogue order, apply_until int64 with None as max)."""
        if self._catalog is None:
            self._order = sorted(self.policies.values(), key=lambda p: p.id)
            self._catalog = PolicyCatalog(self.hierarchies).build([p.criteria for p in self._order])
            self._until = np.asarray([p.apply_until or 99991231 for p in self._order], np.int64)
            self._seen = (-1, -1)
        return self._catalog, self._order, self._until

    def matrix(self, tfidf: TfidfIndex, generation: int) -> sp.csc_matrix:
        """``float32[n_policies, n_terms]`` CSC of normalised policy vectors in ``tfidf``'s space."""
        self.catalog()
        n_terms = len(tfidf.terms_)
        if self._seen[0] != generation:
            self._vectors, self._oov = [], {}
            for i, p in enumerate(self._order):
                ids, cnt, oov = p.term_counts(tfidf.vocabulary_)
                self._vectors.append(tfidf.weigh(ids, cnt))
                for t in oov:
                    self._oov.setdefault(t, set()).add(i)
            self._matrix = None
        elif self._seen[1] != n_terms:
            touched: set[int] = set()
            for t in tfidf.terms_[self._seen[1] :]:
                touched |= self._oov.pop(t, set())
            for i in touched:
                ids, cnt, _ = self._order[i].term_counts(tfidf.vocabulary_)
                self._vectors[i] = tfidf.weigh(ids, cnt)
            if touched:
                self._matrix = None
        if self._matrix is None or self._matrix.shape[1] != n_terms:
            lens = [len(v[0]) for v in self._vectors]
            indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
            ids = np.concatenate([v[0] for v in self._vectors]) if self._vectors else np.zeros(0, np.int32)
            ws = np.concatenate([v[1] for v in self._vectors]) if self._vectors else np.zeros(0, np.float32)
            self._matrix = sp.csr_matrix((ws, ids, indptr), shape=(len(self._order), n_terms)).tocsc()
        self._seen = (generation, n_terms)
        return self._matrix

    def sources(self) -> list[dict[str, Any]]:
        return [{"source": p.source, "tokens": list(p.tokens)} for p in self.policies.values()]
