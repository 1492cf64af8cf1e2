"""TF-IDF over profile text, kept both row-major and term-major, updated without a rebuild.

Layout (n = rows ever appended since the last compaction, t = terms):

* tokens, row-major: CSR ``indptr int64[n+1]``, ``term_ids int32[nnz]``, ``counts float32[nnz]``.
  These are the persisted tokens of each profile: a restart or a compaction never re-cuts text.
* ``idf_ float32[t]``: smooth idf ``ln((1 + N) / (1 + df)) + 1`` (scikit-learn's), learned at
  ``fit``/compaction over the N live rows and then frozen; a term first seen later gets the idf
  of ``df = 1`` at that moment.  Freezing keeps every stored row's L2 norm exact, so scores are
  true cosines under the frozen weights until the next compaction refreshes them.
* ``norms float32[n]``: L2 norm of each row's ``counts * idf_``.
* base segment, term-major: CSC ``float32`` weights of rows ``[0, n_base)`` (``counts * idf /
  norm``), so a query reads only the postings of its own terms.  Rows appended later (the
  delta) and any subset of rows are scored through the CSR instead.

Removing a row is the caller's business (a dead row is masked by the profile table); the
compaction (``take``) drops dead rows, recomputes idf and rebuilds the base.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from ._columns import Grow

__all__ = ["TfidfIndex"]


class TfidfIndex:
    """Term statistics and vectors of profile texts; rows align with the profile table."""

    def __init__(self) -> None:
        self.vocabulary_: dict[str, int] = {}
        self.terms_: list[str] = []
        self.idf_ = Grow(np.float32)
        self.indptr = Grow(np.int64, np.zeros(1, np.int64))
        self.term_ids = Grow(np.int32)
        self.counts = Grow(np.float32)
        self.norms = Grow(np.float32)
        self.n_base = 0
        self.base: sp.csc_matrix | None = None
        self._csr: sp.csr_matrix | None = None

    @property
    def n_rows(self) -> int:
        return self.norms.n

    @property
    def nnz(self) -> int:
        return self.term_ids.n

    # -- building ---------------------------------------------------------------------------

    def _ids(self, tokens: Sequence[str], n_live: int, grow: bool) -> tuple[np.ndarray, np.ndarray]:
        ids = []
        for tok in tokens:
            i = self.vocabulary_.get(tok)
            if i is None:
                if not grow:
                    continue
                i = self.vocabulary_[tok] = len(self.terms_)
                self.terms_.append(tok)
                self.idf_.append(math.log((1 + n_live) / 2) + 1)
            ids.append(i)
        if not ids:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        uniq, cnt = np.unique(np.asarray(ids, np.int32), return_counts=True)
        return uniq, cnt.astype(np.float32)

    def append(self, tokens: Sequence[str], n_live: int) -> int:
        """Add one row (a profile's tokens); new terms join the vocabulary.  Returns the row."""
        ids, cnt = self._ids(tokens, n_live, grow=True)
        return self.append_ids(ids, cnt)

    def append_ids(self, ids: np.ndarray, cnt: np.ndarray) -> int:
        """Add one row from term ids and counts already in this vocabulary."""
        self.term_ids.extend(ids)
        self.counts.extend(cnt)
        self.indptr.append(self.term_ids.n)
        w = cnt * self.idf_.a[ids]
        self.norms.append(float(np.sqrt(np.dot(w, w))) or 1.0)
        self._csr = None
        return self.norms.n - 1

    def row_tokens(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(term ids, counts) of ``row``."""
        ip = self.indptr.a
        return self.term_ids.a[ip[row] : ip[row + 1]], self.counts.a[ip[row] : ip[row + 1]]

    @classmethod
    def build(cls, token_lists: Sequence[Sequence[str]]) -> TfidfIndex:
        """Index ``token_lists`` (one per row) from scratch: vocabulary, idf, norms and base."""
        index = cls()
        vocab = index.vocabulary_
        flat: list[int] = []
        lens = np.empty(len(token_lists), np.int64)
        for r, toks in enumerate(token_lists):
            before = len(flat)
            flat.extend(vocab.setdefault(t, len(vocab)) for t in toks)
            lens[r] = len(flat) - before
        index.terms_ = list(vocab)
        rows = np.repeat(np.arange(len(token_lists), dtype=np.int64), lens)
        ids = np.asarray(flat, np.int64)
        # (row, term) pairs -> unique pairs with counts; rows stay in order, terms sorted within
        key, cnt = np.unique(rows * max(len(vocab), 1) + ids, return_counts=True)
        r_u, t_u = np.divmod(key, max(len(vocab), 1))
        indptr = np.zeros(len(token_lists) + 1, np.int64)
        np.cumsum(np.bincount(r_u, minlength=len(token_lists)), out=indptr[1:])
        index._set_rows(indptr, t_u.astype(np.int32), cnt.astype(np.float32), np.ones(len(token_lists), bool))
        return index

    def _set_rows(self, indptr: np.ndarray, term_ids: np.ndarray, counts: np.ndarray, live: np.ndarray) -> None:
        """Install rows and recompute idf (over ``live`` rows), norms and the base segment."""
        self.indptr, self.term_ids, self.counts = Grow(np.int64, indptr), Grow(np.int32, term_ids), Grow(np.float32, counts)
        n_terms = len(self.terms_)
        lens = np.diff(indptr)
        row_live = np.repeat(live, lens)
        df = np.bincount(term_ids[row_live], minlength=n_terms)
        self.idf_ = Grow(np.float32, np.log((1 + live.sum()) / (1 + df)) + 1)
        w = counts * self.idf_.a[term_ids]
        rows = np.repeat(np.arange(len(lens)), lens)
        norms = np.sqrt(np.bincount(rows, weights=w * w, minlength=len(lens))).astype(np.float32)
        norms[norms == 0] = 1.0
        self.norms = Grow(np.float32, norms)
        self.rebuild_base()

    def rebuild_base(self) -> None:
        """Make every current row part of the term-major base segment."""
        n = self.n_rows
        lens = np.diff(self.indptr.a)
        w = self.counts.a * self.idf_.a[self.term_ids.a] / np.repeat(self.norms.a, lens)
        csr = sp.csr_matrix((w.astype(np.float32), self.term_ids.a, self.indptr.a), shape=(n, len(self.terms_)))
        self.base = csr.tocsc()
        self.n_base = n
        self._csr = None

    def take(self, rows: np.ndarray) -> TfidfIndex:
        """Compaction: a new index of ``rows`` only, with idf recomputed and a single base."""
        ip = self.indptr.a
        starts, lens = ip[rows], ip[rows + 1] - ip[rows]
        indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        gather = np.repeat(starts - indptr[:-1], lens) + np.arange(indptr[-1])
        out = TfidfIndex()
        out.vocabulary_, out.terms_ = dict(self.vocabulary_), list(self.terms_)
        out._set_rows(indptr, self.term_ids.a[gather], self.counts.a[gather], np.ones(len(rows), bool))
        return out

    # -- querying ---------------------------------------------------------------------------

    def query_vector(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """L2-normalised tf-idf of a text (a policy) over known terms: (term ids, weights)."""
        ids, cnt = self._ids(tokens, 0, grow=False)
        return self.weigh(ids, cnt)

    def weigh(self, ids: np.ndarray, cnt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(term ids, counts) -> (term ids, L2-normalised tf-idf weights float32)."""
        w = cnt * self.idf_.a[ids]
        norm = float(np.sqrt(np.dot(w, w)))
        return ids, (w / norm if norm else w).astype(np.float32)

    def row_vector(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """The normalised vector of a stored row: (term ids, weights)."""
        ids, cnt = self.row_tokens(row)
        return ids, (cnt * self.idf_.a[ids] / self.norms.a[row]).astype(np.float32)

    def _rows_csr(self) -> sp.csr_matrix:
        if self._csr is None:
            self._csr = sp.csr_matrix((self.counts.a, self.term_ids.a, self.indptr.a),
                                      shape=(self.n_rows, len(self.terms_)))
        return self._csr

    def postings_cost(self, ids: np.ndarray) -> int:
        """How many base postings a query on ``ids`` reads."""
        if self.base is None or not len(ids):
            return 0
        ip = self.base.indptr
        ok = ids[ids < len(ip) - 1]
        return int((ip[ok + 1] - ip[ok]).sum())

    def score_rows(self, ids: np.ndarray, weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Cosine of the query with each of ``rows`` (row-major: cost ~ the rows' tokens)."""
        if not len(rows) or not len(ids):
            return np.zeros(len(rows), np.float32)
        q = np.zeros(len(self.terms_), np.float32)
        q[ids] = weights * self.idf_.a[ids]
        return (self._rows_csr()[rows] @ q / self.norms.a[rows]).astype(np.float32)

    def score_all(self, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Cosine of the query with every row (term-major over the base, row-major over the delta)."""
        out = np.zeros(self.n_rows, np.float32)
        if not len(ids):
            return out
        if self.base is not None and self.n_base:
            in_base = ids < self.base.shape[1]
            if in_base.any():
                out[: self.n_base] = self.base[:, ids[in_base]] @ weights[in_base]
        if self.n_rows > self.n_base:
            delta = np.arange(self.n_base, self.n_rows)
            out[self.n_base :] = self.score_rows(ids, weights, delta)
        return out

    # -- persistence ------------------------------------------------------------------------

    def state(self) -> tuple[dict[str, np.ndarray], list[str]]:
        arrays = {"indptr": self.indptr.a, "term_ids": self.term_ids.a, "counts": self.counts.a,
                  "norms": self.norms.a, "idf": self.idf_.a, "n_base": np.asarray([self.n_base])}
        if self.base is not None:
            arrays.update({"base.indptr": self.base.indptr, "base.indices": self.base.indices,
                           "base.data": self.base.data, "base.shape": np.asarray(self.base.shape)})
        return arrays, self.terms_

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], terms: list[str]) -> TfidfIndex:
        out = cls()
        out.terms_ = list(terms)
        out.vocabulary_ = {t: i for i, t in enumerate(out.terms_)}
        out.indptr, out.term_ids = Grow(np.int64, arrays["indptr"]), Grow(np.int32, arrays["term_ids"])
        out.counts, out.norms = Grow(np.float32, arrays["counts"]), Grow(np.float32, arrays["norms"])
        out.idf_ = Grow(np.float32, arrays["idf"])
        out.n_base = int(arrays["n_base"][0])
        if "base.indptr" in arrays:
            shape = tuple(int(x) for x in arrays["base.shape"])
            out.base = sp.csc_matrix((arrays["base.data"], arrays["base.indices"], arrays["base.indptr"]),
                                     shape=shape)
        return out

    def nbytes(self) -> int:
        """Bytes held by the index's arrays (capacity included)."""
        total = sum(g._buf.nbytes for g in (self.idf_, self.indptr, self.term_ids, self.counts, self.norms))
        if self.base is not None:
            total += self.base.data.nbytes + self.base.indices.nbytes + self.base.indptr.nbytes
        return total
