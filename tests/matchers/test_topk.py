"""``top_rows`` and ``best_of`` give exactly the first k rows of the full ranked order."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from matchers._topk import best_of, top_rows


def ranked(mask: np.ndarray, scores: np.ndarray, k: int) -> tuple[list[int], list[float]]:
    """The plain answer: every masked row, sorted by (score descending, row ascending), cut at k."""
    rows = np.flatnonzero(mask)
    order = sorted(rows.tolist(), key=lambda r: (-float(scores[r]), r))[:k]
    return order, [float(scores[r]) for r in order]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 5000), st.floats(0.0, 1.0), st.integers(0, 300), st.booleans(), st.integers(0, 2**31 - 1))
def test_top_rows_is_the_head_of_the_full_order(n: int, density: float, k: int, levels: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random(n) < density
    # few distinct scores make ties at the k-th place (the hard case) common; continuous ones
    # make the threshold guess land between values
    scores = (rng.choice(np.asarray([0.0, 0.0, 0.1, 0.25, 0.5, 1.0], np.float32), n) if levels
              else rng.random(n).astype(np.float32))
    rows, got = top_rows(mask, scores, k)
    want_rows, want_scores = ranked(mask, scores, k)
    assert rows.tolist() == want_rows
    assert got.tolist() == want_scores


def test_top_rows_wide_mask_many_ties_and_a_short_mask() -> None:
    n = 200_000
    scores = np.zeros(n, np.float32)
    scores[np.arange(7, n, 997)] = 0.5  # 201 rows share one score, every other row scores 0
    mask = np.ones(n, bool)
    mask[7] = False
    for k in (1, 100, 200, 201, 250):
        rows, _ = top_rows(mask, scores, k)
        assert rows.tolist() == ranked(mask, scores, k)[0]
    few = np.zeros(n, bool)
    few[[5, 50_000, 199_999]] = True
    assert top_rows(few, scores, 100)[0].tolist() == ranked(few, scores, 100)[0]


def test_best_of_keeps_the_lowest_rows_among_ties_at_the_cut() -> None:
    rows = np.asarray([3, 8, 10, 11, 20, 40])
    scores = np.asarray([0.2, 0.9, 0.2, 0.2, 0.5, 0.2], np.float32)
    got, s = best_of(rows, scores, 4)
    assert got.tolist() == [8, 20, 3, 10]
    assert s.tolist() == [np.float32(0.9), 0.5, np.float32(0.2), np.float32(0.2)]
    assert best_of(rows, scores, 0)[0].tolist() == []
