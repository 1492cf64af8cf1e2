"""TF-IDF, incremental updates, compaction, persistence and the tokenizer."""

from __future__ import annotations

import datetime as dt
import random
import threading

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from matchers import MatchEngine, Tokenizer, shipped_path
from matchers._tfidf import TfidfIndex

from .conftest import EVAL_DAY

DOMAIN_TERMS = ["专精特新", "高新技术企业", "小微企业", "稳岗返还", "创业担保贷款", "一次性扩岗补助", "技能提升补贴",
                "高龄津贴", "低保"]


def test_cosines_match_scikit_learn():
    rng = random.Random(5)
    words = [f"词{i}" for i in range(40)]
    docs = [[rng.choice(words) for _ in range(rng.randrange(0, 12))] for _ in range(200)]
    query = [rng.choice(words) for _ in range(30)] + ["未登录词"]
    vec = TfidfVectorizer(analyzer=lambda d: d, norm="l2", smooth_idf=True)
    want = (vec.fit_transform(docs) @ vec.transform([query]).T).toarray().ravel()
    index = TfidfIndex.build(docs)
    ids, w = index.query_vector(query)
    np.testing.assert_allclose(index.score_all(ids, w), want, atol=1e-5)
    rows = np.arange(0, 200, 3)
    np.testing.assert_allclose(index.score_rows(ids, w, rows), want[rows], atol=1e-5)


def _records(sample_records):
    return [dict(r) for r in sample_records["enterprise"]]


def _outcome(engine, policies):
    out = {}
    for p in policies:
        res = engine.match_policy(p, on=EVAL_DAY, top_k=None)
        out[p["id"]] = ({m.profile_id: m.score for m in res.eligible}, {m.profile_id for m in res.unknown})
    return out


def _same(a, b, scores: bool):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k][0].keys() == b[k][0].keys() and a[k][1] == b[k][1], k
        if scores:
            for pid, s in a[k][0].items():
                assert s == pytest.approx(b[k][0][pid], abs=1e-5)


@pytest.fixture(scope="module")
def ent_policies(sample_policies):
    return [p for p in sample_policies if p["audience"] == "enterprise"]


def test_incremental_equals_rebuild(regions, industries, tokenizer, sample_records, ent_policies):
    recs = _records(sample_records)
    final = {r["id"]: r for r in recs}
    eng = MatchEngine("enterprise", regions, industries, tokenizer, merge_fraction=10).fit(recs[:250])
    for r in recs[250:]:
        eng.upsert(r)
    for r in recs[:40]:  # changed figures and text
        final[r["id"]] = dict(r, region="211104", interests="出口 外贸 新增兴趣")
        eng.upsert(final[r["id"]])
    for r in recs[40:60]:
        del final[r["id"]]
        assert eng.remove(r["id"])
    assert not eng.remove("no-such-id") and len(eng) == len(final)
    fresh = MatchEngine("enterprise", regions, industries, tokenizer).fit(final.values())
    _same(_outcome(eng, ent_policies), _outcome(fresh, ent_policies), scores=False)
    eng.compact()
    assert eng.table_.n_rows == len(final) and eng.tfidf_.n_base == len(final)
    # after the merge idf is refreshed: scores are those of a fresh build
    _same(_outcome(eng, ent_policies), _outcome(fresh, ent_policies), scores=True)


def test_background_merge_keeps_concurrent_writes(regions, industries, tokenizer, sample_records, ent_policies):
    recs = _records(sample_records)
    eng = MatchEngine("enterprise", regions, industries, tokenizer, merge_fraction=10).fit(recs)
    for r in recs[:100]:
        eng.upsert(dict(r, interests="变更"))
    thread = eng.merge_in_background()
    final = {r["id"]: dict(r, interests="变更") if i < 100 else r for i, r in enumerate(recs)}
    for r in recs[100:130]:
        final[r["id"]] = dict(r, size="large")
        eng.upsert(final[r["id"]])
    for r in recs[130:140]:
        final.pop(r["id"])
        eng.remove(r["id"])
    thread.join(30)
    assert not thread.is_alive() and eng._journal is None
    fresh = MatchEngine("enterprise", regions, industries, tokenizer).fit(final.values())
    _same(_outcome(eng, ent_policies), _outcome(fresh, ent_policies), scores=False)


