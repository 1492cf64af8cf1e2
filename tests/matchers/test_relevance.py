"""The engine's ranking against plain TF-IDF and BM25 on the labelled relevance set
(tests/data/relevance), in one run, as ``python -m bench.relevance`` prints it."""

from __future__ import annotations

import pytest

from bench.relevance.data import load
from bench.relevance.run import bm25_scorer, engine_scorer, engines, evaluate, summary, tfidf_scorer


@pytest.fixture(scope="module")
def results(tokenizer):
    data = load()
    scorers = {"engine": engine_scorer(engines(data, tokenizer)), "tfidf": tfidf_scorer(data), "bm25": bm25_scorer(data)}
    return data, {name: evaluate(data, fn, data.policy_ids()) for name, fn in scorers.items()}


def test_the_set_is_as_documented(results):
    data, _ = results
    pairs = [r for pool in data.pools.values() for _, r in pool]
    assert len(pairs) >= 400 and set(pairs) == {0, 1, 2}
    assert {data.split[p] for p in data.pools} == {"dev", "test"}
    assert all(pid in data.policies for pid in data.pools)


@pytest.mark.parametrize("split", ["dev", "test"])
def test_engine_ranks_above_tfidf_and_bm25(results, split):
    data, res = results
    ids = data.policy_ids(split)
    ndcg = {name: summary({p: v for p, v in per.items() if p in ids}) for name, per in res.items()}
    for base in ("tfidf", "bm25"):
        assert ndcg["engine"][0] > ndcg[base][0], (split, ndcg)  # NDCG@10
        assert ndcg["engine"][1] > ndcg[base][1], (split, ndcg)  # MAP
