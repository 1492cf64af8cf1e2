"""The text index, incremental updates, compaction, persistence and the tokenizer."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import threading

import numpy as np
import pytest

from matchers import MatchEngine, Tokenizer, clean_scope, shipped_path
from matchers._textindex import TextIndex

from .conftest import EVAL_DAY

DOMAIN_TERMS = ["专精特新", "高新技术企业", "小微企业", "稳岗返还", "创业担保贷款", "一次性扩岗补助", "技能提升补贴",
                "高龄津贴", "低保"]


def _reference_vectors(docs: list[dict[str, float]], k1: float, b: float) -> list[dict[str, float]]:
    """Plain-Python unit vectors: smooth idf x BM25-saturated weighted counts, L2-normalised."""
    n = len(docs)
    df: dict[str, int] = {}
    for d in docs:
        for t in d:
            df[t] = df.get(t, 0) + 1
    avgdl = sum(sum(d.values()) for d in docs) / n
    out = []
    for d in docs:
        dl = sum(d.values())
        w = {t: (math.log((1 + n) / (1 + df[t])) + 1) * c * (k1 + 1) / (c + k1 * (1 - b + b * dl / avgdl))
             for t, c in d.items()}
        norm = math.sqrt(sum(x * x for x in w.values())) or 1.0
        out.append({t: x / norm for t, x in w.items()})
    return out


def test_scores_equal_a_plain_reference_and_are_cosines():
    rng = random.Random(5)
    words = [f"词{i}" for i in range(40)]
    docs = []
    for _ in range(200):
        d: dict[str, float] = {}
        for _ in range(rng.randrange(0, 12)):
            t = rng.choice(words)
            d[t] = d.get(t, 0.0) + rng.choice([1.0, 2.0])  # field weights make counts non-integer sums
        docs.append(d)
    index = TextIndex.build(docs, k1=1.2, b=0.75)
    ref = _reference_vectors(docs, 1.2, 0.75)
    terms = [*rng.sample(words, 15), "未登录词"]
    q = np.asarray([rng.random() for _ in terms])
    q /= np.linalg.norm(q)
    want = np.asarray([sum(qw * v.get(t, 0.0) for t, qw in zip(terms, q, strict=True)) for v in ref])
    pairs = sorted((index.vocabulary_[t], w) for t, w in zip(terms, q, strict=True) if t in index.vocabulary_)
    ids = np.asarray([i for i, _ in pairs], np.int32)
    w = np.asarray([x for _, x in pairs], np.float32)
    np.testing.assert_allclose(index.score_all(ids, w), want, atol=1e-5)
    rows = np.arange(0, 200, 3)
    np.testing.assert_allclose(index.score_rows(ids, w, rows), want[rows], atol=1e-5)
    assert (want >= 0).all() and (want <= 1 + 1e-6).all()
    for row in (0, 7, 199):  # each stored row is a unit vector
        _, rw = index.row_vector(row)
        assert not len(rw) or np.linalg.norm(rw) == pytest.approx(1.0, abs=1e-5)


def test_scores_read_in_place_are_bit_for_bit_the_public_product(monkeypatch):
    """``score_all`` runs scipy's kernel on each posting list where it lies; the scores must be
    exactly those of the public ``base[:, ids] @ w`` (the ranking's ties depend on it), with rows
    appended after the base scored too."""
    import matchers._textindex as textindex

    rng = np.random.default_rng(11)
    words = [f"词{i}" for i in range(300)]
    docs = [{words[int(j)]: float(rng.choice([1.0, 2.0, 3.5])) for j in rng.integers(0, 300, rng.integers(1, 30))}
            for _ in range(3000)]
    index = TextIndex.build(docs)
    for _ in range(40):  # a delta beyond the base
        index.append({f"词{int(j)}": 1.0 for j in rng.integers(0, 320, 8)}, index.n_rows)
    assert index.n_rows > index.n_base
    ids = np.sort(rng.choice(300, 60, replace=False)).astype(np.int32)
    w = rng.random(60).astype(np.float32)
    w /= np.linalg.norm(w)
    fast = index.score_all(ids, w)
    public = np.asarray(index.base[:, ids] @ w, np.float32)
    assert textindex._csc_matvec is not None  # the kernel is there: the fast path was taken
    assert np.array_equal(fast[: index.n_base], public)
    assert np.array_equal(fast[index.n_base :], index.score_rows(ids, w, np.arange(index.n_base, index.n_rows)))
    monkeypatch.setattr(textindex, "_csc_matvec", None)
    assert np.array_equal(index.score_all(ids, w), fast)


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
    assert eng.table_.n_rows == len(final) and eng.text_.n_base == len(final)
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
    got = tokenizer.tokens("关于" + "和".join(DOMAIN_TERMS) + "的通知")
    assert set(DOMAIN_TERMS) <= set(got)  # every dictionary term kept whole (its parts follow it)
    assert not {"关于", "和", "的", "通知"} & set(got)
    assert tokenizer.tokens("") == [] and tokenizer.tokens(None) == []


@pytest.mark.parametrize(("text", "must"), [
    # out-of-vocabulary two-character words survive instead of falling apart into dropped singles
    ("个体工商户纾困发展", {"纾困", "个体工商户"}),
    ("企业稳岗扩岗", {"稳岗", "扩岗"}),
    ("减税降费", {"减税降费", "减税", "降费"}),
    # a compound meets its parts ("search mode")
    ("失业保险稳岗返还", {"失业保险稳岗返还", "稳岗返还", "失业保险", "稳岗", "返还"}),
    ("一次性扩岗补助", {"一次性扩岗补助", "扩岗补助", "扩岗"}),
    ("专精特新中小企业", {"专精特新中小企业", "专精特新", "中小企业"}),
])
def test_tokens_keep_short_words_and_parts_of_compounds(tokenizer, text, must):
    assert must <= set(tokenizer.tokens(text))


def test_parts_come_from_the_dictionary_cut_not_every_substring(tokenizer):
    assert "发性" not in tokenizer.tokens("挥发性有机物治理")
    assert tokenizer.tokens("的") == [] and "的" not in tokenizer.tokens("企业的发展")


def test_a_compound_meets_its_part_in_the_ranking(regions, industries, tokenizer):
    eng = MatchEngine("enterprise", regions, industries, tokenizer).fit([
        {"id": "a", "region": "211103", "business_scope": "劳务服务", "interests": "稳岗返还"},
        {"id": "b", "region": "211103", "business_scope": "劳务服务", "interests": "设备更新"},
        {"id": "c", "region": "211103", "business_scope": "纾困 个体户", "interests": None},
    ])
    pol = {"id": "p", "audience": "enterprise", "title": "失业保险稳岗返还", "criteria": None}
    assert next(m.profile_id for m in eng.match_policy(pol, on=EVAL_DAY).eligible) == "a"
    pol = {"id": "q", "audience": "enterprise", "title": "纾困资金", "criteria": None}
    assert next(m.profile_id for m in eng.match_policy(pol, on=EVAL_DAY).eligible) == "c"


def test_scope_boilerplate_is_not_text():
    scope = ("许可项目：危险化学品经营（依法须经批准的项目，经相关部门批准后方可开展经营活动）"
             "一般项目：化工产品销售（不含许可类化工产品）；技术服务（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）")
    cleaned = clean_scope(scope)
    assert "危险化学品经营" in cleaned and "化工产品销售" in cleaned and "技术服务" in cleaned
    for gone in ("许可项目", "一般项目", "批准", "营业执照", "不含", "许可类"):
        assert gone not in cleaned


def test_tokenizer_fingerprint_follows_what_decides_tokens(tmp_path):
    a, b = Tokenizer(), Tokenizer(subwords=False)
    assert a.fingerprint == Tokenizer().fingerprint != b.fingerprint
    words = tmp_path / "terms.txt"
    words.write_text("稳岗\n", encoding="utf-8")
    assert Tokenizer(user_dict=words).fingerprint != a.fingerprint


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


def test_an_index_of_another_format_or_tokenizer_is_refused(tmp_path, regions, industries, sample_records):
    tok = Tokenizer()
    eng = MatchEngine("enterprise", regions, industries, tok).fit(_records(sample_records)[:30])
    eng.save(tmp_path / "idx")
    with pytest.raises(ValueError, match="another tokenizer"):
        MatchEngine.load(tmp_path / "idx", regions, industries, Tokenizer(subwords=False))
    meta = json.loads((tmp_path / "idx" / "meta.json").read_text(encoding="utf-8"))
    meta["format"] = "policy_push.matchers/1"
    (tmp_path / "idx" / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ValueError, match="rebuild"):
        MatchEngine.load(tmp_path / "idx", regions, industries, tok)
