"""Bulk building from a stream: profiles encoded in worker processes, indexed chunk by chunk.

``encode_rows`` turns a chunk of profile records into a ``RowChunk``: normalised values, and the
weighted terms as flat arrays over a chunk-local vocabulary (far cheaper to pass between
processes than one dict or list of strings per profile).  It is what a worker runs.

``EngineBuilder`` takes the chunks in order (in the main process) and installs the finished
index in an engine.  It holds only the compact arrays, never the records, so a build's memory is
close to the index's own.  A profile id seen before is refused (its rows' index in the chunk
and the row it clashes with are returned) so that the caller can report the line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._columns import Grow
from ._fields import Audience
from ._indexing import _text_hash
from ._ranking import PROFILE_FIELDS, Ranking, joined_fields, split_fields, weighted_terms
from ._table import ProfileTable, normalise_profile
from ._text import Tokenizer
from ._textindex import TextIndex, in_term_order

if TYPE_CHECKING:
    from ._engine import MatchEngine

__all__ = ["EngineBuilder", "RowChunk", "encode_rows"]


@dataclass(slots=True)
class RowChunk:
    """Encoded profiles: ``ids[i]``, ``values[i]`` (normalised), terms of row i are
    ``terms[term_idx[indptr[i]:indptr[i+1]]]`` with weighted ``counts``; ``hashes`` of the texts."""

    ids: list[str]
    values: list[dict[str, Any]]
    terms: list[str]
    indptr: np.ndarray
    term_idx: np.ndarray
    counts: np.ndarray
    hashes: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def encode_rows(records: Sequence[Mapping[str, Any]], audience: str | Audience, ranking: Ranking,
                tokenizer: Tokenizer) -> RowChunk:
    """Normalise and tokenise ``records`` (raises ValueError for a bad value, like ``fit``)."""
    aud = Audience(audience)
    weights = ranking.profile_weights()
    local: dict[str, int] = {}
    idx: list[int] = []
    cnt: list[float] = []
    indptr = np.zeros(len(records) + 1, np.int64)
    hashes = np.empty(len(records), np.uint64)
    values = []
    for i, r in enumerate(records):
        values.append(normalise_profile(r, aud))
        text = joined_fields(ranking.profile_texts(r))
        hashes[i] = _text_hash(text)
        terms = weighted_terms(split_fields(tokenizer.tokens(text), len(PROFILE_FIELDS)), weights)
        # sorted by term so that a row's ids, once mapped, need only one sort per chunk
        idx.extend(local.setdefault(t, len(local)) for t in terms)
        cnt.extend(terms.values())
        indptr[i + 1] = len(idx)
    return RowChunk([str(r["id"]) for r in records], values, list(local), indptr,
                    np.asarray(idx, np.int32), np.asarray(cnt, np.float32), hashes)


class EngineBuilder:
    """Index chunks into a fresh engine: ``add`` each chunk in order, then ``finish``."""

    def __init__(self, engine: MatchEngine) -> None:
        self.engine = engine
        self.table = ProfileTable(engine.audience, engine.regions, engine.industries)
        self.row_ids: list[str] = []
        self.rows: dict[str, int] = {}
        self.hashes = Grow(np.uint64)
        self.vocab: dict[str, int] = {}
        self._ids: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []
        self._lens: list[np.ndarray] = []

    def add(self, chunk: RowChunk) -> list[tuple[int, int]]:
        """Index the chunk's rows; returns ``(position in chunk, earlier row)`` of each id seen
        before, which is left out."""
        refused: list[tuple[int, int]] = []
        keep = np.ones(len(chunk), bool)
        rows, row_ids = self.rows, self.row_ids
        for i, pid in enumerate(chunk.ids):
            first = rows.get(pid)
            if first is not None:
                refused.append((i, first))
                keep[i] = False
                continue
            rows[pid] = len(row_ids)
            row_ids.append(pid)
        self.table.extend(chunk.values if not refused else [v for v, k in zip(chunk.values, keep, strict=True) if k])
        vocab = self.vocab
        to_global = np.fromiter((vocab.setdefault(t, len(vocab)) for t in chunk.terms), np.int32, len(chunk.terms))
        lens = np.diff(chunk.indptr)
        ids = to_global[chunk.term_idx]
        counts = chunk.counts
        if not keep.all():
            nnz_keep = np.repeat(keep, lens)
            ids, counts, lens = ids[nnz_keep], counts[nnz_keep], lens[keep]
        # each row's term ids ascending, as the index keeps them: sort by (row, id) in one go
        rows = np.repeat(np.arange(len(lens)), lens)
        order = np.lexsort((ids, rows))
        self._ids.append(ids[order])
        self._counts.append(counts[order])
        self._lens.append(lens)
        self.hashes.extend(chunk.hashes[keep])
        return refused

    def __len__(self) -> int:
        return len(self.row_ids)

    def finish(self) -> MatchEngine:
        """Install the index in the engine (idf, norms and the term-major base computed once)."""
        e = self.engine
        lens = np.concatenate(self._lens) if self._lens else np.zeros(0, np.int64)
        indptr = np.zeros(len(lens) + 1, np.int64)
        np.cumsum(lens, out=indptr[1:])
        term_ids = np.concatenate(self._ids) if self._ids else np.zeros(0, np.int32)
        counts = np.concatenate(self._counts) if self._counts else np.zeros(0, np.float32)
        self._ids, self._counts, self._lens = [], [], []
        text = TextIndex(e.ranking.k1, e.ranking.b)
        text.terms_, text.vocabulary_, term_ids = in_term_order(list(self.vocab), term_ids)
        text._set_rows(indptr, term_ids, counts, np.ones(len(lens), bool))
        del term_ids, counts
        with e._lock:
            e.table_, e.text_, e.hashes_ = self.table, text, self.hashes
            e.row_ids_, e.rows_ = self.row_ids, self.rows
            e._generation += 1
        return e
