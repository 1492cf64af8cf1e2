"""The two baselines of the relevance benchmark, as plain as their libraries make them:
scikit-learn's ``TfidfVectorizer`` over jieba tokens (cosine), and ``rank_bm25.BM25Okapi``.

Both see the same fields the engine reads: a profile's business scope, interests, qualifications,
tags and declared policy categories; a policy's title, summary, text and categories.  Tokens are
``jieba.lcut`` in its default (precise, HMM) mode with whitespace and punctuation dropped, nothing
else: no field weights, no cleaning, no stop words."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import jieba
import numpy as np
from rank_bm25 import BM25Okapi
from sklearn.feature_extraction.text import TfidfVectorizer

_WORD = re.compile(r"\w")


def jieba_tokens(text: str) -> list[str]:
    return [w for w in jieba.lcut(text) if _WORD.search(w)]


def profile_doc(p: Mapping[str, Any]) -> str:
    parts = [p.get("business_scope"), p.get("interests"), *(p.get("qualifications") or ()), *(p.get("tags") or ()),
             *(p.get("categories") or ())]
    return " ".join(x for x in parts if x)


def policy_doc(p: Mapping[str, Any]) -> str:
    return "\n".join([*(str(p.get(k) or "") for k in ("title", "summary", "text")), *(p.get("categories") or ())])


class TfidfBaseline:
    """Cosine of L2-normalised tf-idf vectors, fitted on the policies and profiles of one audience."""

    def __init__(self, profiles: Sequence[Mapping[str, Any]], policies: Sequence[Mapping[str, Any]]) -> None:
        self.ids = {p["id"]: i for i, p in enumerate(profiles)}
        self.vec = TfidfVectorizer(tokenizer=jieba_tokens, token_pattern=None, lowercase=False)
        self.vec.fit([profile_doc(p) for p in profiles] + [policy_doc(p) for p in policies])
        self.docs = self.vec.transform([profile_doc(p) for p in profiles])

    def scores(self, policy: Mapping[str, Any], profile_ids: Sequence[str]) -> np.ndarray:
        q = self.vec.transform([policy_doc(policy)])
        rows = [self.ids[i] for i in profile_ids]
        return np.asarray((self.docs[rows] @ q.T).todense()).ravel()


class Bm25Baseline:
    """Okapi BM25 (k1 = 1.5, b = 0.75, the library's defaults) over the profiles of one audience."""

    def __init__(self, profiles: Sequence[Mapping[str, Any]]) -> None:
        self.ids = {p["id"]: i for i, p in enumerate(profiles)}
        self.bm25 = BM25Okapi([jieba_tokens(profile_doc(p)) for p in profiles])

    def scores(self, policy: Mapping[str, Any], profile_ids: Sequence[str]) -> np.ndarray:
        all_scores = self.bm25.get_scores(jieba_tokens(policy_doc(policy)))
        return np.asarray([all_scores[self.ids[i]] for i in profile_ids])
