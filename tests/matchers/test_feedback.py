"""Feedback that teaches: 不相关 lowers a person's score for similar policies, 有用 and 已申报 raise
it, within bounds, persisted with the index, the same in both directions."""

from __future__ import annotations

import numpy as np
import pytest

from matchers import FEEDBACK_KINDS, MatchEngine, Tokenizer, UnknownProfileError
from matchers._feedback import BOUND, adjust

from .conftest import EVAL_DAY

PEOPLE = [
    {"id": f"x{i}", "region": "211103", "business_scope": scope, "interests": interests}
    for i, (scope, interests) in enumerate([
        ("化工产品销售；精细化工研发", "出口 外贸 信用保险"),
        ("化工产品销售；精细化工研发", "出口 外贸 信用保险"),
        ("化工产品销售；精细化工研发", "出口 外贸 信用保险"),
        ("软件开发；信息系统集成", "数字化 工业互联网"),
        ("餐饮服务；住宿服务", "消费券 文旅"),
    ])
]
EXPORT = {"id": "export", "audience": "enterprise", "title": "支持外贸企业投保出口信用保险",
          "summary": "出口信用保险保费补贴", "text": "对外贸企业出口信用保险保费给予补贴", "criteria": None}
EXPORT_2 = {"id": "export-2", "audience": "enterprise", "title": "关于出口信用保险统保平台的通知",
            "summary": "外贸企业出口信用保险", "text": "外贸企业投保出口信用保险，财政补贴保费", "criteria": None}
DIGITAL = {"id": "digital", "audience": "enterprise", "title": "中小企业数字化转型补助",
           "summary": "工业互联网 数字化改造", "text": "数字化转型服务商 工业互联网平台", "criteria": None}


@pytest.fixture
def engine(regions, industries, tokenizer):
    eng = MatchEngine("enterprise", regions, industries, tokenizer).fit(PEOPLE)
    eng.set_policies([EXPORT, EXPORT_2, DIGITAL])
    return eng


def _scores(eng, policy):
    return dict(zip([p["id"] for p in PEOPLE], eng.score_profiles(policy, [p["id"] for p in PEOPLE]), strict=True))


def test_irrelevant_lowers_similar_policies_and_useful_raises(engine):
    before = _scores(engine, EXPORT_2)
    digital = _scores(engine, DIGITAL)
    assert before["x0"] == before["x1"] == before["x2"] > 0
    engine.record_feedback("x0", "export", "irrelevant")
    engine.record_feedback("x1", "export", "useful")
    engine.record_feedback("x2", "export", "applied")
    after = _scores(engine, EXPORT_2)
    assert after["x0"] < before["x0"] < after["x1"] < after["x2"]
    # people who said nothing keep their scores exactly
    assert after["x3"] == before["x3"] and after["x4"] == before["x4"]
    # a policy that shares little with the marked one is hardly moved, and a zero stays zero
    moved = _scores(engine, DIGITAL)
    assert all(abs(moved[k] - digital[k]) < 0.01 for k in digital) and moved["x3"] == digital["x3"]
    assert all(moved[k] == 0 for k in digital if digital[k] == 0)
    # and the order follows: the person who said 不相关 comes last of the three look-alikes
    order = [m.profile_id for m in engine.match_policy(EXPORT_2, on=EVAL_DAY, top_k=None).eligible]
    assert order.index("x2") < order.index("x1") < order.index("x0")


def test_one_click_cannot_bury_a_policy(engine):
    before = _scores(engine, EXPORT)["x0"]
    engine.record_feedback("x0", "export", "irrelevant")
    once = _scores(engine, EXPORT)["x0"]
    assert once == pytest.approx(before * (1 - BOUND * np.tanh(1.0)), rel=0.02)  # the same policy: 0.62x
    for other in (EXPORT_2, DIGITAL):
        engine.record_feedback("x0", other, "irrelevant")
    assert _scores(engine, EXPORT)["x0"] >= before * (1 - BOUND) - 1e-6
    assert _scores(engine, EXPORT)["x0"] > 0


def test_adjust_is_bounded_and_keeps_scores_in_range():
    s = np.linspace(0, 1, 101, dtype=np.float32)
    for e in (-100.0, -1.0, -0.1, 0.0, 0.1, 1.0, 100.0):
        out = adjust(s, np.full_like(s, e))
        assert (out >= 0).all() and (out <= 1).all()
        assert (out >= s * (1 - BOUND) - 1e-6).all() and (out <= s * (1 + BOUND) + 1e-6).all()
    np.testing.assert_array_equal(adjust(s, np.zeros_like(s)), s)


def test_latest_mark_replaces_and_forget_and_remove(engine):
    engine.record_feedback("x0", "export", "irrelevant")
    engine.record_feedback("x0", "export", "useful")
    assert [(e.policy_id, e.kind) for e in engine.feedback("x0")] == [("export", "useful")]
    assert engine.forget_feedback("x0", "export") == 1 and engine.feedback("x0") == []
    engine.record_feedback("x1", "export", "irrelevant")
    engine.remove("x1")  # a removed person's marks go with them
    assert engine.feedback("x1") == []


def test_mistakes_are_refused(engine):
    with pytest.raises(UnknownProfileError):
        engine.record_feedback("nobody", "export", "useful")
    with pytest.raises(KeyError, match="not held"):
        engine.record_feedback("x0", "no-such-policy", "useful")
    with pytest.raises(ValueError, match="useful"):
        engine.record_feedback("x0", "export", "liked")
    assert set(FEEDBACK_KINDS) == {"useful", "applied", "irrelevant"}


def test_both_directions_agree_with_feedback(engine):
    engine.record_feedback("x0", "export", "irrelevant")
    engine.record_feedback("x3", DIGITAL, "applied")  # a policy given whole
    for pid in ("x0", "x3"):
        back = {m.policy_id: m.score for m in engine.match_profile(pid, on=EVAL_DAY, top_k=None).eligible}
        for policy in (EXPORT, EXPORT_2, DIGITAL):
            forward = {m.profile_id: m.score for m in engine.match_policy(policy, on=EVAL_DAY, top_k=None).eligible}
            assert back[policy["id"]] == pytest.approx(forward[pid], abs=1e-6)


def test_feedback_survives_upsert_compaction_and_reload(tmp_path, engine, regions, industries):
    engine.record_feedback("x0", "export", "irrelevant")
    want = _scores(engine, EXPORT_2)
    engine.upsert(dict(PEOPLE[0], region="211104"))  # the profile moves to a new row
    engine.compact()
    assert _scores(engine, EXPORT_2) == pytest.approx(want, abs=1e-6)
    engine.save(tmp_path / "idx")
    loaded = MatchEngine.load(tmp_path / "idx", regions, industries, Tokenizer())
    assert [(e.profile_id, e.policy_id, e.kind) for e in loaded.feedback()] == [("x0", "export", "irrelevant")]
    assert _scores(loaded, EXPORT_2) == pytest.approx(want, abs=1e-6)


def test_evidence_comes_only_from_marks_sharing_the_query_terms(engine):
    catering = {"id": "food", "audience": "enterprise", "title": "餐饮消费券", "text": "住宿 餐饮 消费券 文旅"}
    engine.record_feedback("x4", catering, "irrelevant")
    engine.record_feedback("x0", "export", "useful")
    q = engine._query(engine.compile_policy(EXPORT_2))
    pids, evidence = engine.feedback_.evidence_for_query(q.terms, q.term_weights)
    assert pids == ["x0"] and 0 < evidence[0] <= 1  # the catering mark shares no term: not read
