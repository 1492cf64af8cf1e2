"""Validation of criteria trees, hierarchy edge cases, reasons wording."""

from __future__ import annotations

import datetime as dt

import pytest

from matchers import MAX_DEPTH, CriteriaError, Hierarchy, MatchEngine, NotFittedError, compile_criteria

DAY = dt.date(2026, 11, 26)


@pytest.mark.parametrize(("tree", "path"), [
    ({"field": "salary", "op": "eq", "value": 1}, "criteria.field"),
    ({"field": "age", "op": "eq", "value": 1}, "criteria.field"),  # a resident field
    ({"field": "region", "op": "gte", "value": "211100"}, "criteria.op"),
    ({"field": "region", "op": "like", "value": "2111"}, "criteria.op"),
    ({"field": "size", "op": "in", "value": ["huge"]}, "criteria.value"),
    ({"field": "employees", "op": "gte", "value": "20"}, "criteria.value"),
    ({"field": "employees", "op": "between", "value": [1]}, "criteria.value"),
    ({"field": "established_on", "op": "gte", "value": "2021-13-01"}, "criteria.value"),
    ({"field": "qualifications", "op": "has_any", "value": "高新技术企业"}, "criteria.value"),
    ({"all": [{"field": "employees", "op": "exists", "value": 1}]}, "criteria.all[0].value"),
    ({"all": {"field": "employees", "op": "exists", "value": True}}, "criteria.all"),
    ({"field": "employees", "op": "exists", "value": True, "extra": 1}, "criteria"),
])
def test_bad_criteria_raise_with_a_path(tree, path):
    with pytest.raises(CriteriaError) as err:
        compile_criteria(tree, "enterprise")
    assert err.value.path == path


def test_nesting_limit():
    tree: dict = {"field": "employees", "op": "exists", "value": True}
    for _ in range(MAX_DEPTH - 1):
        tree = {"not": tree}
    compile_criteria(tree, "enterprise")
    with pytest.raises(CriteriaError, match="32"):
        compile_criteria({"not": tree}, "enterprise")


def test_hierarchy_unknown_and_self_parent_codes():
    h = Hierarchy.from_pairs([("211100", "210000", "盘锦市"), ("210000", None, "辽宁省"), ("441900", "441900", "东莞市")])
    assert h.chain("211100") == ("211100", "210000")
    assert h.chain("219999") == ("219999",) and h.name("219999") == "219999"
    assert h.chain("441900") == ("441900",)
    assert h.is_within("211100", ["210000"]) and not h.is_within("219999", ["210000"])


@pytest.fixture
def engine(regions, industries, tokenizer):
    recs = [
        {"id": "a", "region": "211103", "industry": "3512", "size": "small", "established_on": dt.date(2016, 5, 10),
         "employees": 45, "annual_revenue_wan": 3200, "total_assets_wan": None, "qualifications": ["专精特新中小企业"],
         "tax_credit_rating": "B", "business_scope": "石油钻采专用设备制造", "interests": "技术改造"},
        {"id": "b", "region": "219999", "industry": None, "size": None, "established_on": None, "employees": None,
         "annual_revenue_wan": None, "total_assets_wan": None, "qualifications": [], "tax_credit_rating": None,
         "business_scope": None, "interests": None},
    ]
    return MatchEngine("enterprise", regions, industries, tokenizer).fit(recs)


def test_reasons_wording(engine):
    policy = {"id": "p", "audience": "enterprise", "title": "专精特新", "criteria": {"all": [
        {"field": "region", "op": "within", "value": ["211100"]},
        {"field": "size", "op": "in", "value": ["medium", "small", "micro"]},
        {"field": "qualifications", "op": "has_any", "value": ["专精特新中小企业"]},
        {"field": "established_years", "op": "gte", "value": 10},
        {"not": {"field": "tax_credit_rating", "op": "in", "value": ["C", "D"]}},
        {"any": [{"field": "total_assets_wan", "op": "gte", "value": 1}, {"field": "employees", "op": "gte", "value": 20}]},
    ]}}
    res = engine.match_policy(policy, on=DAY, top_k=None)
    assert [m.profile_id for m in res.eligible] == ["a"] and res.n_ineligible == 1
    # only the deciding branch: the "any" gives its satisfied branch, not the missing assets
    assert res.eligible[0].reasons == (
        "注册地 兴隆台区 属于 盘锦市", "企业规模 小型 符合", "资质 专精特新中小企业 符合",
        "成立年限 10 年，满足 ≥10 年", "纳税信用等级 B 符合（不为 C、D）", "从业人数 45 人，满足 ≥20 人",
    )
    assert all(d.state == "holds" for d in res.eligible[0].details)


