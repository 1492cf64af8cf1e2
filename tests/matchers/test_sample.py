"""End to end on the shipped sample: the engine reproduces expected.jsonl in both directions."""

from __future__ import annotations

import pytest

from .conftest import EVAL_DAY, read_jsonl


@pytest.fixture(scope="module")
def expected() -> dict[tuple[str, str], str]:
    return {(x["policy_id"], x["profile_id"]): x["expected"] for x in read_jsonl("expected.jsonl")}


def test_policy_to_profiles_reproduces_expected(sample_engines, sample_policies, expected):
    got = {}
    for policy in sample_policies:
        res = sample_engines[policy["audience"]].match_policy(policy, on=EVAL_DAY, top_k=None)
        assert res.n_eligible == len(res.eligible) and res.n_unknown == len(res.unknown)
        for rec in res.eligible:
            assert rec.eligible and not rec.missing
            got[(policy["id"], rec.profile_id)] = "eligible"
        for rec in res.unknown:
            assert not rec.eligible and rec.missing
            got[(policy["id"], rec.profile_id)] = "unknown"
    assert got == expected


def test_profile_to_policies_reproduces_expected(sample_engines, sample_records, expected):
    got = {}
    for aud, records in sample_records.items():
        for rec in records:
            res = sample_engines[aud].match_profile(rec["id"], on=EVAL_DAY, top_k=None,
                                                    include_unknown=True, open_only=False)
            got.update({(m.policy_id, rec["id"]): "eligible" for m in res.eligible})
            got.update({(m.policy_id, rec["id"]): "unknown" for m in res.unknown})
    assert got == expected


def test_profile_to_policies_leaves_out_expired(sample_engines, sample_records):
    expired = {"pj-rsj-2025-016", "pj-sthjj-2025-007", "pj-mzj-2025-015"}
    for aud, records in sample_records.items():
        for rec in records[:50]:
            res = sample_engines[aud].match_profile(rec["id"], on=EVAL_DAY, top_k=None)
            assert not expired & {m.policy_id for m in res.eligible}


def test_scores_agree_in_both_directions(sample_engines, sample_policies):
    eng = sample_engines["enterprise"]
    policy = next(p for p in sample_policies if p["id"] == "pj-gxj-2026-012")
    res = eng.match_policy(policy, on=EVAL_DAY, top_k=None)
    assert [r.score for r in res.eligible] == sorted((r.score for r in res.eligible), reverse=True)
    for rec in res.eligible:
        assert 0.0 <= rec.score <= 1.0 + 1e-6
        back = eng.match_profile(rec.profile_id, on=EVAL_DAY, top_k=None)
        mine = next(m for m in back.eligible if m.policy_id == policy["id"])
        assert mine.score == pytest.approx(rec.score, abs=1e-5)
        assert mine.reasons == rec.reasons


def test_text_relevance_ranks_matching_scope_first(sample_engines, sample_policies):
    # the no-criteria 个体工商户 policy: every enterprise is eligible, text decides the order
    policy = next(p for p in sample_policies if p["id"] == "pj-scjgj-2026-008")
    res = sample_engines["enterprise"].match_policy(policy, on=EVAL_DAY, top_k=10)
    assert not res.has_criteria and res.n_eligible == 400 and len(res.eligible) == 10
    top = res.eligible[0]
    assert top.score > 0.1 and len(top.reasons) == 1 and top.details[0].state == "text"
    assert top.reasons[0].startswith("经营范围或关注事项涉及：")
    assert top.message_reason() == top.reasons[0]


def test_match_record_shape(sample_engines, sample_policies):
    policy = next(p for p in sample_policies if p["id"] == "pj-mzj-2026-006")
    res = sample_engines["resident"].match_policy(policy, on=EVAL_DAY, top_k=3)
    d = res.unknown[0].to_dict()
    assert set(d) == {"policy_id", "profile_id", "eligible", "score", "reasons", "missing"}
    assert d["eligible"] is False and d["missing"] and round(d["score"], 4) == d["score"]
    assert any(r.startswith("缺少：") for r in d["reasons"])
