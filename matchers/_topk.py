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

__all__ = ["best_of", "top_rows", "top_rows_of"]

#: one row in ``_STRIDE`` is read for the threshold guess (62,500 of a million rows)
_STRIDE = 16
#: the guess aims at about this many times ``k`` rows above the threshold, so that sampling
#: noise rarely leaves fewer than ``k`` (which costs the fallback, never a wrong answer)
_MARGIN = 2
#: a mask holding at most one row in ``_FEW`` is listed whole; rows above a guess are listed
#: from the scores alone when at most one in ``_FEW`` is
_FEW = 16


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
    return top_rows_of([mask], scores, [k])[0]


def top_rows_of(
    masks: list[np.ndarray], scores: np.ndarray, ks: list[int]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``top_rows(mask, scores, k)`` for each mask and its ``k``, over one score column: the
    sample is read once and the rows above the lowest guess are listed once for all masks
    (a policy's eligible and unknown lists are cut from the same scores)."""
    sample = scores[::_STRIDE]
    guesses: list[float | None] = []
    for mask, k in zip(masks, ks, strict=True):
        if k <= 0 or np.count_nonzero(mask) * _FEW <= len(mask):
            guesses.append(None)  # a narrow mask is listed whole: cheaper than any guess
            continue
        mine = sample[mask[::_STRIDE]]
        want = _MARGIN * k // _STRIDE + 8
        if len(mine) <= want:
            guesses.append(None)
        else:
            guesses.append(float(np.partition(mine, len(mine) - want)[len(mine) - want]))
    # a guess above which few rows of any mask lie (the sample tells) is served from one list of
    # the rows above the lowest such guess; a guess low in the column (a mask of rows scoring
    # little) reads its own mask instead
    few = [g for g in guesses if g is not None and np.count_nonzero(sample > g) * _FEW <= len(sample)]
    listed = np.flatnonzero(scores > min(few)) if few else None
    out = []
    for mask, k, thr in zip(masks, ks, guesses, strict=True):
        if k <= 0:
            out.append((np.zeros(0, np.int64), scores[:0]))
            continue
        if thr is not None:
            if listed is not None and thr in few:
                above = listed[mask[listed] & (scores[listed] > thr)]
            else:
                above = np.flatnonzero(mask & (scores > thr))
            if len(above) >= k:
                out.append(best_of(above, scores[above], k))
                continue
            # fewer than k rows above the guess: the rest come from the rows at it, lowest first
            # (the ones below it are all worse), unless those are too few too
            at = np.flatnonzero(mask & (scores == thr))
            if len(at) >= k - len(above):
                rows = np.sort(np.concatenate([above, at[: k - len(above)]]))
                out.append(best_of(rows, scores[rows], k))
                continue
        rows = np.flatnonzero(mask)
        out.append(best_of(rows, scores[rows], k))
    return out