def test_unchanged_text_is_not_cut_again(regions, industries, sample_records):
    tok = Tokenizer()
    recs = _records(sample_records)[:20]
    eng = MatchEngine("enterprise", regions, industries, tok).fit(recs)
    calls = []
    real = tok.tokens
    tok.tokens = lambda text: calls.append(text) or real(text)  # type: ignore[method-assign]
    eng.upsert(dict(recs[0], size="large"))
    assert calls == []
    eng.upsert(dict(recs[1], interests="新的兴趣"))
    assert len(calls) == 1


def test_save_and_load_roundtrip(tmp_path, regions, industries, sample_records, ent_policies):
    tok = Tokenizer()
    eng = MatchEngine("enterprise", regions, industries, tok).fit(_records(sample_records))
    eng.set_policies(ent_policies)
    eng.upsert(dict(sample_records["enterprise"][0], region="211122"))
    eng.remove(sample_records["enterprise"][1]["id"])
    eng.save(tmp_path / "idx")
    eng.save(tmp_path / "idx")  # replacing an existing copy
    cut = []
    real = tok._block
    tok._block = lambda b: cut.append(b) or real(b)  # type: ignore[method-assign]
    loaded = MatchEngine.load(tmp_path / "idx", regions, industries, tok)
    assert cut == []  # nothing re-cut on reload
    assert len(loaded) == len(eng) and loaded.row_ids_ == eng.row_ids_
    _same(_outcome(loaded, ent_policies), _outcome(eng, ent_policies), scores=True)
    pid = sample_records["enterprise"][5]["id"]
    a = eng.match_profile(pid, on=EVAL_DAY, top_k=None)
    b = loaded.match_profile(pid, on=EVAL_DAY, top_k=None)
    assert [m.to_dict() for m in a.eligible] == [m.to_dict() for m in b.eligible]


def test_profile_record_not_in_index(sample_engines, sample_records):
    rec = dict(sample_records["resident"][0], id="walk-in", birth_date=dt.date(1940, 1, 1), hukou_region="211103")
    res = sample_engines["resident"].match_profile(rec, on=EVAL_DAY)
    assert "pj-mzj-2026-003" in {m.policy_id for m in res.eligible}


def test_tokenizer_dictionary_and_stopwords(tokenizer):
    terms = shipped_path("policy_terms.txt").read_text(encoding="utf-8").split()
    assert len(set(terms)) >= 200 and len(set(terms)) == len(terms)
    assert set(DOMAIN_TERMS) <= set(terms)
    text = "关于" + "和".join(DOMAIN_TERMS) + "的通知"
    got = tokenizer.tokens(text)
    assert got == DOMAIN_TERMS
    assert tokenizer.tokens("") == [] and tokenizer.tokens(None) == []


def test_tokenize_many_in_processes_equals_serial(tokenizer):
    texts = [f"石油钻采专用设备制造；技术服务{i % 7}；稳岗返还 创业担保贷款" for i in range(60)]
    assert tokenizer.tokenize_many(texts, n_jobs=2, chunk_size=10) == [tokenizer.tokens(t) for t in texts]


def test_automatic_background_merge(regions, industries, tokenizer, sample_records, ent_policies):
    recs = _records(sample_records)
    eng = MatchEngine("enterprise", regions, industries, tokenizer, merge_fraction=0.1, merge_min_rows=20).fit(recs)
    final = {r["id"]: r for r in recs}
    for r in recs[:120]:
        final[r["id"]] = dict(r, interests="稳岗 融资")
        eng.upsert(final[r["id"]])
    for _ in range(200):  # the merge runs in a daemon thread; wait for the last one
        if eng._journal is None and eng.table_.n_rows - len(eng) < 50:
            break
        threading.Event().wait(0.05)
    assert eng.table_.n_rows - len(eng) < 50  # dead rows were dropped by a merge
    fresh = MatchEngine("enterprise", regions, industries, tokenizer).fit(final.values())
    _same(_outcome(eng, ent_policies), _outcome(fresh, ent_policies), scores=False)