def test_reasons_never_a_failed_branch_nor_a_tautology_nor_a_duplicate(engine):
    policy = {"id": "p", "audience": "enterprise", "criteria": {"all": [
        {"field": "region", "op": "within", "value": ["211103"]},
        {"any": [{"field": "tax_credit_rating", "op": "eq", "value": "A"},
                 {"field": "qualifications", "op": "has_any", "value": ["专精特新中小企业"]}]},
        {"field": "region", "op": "within", "value": ["211103"]},
    ]}}
    (m,) = engine.match_policy(policy, on=DAY).eligible
    assert m.reasons == ("注册地 兴隆台区 符合", "资质 专精特新中小企业 符合")
    assert not any("不符合" in r for r in m.reasons)


def test_missing_size_says_which_figures_to_add(engine):
    pol = {"id": "p", "audience": "enterprise", "criteria": {"field": "size", "op": "in", "value": ["small"]}}
    (m,) = engine.match_policy(pol, on=DAY).unknown
    assert m.reasons == ("缺少：企业规模，请补充从业人员、营业收入和资产总额（或直接填写企业规模）",)
    assert m.advice == ("请补充从业人员、营业收入和资产总额（或直接填写企业规模）",) and m.missing_labels == ("企业规模",)


def test_code_missing_from_the_table_is_itself_or_unknown(engine):
    # formats.md: within on a code the table does not know is true when that code is listed, and
    # otherwise unknown (not false): its place in the hierarchy cannot be told
    own = {"id": "p", "audience": "enterprise", "criteria": {"field": "region", "op": "within", "value": ["219999"]}}
    assert [m.profile_id for m in engine.match_policy(own, on=DAY).eligible] == ["b"]
    assert engine.match_policy(own, on=DAY).eligible[0].reasons == ("注册地 219999（代码表中无此代码） 符合",)
    prov = {"id": "q", "audience": "enterprise", "criteria": {"field": "region", "op": "within", "value": ["210000"]}}
    res = engine.match_policy(prov, on=DAY, top_k=None)
    assert [m.profile_id for m in res.eligible] == ["a"] and res.eligible[0].reasons == ("注册地 兴隆台区 属于 辽宁省",)
    assert [m.profile_id for m in res.unknown] == ["b"] and res.n_ineligible == 0
    assert res.unknown[0].reasons == ("注册地 219999 不在区划代码表中，无法判断是否属于 辽宁省",)
    assert res.unknown[0].missing == ("region",) and res.unknown[0].advice == ("请核对注册地的区划代码",)
    # the other direction agrees
    back = engine.match_profile("b", on=DAY, include_unknown=True)
    assert back.eligible == [] and back.unknown == []  # no policies held: nothing to say
    engine.set_policies([own, prov])
    back = engine.match_profile("b", on=DAY, include_unknown=True, open_only=False)
    assert [m.policy_id for m in back.eligible] == ["p"] and [m.policy_id for m in back.unknown] == ["q"]
    # not(within) on such a code is unknown too
    neg = {"id": "n", "audience": "enterprise", "criteria": {"not": prov["criteria"]}}
    assert [m.profile_id for m in engine.match_policy(neg, on=DAY, top_k=None).unknown] == ["b"]


def test_missing_field_is_unknown_and_listed(engine):
    pol = {"id": "p", "audience": "enterprise", "criteria": {"all": [
        {"field": "employees", "op": "gte", "value": 1}, {"field": "region", "op": "prefix", "value": ["21"]}]}}
    res = engine.match_policy(pol, on=DAY)
    assert [m.profile_id for m in res.unknown] == ["b"]
    assert res.unknown[0].missing == ("employees",)
    assert res.unknown[0].reasons[0] == "缺少：从业人数"


def test_wrong_audience_and_not_fitted(engine, regions, industries, tokenizer):
    with pytest.raises(ValueError, match="resident"):
        engine.match_policy({"id": "r", "audience": "resident", "criteria": None}, on=DAY)
    with pytest.raises(NotFittedError):
        MatchEngine("resident", regions, industries, tokenizer).match_policy({"id": "r", "audience": "resident"}, on=DAY)


def test_feb_29_birthday_counts_from_march_1(regions, industries, tokenizer):
    eng = MatchEngine("resident", regions, industries, tokenizer).fit(
        [{"id": "x", "region": "211103", "birth_date": dt.date(2008, 2, 29), "tags": []}])
    pol = {"id": "p", "audience": "resident", "criteria": {"field": "age", "op": "gte", "value": 18}}
    assert not eng.match_policy(pol, on=dt.date(2026, 2, 28)).eligible
    assert eng.match_policy(pol, on=dt.date(2026, 3, 1)).eligible[0].reasons == ("年龄 18 岁，满足 ≥18 岁",)


