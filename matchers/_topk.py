"""The best ``k`` rows of a masked score column, without gathering every masked row.

A wide filter (a policy whose criteria most profiles meet) leaves up to a million eligible rows;
listing them (``flatnonzero``), gathering their scores and partitioning them costs more than the
scoring itself.  ``top_rows`` instead guesses a score threshold from a strided sample of the
column, lists only the rows at or above it, and falls back to the whole mask when the guess was
too high, so the answer never depends on the guess: it is exactly the ``k`` masked rows that are
first in the order (score descending, row ascending), the order every ranked list uses.
"""

from __future__ import annotations

import numpy as np

__all__ = ["best_of", "top_rows"]

#: one row in ``_STRIDE`` is read for the threshold guess (62,500 of a million rows)
_STRIDE = 16
#: the guess aims at about this many times ``k`` rows above the threshold, so that sampling
#: noise rarely leaves fewer than ``k`` (which costs the fallback, never a wrong answer)
_MARGIN = 2


def best_of(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` first of ``rows`` (ascending) in (score descending, row ascending) order,
    returned in that order with their scores; ``scores`` align with ``rows``."""
    if k <= 0:
        return rows[:0], scores[:0]
    if len(rows) > k:
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]  # the k-th largest score
        above = scores > kth
        # every row above the k-th score is in; rows at it fill up, lowest rows first
        # (``rows`` ascending makes the first ones the lowest)
        tied = np.flatnonzero(scores == kth)[: k - int(np.count_nonzero(above))]
        keep = np.sort(np.concatenate([np.flatnonzero(above), tied]))
        rows, scores = rows[keep], scores[keep]
    order = np.lexsort((rows, -scores))
    return rows[order], scores[order]


def top_rows(mask: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows where ``mask`` holds that come first in (score descending, row ascending)
    order, in that order, with their scores.  ``mask`` is ``bool[n]``, ``scores`` ``float[n]``."""
    if k <= 0:
        return np.zeros(0, np.int64), scores[:0]
    sample = scores[::_STRIDE][mask[::_STRIDE]]
    want = _MARGIN * k // _STRIDE + 8
    if len(sample) > want:
        thr = np.partition(sample, len(sample) - want)[len(sample) - want]
        above = np.flatnonzero(mask & (scores > thr))
        if len(above) >= k:
            return best_of(above, scores[above], k)
        # fewer than k rows above the guess: the rest come from the rows at it, lowest first
        # (the ones below it are all worse), unless those are too few too
        at = np.flatnonzero(mask & (scores == thr))
        if len(at) >= k - len(above):
            rows = np.sort(np.concatenate([above, at[: k - len(above)]]))
            return best_of(rows, scores[rows], k)
    rows = np.flatnonzero(mask)
    return best_of(rows, scores[rows], k)
