"""Feedback that teaches: what a person said about one policy moves their score for similar ones.

A person can mark a policy 有用 (``useful``), 已申报 (``applied``) or 不相关 (``irrelevant``).  The
engine keeps, per profile, the latest mark on each policy together with that policy's query
vector (its heaviest ``TERMS_KEPT`` terms).  For another policy ``q``, the evidence is

    E = sum over the profile's marks of  weight(kind) * cosine(q, marked policy)

with weights useful +1, applied +1.5 and irrelevant -1.  The evidence moves the score ``s`` by a
bounded factor:

    g  = BOUND * tanh(E)             (so |g| < BOUND = 0.5)
    s' = s * (1 + g)                  (g < 0: never below half the score)
    s' = s * (1 + g * (1 - s))        (g > 0: at most 1.5 times the score, and never above 1)

One 不相关 on the very same policy multiplies the score by 1 - 0.5 tanh(1) = 0.62, and on a policy
that shares a third of its weight by 0.84.  Any number of clicks never takes a score below half.
So one click cannot bury a policy.  The ranking of people who said nothing never changes, and
scores stay in 0..1.  docs/ranking.md reports the effect measured on the labelled set.

Vectors are kept as terms (strings), so they survive a rebuild of the index from scratch, and the
cosine is taken over every term of the two policies (a policy's own words count even when no
profile uses them: a mark on the same policy gives evidence 1).  A term-major matrix of the marks
answers a query from the postings of its terms, so the cost of a query grows with the feedback
that mentions its terms, never with the number of eligible profiles.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["BOUND", "FEEDBACK_KINDS", "FeedbackEvent", "FeedbackStore", "adjust"]

#: the evidence weight of each kind of feedback
FEEDBACK_KINDS: dict[str, float] = {"useful": 1.0, "applied": 1.5, "irrelevant": -1.0}
#: the largest share by which feedback moves a score (see the module notes)
BOUND = 0.5
#: terms of a marked policy kept with the mark (the heaviest; they carry nearly all its weight)
TERMS_KEPT = 32


def adjust(scores: np.ndarray, evidence: np.ndarray) -> np.ndarray:
    """Scores moved by feedback evidence, bounded as the module notes say (vectorised)."""
    s = np.asarray(scores, np.float64)
    g = BOUND * np.tanh(np.asarray(evidence, np.float64))
    out = np.where(g < 0, s * (1 + g), s * (1 + g * (1 - s)))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True, slots=True)
class FeedbackEvent:
    """One person's latest mark on one policy."""

    profile_id: str
    policy_id: str
    kind: str
    at: str  # ISO date, or "" when not given
    terms: tuple[str, ...]
    weights: tuple[float, ...]

    def to_json(self) -> list[Any]:
        return [self.profile_id, self.policy_id, self.kind, self.at]


