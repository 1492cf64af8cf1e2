"""Profile text vectors, kept both row-major and term-major, updated without a rebuild.

Layout (n = rows appended since the last compaction, t = terms):

* Persisted tokens, row-major CSR: ``indptr int64[n+1]``, ``term_ids int32[nnz]``, ``counts
  float32[nnz]``.  A count is a field-weighted count: the sum, over the fields a term occurs in,
  of its occurrences times the field's weight.  A restart or a compaction never re-cuts text.
* ``lengths float32[n]``: the sum of a row's counts (its weighted length).
* ``idf_ float32[t]``: smooth idf ``ln((1 + N) / (1 + df)) + 1`` over the N live rows, and
  ``avgdl_``, their mean length.  Both are learned at ``build`` or compaction and then frozen.  A
  term first seen later gets the idf of ``df = 1`` at that moment.  Freezing keeps every stored
  row's norm exact, so scores are true cosines under the frozen weights until the next
  compaction refreshes them.
* A row's weight of term t is BM25's saturated frequency times idf,
  ``idf[t] * c (k1 + 1) / (c + k1 (1 - b + b * length / avgdl))``, divided by the row's L2 norm
  (``norms float32[n]``).  ``weights float32[nnz]`` holds them beside the counts, so scoring a
  chosen set of rows is one sparse product, as cheap per entry as reading postings.
* Base segment, term-major: CSC ``float32`` of the normalised weights of rows ``[0, n_base)``, so
  a query reads only the postings of its own terms.  Rows appended later (the delta), and any
  chosen subset of rows, are scored through the CSR instead.

A shard (an index holding only some regions' profiles) is given the statistics of the profiles it
does not hold (``outside_``: their document frequency per term, count and summed length); idf and
avgdl are then those of the whole corpus, so its rows weigh exactly as in one index of every
profile.  ``outside_`` is frozen with them, saved with the index (``outside_state``) and changed only
when the shard's regions change (``ProfileIndex.hand_over``).

Term ids follow the order of the terms themselves after a build or a compaction (``in_term_order``),
so that every index adds a profile's terms in the same order and identical texts score bit for bit the
same on any shard; a term first seen later takes the next id until the next compaction.

Removing a row is the caller's business: the profile table masks a dead row.  The compaction
(``take``) drops dead rows, recomputes idf and avgdl, and rebuilds the base.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from ._columns import Grow

try:  # scipy's compiled kernels behind ``base[:, ids] @ w`` and ``csr[rows] @ q`` (``_base_product``, ``score_rows``)
    from scipy.sparse._sparsetools import csc_matvec as _csc_matvec
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
    from scipy.sparse._sparsetools import csr_row_index as _csr_row_index
except ImportError:  # a private module: should a scipy release drop it, the public products are used
    _csc_matvec = _csr_matvec = _csr_row_index = None

__all__ = ["TextIndex"]


def in_term_order(terms: list[str], term_ids: np.ndarray) -> tuple[list[str], dict[str, int], np.ndarray]:
    """The vocabulary renumbered in the order of the terms themselves, and ``term_ids`` mapped to it.

    A score is a float32 sum over the query's terms in ascending id; with ids in term order, any two
    indexes (one of every profile, or a shard's) add a profile's terms in the same order, so identical
    texts score bit for bit the same whichever index holds them, and ties stay ties across shards."""
    order = sorted(range(len(terms)), key=terms.__getitem__)
    new_id = np.empty(len(terms), np.int32)
    new_id[np.asarray(order, np.int64)] = np.arange(len(terms), dtype=np.int32)
    ordered = [terms[i] for i in order]
    return ordered, {t: i for i, t in enumerate(ordered)}, new_id[term_ids]


class TextIndex:
    """Term statistics and unit vectors of profile texts; rows align with the profile table."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = float(k1), float(b)
        self.vocabulary_: dict[str, int] = {}
        self.terms_: list[str] = []
        self.idf_ = Grow(np.float32)
        self.avgdl_ = 1.0
        self.indptr = Grow(np.int64, np.zeros(1, np.int64))
        self.term_ids = Grow(np.int32)
        self.counts = Grow(np.float32)
        self.weights = Grow(np.float32)
        self.lengths = Grow(np.float32)
        self.norms = Grow(np.float32)
        self.n_base = 0
        self.base: sp.csc_matrix | None = None
        self._csr: sp.csr_matrix | None = None
        #: (df by term, rows, summed length) of the profiles held elsewhere (a shard), or None
        self.outside_: tuple[Mapping[str, int], int, float] | None = None

    @property
    def n_rows(self) -> int:
        return self.norms.n

    @property
    def nnz(self) -> int:
        return self.term_ids.n

    # -- weights ----------------------------------------------------------------------------

    def _saturate(self, ids: np.ndarray, cnt: np.ndarray, length: np.ndarray | float) -> np.ndarray:
        k = self.k1 * (1 - self.b + self.b * np.asarray(length, np.float64) / self.avgdl_)
        return (self.idf_.a[ids] * cnt * (self.k1 + 1) / (cnt + k)).astype(np.float32)

    def doc_vector(self, ids: np.ndarray, cnt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(term ids, weighted counts) of a text -> its unit vector under the current weights."""
        if not len(ids):
            return ids, np.zeros(0, np.float32)
        w = self._saturate(ids, cnt, float(cnt.sum()))
        norm = float(np.sqrt(np.dot(w, w)))
        return ids, (w / norm if norm else w).astype(np.float32)

    # -- building ---------------------------------------------------------------------------

    def ids_of(self, terms: Mapping[str, float], grow: bool, n_live: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(sorted term ids, weighted counts) of ``terms``; unknown terms join the vocabulary when
        ``grow`` (with the idf of one row in ``n_live``), or are skipped."""
        pairs = []
        for t, c in terms.items():
            i = self.vocabulary_.get(t)
            if i is None:
                if not grow:
                    continue
                i = self.vocabulary_[t] = len(self.terms_)
                self.terms_.append(t)
                n_all = n_live + (self.outside_[1] if self.outside_ is not None else 0)
                self.idf_.append(math.log((1 + n_all) / 2) + 1)
            pairs.append((i, c))
        if not pairs:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        pairs.sort()
        return np.fromiter((i for i, _ in pairs), np.int32, len(pairs)), np.fromiter((c for _, c in pairs), np.float32, len(pairs))

    def append(self, terms: Mapping[str, float], n_live: int) -> int:
        """Add one row (a profile's weighted terms); new terms join the vocabulary.  Returns the row."""
        return self.append_ids(*self.ids_of(terms, True, n_live))

    def append_ids(self, ids: np.ndarray, cnt: np.ndarray) -> int:
        """Add one row from sorted term ids (of this vocabulary) and weighted counts."""
        self.term_ids.extend(ids)
        self.counts.extend(cnt)
        self.indptr.append(self.term_ids.n)
        length = float(cnt.sum())
        self.lengths.append(length)
        w = self._saturate(ids, cnt, length)
        norm = float(np.sqrt(np.dot(w, w))) or 1.0
        self.norms.append(norm)
        self.weights.extend(w / norm)
        self._csr = None
        return self.norms.n - 1

    def row_terms(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(term ids, weighted counts) of ``row``."""
        ip = self.indptr.a
        return self.term_ids.a[ip[row] : ip[row + 1]], self.counts.a[ip[row] : ip[row + 1]]

    @classmethod
    def build(cls, rows: Sequence[Mapping[str, float]], k1: float = 1.2, b: float = 0.75, *,
              outside: tuple[Mapping[str, int], int, float] | None = None) -> TextIndex:
        """Index ``rows`` (one term -> weighted count mapping per profile) from scratch; ``outside``:
        the statistics of the profiles a shard does not hold (module docstring)."""
        index = cls(k1, b)
        index.outside_ = outside
        vocab = index.vocabulary_
        flat_ids: list[int] = []
        flat_cnt: list[float] = []
        lens = np.empty(len(rows), np.int64)
        for r, terms in enumerate(rows):
            before = len(flat_ids)
            flat_ids.extend(vocab.setdefault(t, len(vocab)) for t in terms)
            flat_cnt.extend(terms.values())
            lens[r] = len(flat_ids) - before
        index.terms_, index.vocabulary_, ids = in_term_order(list(vocab), np.asarray(flat_ids, np.int32))
        indptr = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(lens, out=indptr[1:])
        index._set_rows(indptr, ids, np.asarray(flat_cnt, np.float32), np.ones(len(rows), bool))
        return index

    def _set_rows(self, indptr: np.ndarray, term_ids: np.ndarray, counts: np.ndarray, live: np.ndarray) -> None:
        """Install rows; recompute idf and avgdl (over ``live`` rows), norms and the base segment."""
        self.indptr, self.term_ids, self.counts = Grow(np.int64, indptr), Grow(np.int32, term_ids), Grow(np.float32, counts)
        n_terms = len(self.terms_)
        lens = np.diff(indptr)
        rows = np.repeat(np.arange(len(lens)), lens)
        lengths = np.bincount(rows, weights=counts, minlength=len(lens)).astype(np.float32)
        self.lengths = Grow(np.float32, lengths)
        n_live = int(live.sum())
        # summed in float64 whether or not a shard adds the outside rows' lengths: the same sum either way
        total = float(lengths[live].astype(np.float64).sum())
        df = np.bincount(term_ids[np.repeat(live, lens)], minlength=n_terms)
        if self.outside_ is not None:
            out_df, out_n, out_total = self.outside_
            n_live, total = n_live + out_n, total + out_total
            df = df + np.fromiter((out_df.get(t, 0) for t in self.terms_), np.int64, n_terms)
        self.avgdl_ = total / n_live if n_live and total > 0 else 1.0
        self.idf_ = Grow(np.float32, np.log((1 + n_live) / (1 + df)) + 1)
        w = self._saturate(term_ids, counts, lengths[rows])
        norms = np.sqrt(np.bincount(rows, weights=w.astype(np.float64) ** 2, minlength=len(lens))).astype(np.float32)
        norms[norms == 0] = 1.0
        self.norms = Grow(np.float32, norms)
        self.rebuild_base()

    def _row_weights(self, rows_of_nnz: np.ndarray, term_ids: np.ndarray, counts: np.ndarray) -> np.ndarray:
        w = self._saturate(term_ids, counts, self.lengths.a[rows_of_nnz])
        return (w / self.norms.a[rows_of_nnz]).astype(np.float32)

    def rebuild_base(self) -> None:
        """Make every current row part of the term-major base segment (weights recomputed)."""
        n = self.n_rows
        lens = np.diff(self.indptr.a)
        rows = np.repeat(np.arange(n), lens)
        w = self._row_weights(rows, self.term_ids.a, self.counts.a)
        self.weights = Grow(np.float32, w)
        csr = sp.csr_matrix((w, self.term_ids.a, self.indptr.a), shape=(n, len(self.terms_)))
        self.base = csr.tocsc()
        self.n_base = n
        self._csr = None

    def take(self, rows: np.ndarray) -> TextIndex:
        """Compaction: a new index of ``rows`` only, with idf and avgdl recomputed and one base."""
        ip = self.indptr.a
        starts, lens = ip[rows], ip[rows + 1] - ip[rows]
        indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        gather = np.repeat(starts - indptr[:-1], lens) + np.arange(indptr[-1])
        out = TextIndex(self.k1, self.b)
        # terms first seen after the build were numbered as they came: put back in term order
        out.terms_, out.vocabulary_, ids = in_term_order(self.terms_, self.term_ids.a[gather])
        out.outside_ = self.outside_
        out._set_rows(indptr, ids, self.counts.a[gather], np.ones(len(rows), bool))
        return out

    # -- querying ---------------------------------------------------------------------------

    def row_vector(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """The unit vector of a stored row: (term ids, weights)."""
        ip = self.indptr.a
        return self.term_ids.a[ip[row] : ip[row + 1]], self.weights.a[ip[row] : ip[row + 1]]

    def _rows_csr(self) -> sp.csr_matrix:
        if self._csr is None:
            self._csr = sp.csr_matrix((self.weights.a, self.term_ids.a, self.indptr.a),
                                      shape=(self.n_rows, len(self.terms_)))
        return self._csr

    def doc_freq(self, ids: np.ndarray) -> np.ndarray:
        """Rows of the base that hold each term (0 for a term the base does not have)."""
        out = np.zeros(len(ids), np.int64)
        if self.base is None:
            return out
        ip = self.base.indptr
        ok = ids < len(ip) - 1
        out[ok] = ip[ids[ok] + 1] - ip[ids[ok]]
        return out

    def postings_cost(self, ids: np.ndarray) -> int:
        """How many base postings a query on ``ids`` reads."""
        if self.base is None or not len(ids):
            return 0
        ip = self.base.indptr
        ok = ids[ids < len(ip) - 1]
        return int((ip[ok + 1] - ip[ok]).sum())

    def score_rows(self, ids: np.ndarray, weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Cosine of the query (unit vector over ``ids``) with each of ``rows`` (row-major: cost ~
        the rows' tokens)."""
        if not len(rows) or not len(ids):
            return np.zeros(len(rows), np.float32)
        q = np.zeros(len(self.terms_), np.float32)
        q[ids] = weights
        csr = self._rows_csr()
        if _csr_row_index is None or csr.data.dtype != np.float32 or csr.indptr.dtype != csr.indices.dtype:
            return np.asarray(csr[rows] @ q, np.float32).ravel()
        # what ``csr[rows] @ q`` runs, without the public path's checks and conversions (most of
        # its cost for a few thousand rows): the same kernels on the same arrays, so the same
        # float32 sums in the same order
        ip, index = csr.indptr, csr.indptr.dtype
        rows = np.asarray(rows, index)
        sub_ip = np.zeros(len(rows) + 1, index)
        np.cumsum(ip[rows + 1] - ip[rows], out=sub_ip[1:])
        sub_ind, sub_data = np.empty(int(sub_ip[-1]), index), np.empty(int(sub_ip[-1]), np.float32)
        _csr_row_index(len(rows), rows, ip, csr.indices, csr.data, sub_ind, sub_data)
        out = np.zeros(len(rows), np.float32)
        _csr_matvec(len(rows), len(q), sub_ip, sub_ind, sub_data, q, out)
        return out

    def _avg(self) -> float:
        return self.nnz / max(self.n_rows, 1)

    def score_all(self, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Cosine of the query with every row (term-major over the base, row-major over the delta)."""
        out = np.zeros(self.n_rows, np.float32)
        if not len(ids):
            return out
        n_base = self.n_base if self.base is not None else 0
        if n_base:
            in_base = ids < self.base.shape[1]
            self._base_product(ids[in_base], weights[in_base], out[:n_base])
        if self.n_rows > n_base:
            out[n_base:] = self.score_rows(ids, weights, np.arange(n_base, self.n_rows))
        return out

    def _base_product(self, ids: np.ndarray, weights: np.ndarray, out: np.ndarray) -> None:
        """``out += base[:, ids] @ weights`` (ids ascending), reading the postings where they lie.

        The public product first copies the query's columns out of the base (for a query on
        frequent terms, over a million postings), which costs more than the product itself;
        scipy's own kernel run on each posting list in place, in ascending term order, adds
        the same float32 terms in the same order, so the scores are bit for bit the same."""
        base = self.base
        assert base is not None
        if not len(ids):
            return
        if _csc_matvec is None or base.data.dtype != np.float32 or base.indptr.dtype != base.indices.dtype:
            out += np.asarray(base[:, ids] @ weights, np.float32)
            return
        ip, ind, data, n = base.indptr, base.indices, base.data, base.shape[0]
        xs = np.ascontiguousarray(weights, np.float32).reshape(-1, 1)
        for j, t in enumerate(ids.tolist()):
            _csc_matvec(n, 1, ip[t : t + 2], ind, data, xs[j], out)

    # -- persistence ------------------------------------------------------------------------

    def state(self) -> tuple[dict[str, np.ndarray], list[str]]:
        arrays = {"indptr": self.indptr.a, "term_ids": self.term_ids.a, "counts": self.counts.a,
                  "weights": self.weights.a, "lengths": self.lengths.a, "norms": self.norms.a, "idf": self.idf_.a,
                  "n_base": np.asarray([self.n_base]), "params": np.asarray([self.k1, self.b, self.avgdl_])}
        if self.base is not None:
            arrays.update({"base.indptr": self.base.indptr, "base.indices": self.base.indices,
                           "base.data": self.base.data, "base.shape": np.asarray(self.base.shape)})
        return arrays, self.terms_

    def outside_state(self) -> tuple[dict[str, np.ndarray], list[str]] | None:
        """``outside_`` as arrays and its terms (their own list: a term held only elsewhere is not in
        this vocabulary), or None when this is not a shard's index."""
        if self.outside_ is None:
            return None
        df, n, total = self.outside_
        terms = list(df)
        arrays = {"df": np.fromiter((df[t] for t in terms), np.int64, len(terms)),
                  "sums": np.asarray([float(n), float(total)], np.float64)}
        return arrays, terms

    def set_outside_state(self, arrays: Mapping[str, np.ndarray], terms: list[str]) -> None:
        n, total = (float(x) for x in arrays["sums"])
        self.outside_ = (dict(zip(terms, (int(x) for x in arrays["df"]), strict=True)), int(n), total)

    @classmethod
    def from_state(cls, arrays: Mapping[str, np.ndarray], terms: list[str]) -> TextIndex:
        k1, b, avgdl = (float(x) for x in arrays["params"])
        out = cls(k1, b)
        out.avgdl_ = avgdl
        out.terms_ = list(terms)
        out.vocabulary_ = {t: i for i, t in enumerate(out.terms_)}
        out.indptr, out.term_ids = Grow(np.int64, arrays["indptr"]), Grow(np.int32, arrays["term_ids"])
        out.counts, out.lengths = Grow(np.float32, arrays["counts"]), Grow(np.float32, arrays["lengths"])
        out.weights = Grow(np.float32, arrays["weights"])
        out.norms, out.idf_ = Grow(np.float32, arrays["norms"]), Grow(np.float32, arrays["idf"])
        out.n_base = int(arrays["n_base"][0])
        if "base.indptr" in arrays:
            shape = tuple(int(x) for x in arrays["base.shape"])
            out.base = sp.csc_matrix((arrays["base.data"], arrays["base.indices"], arrays["base.indptr"]), shape=shape)
        return out

    def nbytes(self) -> int:
        """Bytes held by the index's arrays (capacity included)."""
        total = sum(g._buf.nbytes for g in (self.idf_, self.indptr, self.term_ids, self.counts, self.weights,
                                             self.lengths, self.norms))
        if self.base is not None:
            total += self.base.data.nbytes + self.base.indices.nbytes + self.base.indptr.nbytes
        return total