def test_sensitive_lines_are_marked_and_never_the_message_line(regions, industries, tokenizer):
    eng = MatchEngine("resident", regions, industries, tokenizer).fit([
        {"id": "r", "region": "211103", "birth_date": dt.date(1950, 1, 1), "tags": ["低保", "退役军人"],
         "interests": "养老"},
    ])
    pol = {"id": "p", "audience": "resident", "criteria": {"all": [
        {"field": "region", "op": "within", "value": ["211100"]},
        {"field": "tags", "op": "has_any", "value": ["低保", "特困"]},
        {"field": "age", "op": "gte", "value": 60},
    ]}}
    (m,) = eng.match_policy(pol, on=DAY).eligible
    assert m.reasons == ("居住地 兴隆台区 属于 盘锦市", "身份标签 低保 符合", "年龄 76 岁，满足 ≥60 岁")
    assert m.sensitive == (False, True, False)
    assert "身份标签 低保 符合" not in m.public_reasons and len(m.public_reasons) == 2
    # the message line: never sensitive, never age (about the person), region only as a last resort
    assert m.message_reason() == "居住地 兴隆台区 属于 盘锦市"
    d = m.to_dict(details=True)
    assert d["sensitive"] == [False, True, False] and d["advice"] == []
    assert set(m.to_dict()) == {"policy_id", "profile_id", "eligible", "score", "reasons", "missing"}
    vet = {"id": "v", "audience": "resident", "criteria": {"field": "tags", "op": "has_any", "value": ["退役军人"]}}
    (m,) = eng.match_policy(vet, on=DAY).eligible
    assert m.sensitive == (False,) and m.message_reason() == "身份标签 退役军人 符合"


def test_may_qualify_line_never_offered_for_a_message(engine):
    pol = {"id": "p", "audience": "enterprise", "criteria": {"field": "employees", "op": "gte", "value": 1}}
    res = engine.match_policy(pol, on=DAY)
    assert res.unknown[0].message_reason() is None  # "缺少：…" is never a reason to be told
    assert res.eligible[0].message_reason() == "从业人数 45 人，满足 ≥1 人"


def test_field_labels_in_chinese():
    from matchers import field_label

    assert field_label("tags") == "身份标签" and field_label("qualifications") == "资质"
    assert field_label("region", "enterprise") == "注册地" and field_label("region", "resident") == "居住地"
    assert field_label("business_scope") == "经营范围" and field_label("id_number") == "身份证号"
    assert field_label("annual_revenue_wan") == "营业收入"


def test_size_from_a_bare_industry_section_is_unknown(regions, industries, tokenizer):
    # formats.md: a size that must be derived from an industry given only as a section letter
    # (or another code too coarse to pick one SME threshold group) is unknown.  The service
    # derives sizes (policy_push.domain); the engine then reports such a profile as may-qualify.
    from policy_push.domain import matcher_record, parse_enterprise

    base = {"region": "211103", "established_on": "2018-01-01", "employees": 50, "annual_revenue_wan": 3000,
            "total_assets_wan": 2000, "qualifications": [], "tax_credit_rating": "A", "consent": True,
            "contact": {"phone": "13800000000"}, "channels": ["sms"], "categories": []}
    recs = [matcher_record(parse_enterprise({**base, "id": uid, "name": name, "industry": ind}))
            for uid, name, ind in (("91211103MA00000018", "批零", "F"), ("91211103MA0000002B", "零售", "5212"),
                                   ("91211103MA0000003E", "制造", "C"))]
    assert [r["size"] for r in recs] == [None, "medium", "small"]  # retail 50 people; industry 50 people
    eng = MatchEngine("enterprise", regions, industries, tokenizer).fit(recs)
    pol = {"id": "p", "audience": "enterprise", "criteria": {"field": "size", "op": "in", "value": ["medium", "small"]}}
    res = eng.match_policy(pol, on=DAY, top_k=None)
    assert {m.profile_id for m in res.eligible} == {recs[1]["id"], recs[2]["id"]}
    (m,) = res.unknown
    assert m.profile_id == recs[0]["id"] and m.missing == ("size",)
    assert m.reasons == ("缺少：企业规模，请补充细到行业大类的所属行业，或直接填写企业规模",)


def test_a_filled_in_line_is_quoted_last(engine):
    pol = {"id": "p", "audience": "enterprise", "criteria": {"all": [
        {"field": "employees", "op": "exists", "value": True},
        {"field": "region", "op": "within", "value": ["211100"]}]}}
    (m,) = engine.match_policy(pol, on=DAY).eligible
    assert m.reasons == ("从业人数 已填写，符合", "注册地 兴隆台区 属于 盘锦市")
    assert m.message_reason() == "注册地 兴隆台区 属于 盘锦市"