class FeedbackStore:
    """The marks of one audience's profiles, and their evidence for a query."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, FeedbackEvent]] = {}
        self._version = 0
        self._cache: tuple[Any, ...] | None = None

    def __len__(self) -> int:
        return sum(len(v) for v in self.events.values())

    def record(self, profile_id: str, policy_id: str, kind: str, terms: Sequence[str], weights: Sequence[float],
               at: dt.date | str | None = None) -> None:
        if kind not in FEEDBACK_KINDS:
            raise ValueError(f"feedback kind {kind!r} is not one of {', '.join(FEEDBACK_KINDS)}")
        w = np.asarray(weights, np.float64)
        keep = np.argsort(-w, kind="stable")[:TERMS_KEPT]
        ev = FeedbackEvent(profile_id, policy_id, kind, at.isoformat() if isinstance(at, dt.date) else (at or ""),
                           tuple(terms[i] for i in keep), tuple(float(w[i]) for i in keep))
        self.events.setdefault(profile_id, {})[policy_id] = ev
        self._version += 1

    def forget(self, profile_id: str, policy_id: str | None = None) -> int:
        """Drop a profile's marks (all, or the one on ``policy_id``); returns how many."""
        mine = self.events.get(profile_id)
        if not mine:
            return 0
        if policy_id is None:
            n = len(mine)
            del self.events[profile_id]
        else:
            n = int(mine.pop(policy_id, None) is not None)
            if not mine:
                del self.events[profile_id]
        self._version += n > 0
        return n

    def of(self, profile_id: str) -> list[FeedbackEvent]:
        return list(self.events.get(profile_id, {}).values())

    def __iter__(self) -> Iterable[FeedbackEvent]:
        return (e for mine in self.events.values() for e in mine.values())

    # -- evidence ----------------------------------------------------------------------------

    def profile_vector(self, profile_id: str) -> dict[str, float]:
        """sum of weight(kind) x the marked policies' vectors, as term -> weight."""
        out: dict[str, float] = {}
        for e in self.events.get(profile_id, {}).values():
            k = FEEDBACK_KINDS[e.kind]
            for t, w in zip(e.terms, e.weights, strict=True):
                out[t] = out.get(t, 0.0) + k * w
        return out

    def _matrix(self) -> tuple[sp.csc_matrix, list[str], dict[str, int]]:
        """profiles-with-feedback x the marks' terms (CSC), their ids, and the term -> column map."""
        if self._cache is not None and self._cache[0] == self._version:
            return self._cache[1], self._cache[2], self._cache[3]
        vocab: dict[str, int] = {}
        pids, indptr, ids, vals = [], [0], [], []
        for pid in self.events:
            vec = {t: w for t, w in self.profile_vector(pid).items() if w}
            if not vec:
                continue
            pids.append(pid)
            ids.extend(vocab.setdefault(t, len(vocab)) for t in vec)
            vals.extend(vec.values())
            indptr.append(len(ids))
        m = sp.csr_matrix((np.asarray(vals, np.float32), np.asarray(ids, np.int32), np.asarray(indptr, np.int64)),
                          shape=(len(pids), len(vocab))).tocsc()
        self._cache = (self._version, m, pids, vocab)
        return m, pids, vocab

    def evidence_for_query(self, terms: Sequence[str], weights: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(profile ids, evidence) of every profile whose marks share a term with the query
        (``terms`` and unit ``weights``, as ``PolicySet.query_terms`` gives them)."""
        if not self.events or not len(terms):
            return [], np.zeros(0, np.float32)
        m, pids, vocab = self._matrix()
        cols = [(vocab[t], w) for t, w in zip(terms, weights, strict=True) if t in vocab]
        if not pids or not cols:
            return [], np.zeros(0, np.float32)
        e = np.asarray(m[:, [c for c, _ in cols]] @ np.asarray([w for _, w in cols], np.float32)).ravel()
        nz = np.flatnonzero(e)
        return [pids[i] for i in nz], e[nz].astype(np.float32)

    # -- persistence -------------------------------------------------------------------------

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        events = list(self)
        vocab: dict[str, int] = {}
        lens = [len(e.terms) for e in events]
        arrays = {
            "indptr": np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
            "terms": np.asarray([vocab.setdefault(t, len(vocab)) for e in events for t in e.terms], np.int32),
            "weights": np.asarray([w for e in events for w in e.weights], np.float32),
        }
        return arrays, {"events": [e.to_json() for e in events], "terms": list(vocab)}

    @classmethod
    def from_state(cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> FeedbackStore:
        out = cls()
        vocab, ip = meta["terms"], arrays["indptr"]
        for i, (pid, pol, kind, at) in enumerate(meta["events"]):
            lo, hi = int(ip[i]), int(ip[i + 1])
            ev = FeedbackEvent(pid, pol, kind, at, tuple(vocab[j] for j in arrays["terms"][lo:hi]),
                               tuple(float(x) for x in arrays["weights"][lo:hi]))
            out.events.setdefault(pid, {})[pol] = ev
        out._version = 1
        return out
