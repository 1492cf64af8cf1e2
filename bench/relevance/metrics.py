"""Ranking metrics per policy, from scikit-learn: NDCG@10 (graded gains, tied scores averaged)
and average precision (relevance >= 1 counts as relevant)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, ndcg_score


def ndcg_at(labels: np.ndarray, scores: np.ndarray, k: int = 10) -> float:
    return float(ndcg_score(labels[None, :], scores[None, :], k=k))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    relevant = labels >= 1
    if not relevant.any():
        return float("nan")
    return float(average_precision_score(relevant, scores))
