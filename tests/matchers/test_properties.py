"""Property tests: both vectorised evaluators agree with the plain reference evaluator."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchers import FIELDS, Audience, FieldKind, MatchEngine

from .reference import evaluate, field_value

REGIONS = ["210000", "211100", "211102", "211103", "211103001", "211103400", "211104", "211122", "211122100",
           "210102", "110101", "219999", "211103999"]  # the last two are not in the table (withdrawn)
INDUSTRIES = ["C", "35", "351", "3512", "26", "261", "2614", "B", "07", "0711", "A", "01", "0111", "65", "I",
              "9999"]
QUALS = ["高新技术企业", "专精特新中小企业", "科技型中小企业", "HACCP认证"]
TAGS = ["低保", "特困", "残疾", "退役军人", "高校毕业生", "失业"]
DAYS = [dt.date(2026, 11, 26), dt.date(2025, 2, 28), dt.date(2025, 3, 1), dt.date(2024, 2, 29), dt.date(2024, 2, 28)]
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.function_scoped_fixture])

dates = st.one_of(
    st.dates(dt.date(1925, 1, 1), dt.date(2026, 12, 31)),
    st.sampled_from([dt.date(2000, 2, 29), dt.date(1946, 11, 26), dt.date(1946, 11, 27), dt.date(2021, 1, 1),
                     dt.date(2020, 12, 31), dt.date(2004, 2, 29), dt.date(1945, 3, 1)]),
)
numbers = st.one_of(st.integers(0, 400), st.sampled_from([19.5, 20.0, 300.0, 299.99, 2000.0]))


def maybe(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), s)


def enterprise(i: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "id": st.just(f"e{i}"), "region": maybe(st.sampled_from(REGIONS)),
        "industry": maybe(st.sampled_from(INDUSTRIES)),
        "size": maybe(st.sampled_from(["large", "medium", "small", "micro"])),
        "established_on": maybe(dates), "employees": maybe(numbers), "annual_revenue_wan": maybe(numbers),
        "total_assets_wan": maybe(numbers), "qualifications": maybe(st.lists(st.sampled_from(QUALS), max_size=3)),
        "tax_credit_rating": maybe(st.sampled_from("ABMCD")),
        "business_scope": st.sampled_from(["技术服务", "", "石油装备制造", None]),
        "interests": st.sampled_from(["融资", "", None]),
    })


def resident(i: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "id": st.just(f"r{i}"), "region": maybe(st.sampled_from(REGIONS)),
        "hukou_region": maybe(st.sampled_from(REGIONS)), "birth_date": maybe(dates),
        "gender": maybe(st.sampled_from(["male", "female"])),
        "tags": maybe(st.lists(st.sampled_from(TAGS), max_size=3)), "interests": st.sampled_from(["养老", "就业", None]),
    })


def scalar(spec: Any) -> st.SearchStrategy[Any]:
    if spec.kind is FieldKind.CODE:
        return st.sampled_from(REGIONS if spec.hierarchy == "region" else INDUSTRIES)
    if spec.kind is FieldKind.ENUM:
        return st.sampled_from(spec.choices)
    if spec.kind is FieldKind.DATE:
        return dates.map(dt.date.isoformat)
    if spec.name in ("age", "established_years"):
        return st.one_of(st.integers(0, 100), st.sampled_from([17.5, 80.0, 35.2]))
    return numbers


@st.composite
def condition(draw: st.DrawFn, audience: Audience) -> dict[str, Any]:
    spec = draw(st.sampled_from(sorted(FIELDS[audience].values(), key=lambda s: s.name)))
    op = draw(st.sampled_from(sorted(spec.operators)))
    if op == "exists":
        value: Any = draw(st.booleans())
    elif spec.kind is FieldKind.TAGS:
        value = draw(st.lists(st.sampled_from(QUALS if spec.name == "qualifications" else TAGS), max_size=3))
    elif op == "prefix":
        value = draw(st.lists(st.sampled_from(["21", "2111", "211103", "3", "C", "35", "0"]), max_size=2))
    elif op in ("in", "not_in", "within"):
        value = draw(st.lists(scalar(spec), max_size=3))
    elif op == "between":
        value = [draw(maybe(scalar(spec))), draw(maybe(scalar(spec)))]
    else:
        value = draw(scalar(spec))
    return {"field": spec.name, "op": op, "value": value}


def tree(audience: Audience) -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        condition(audience),
        lambda kids: st.one_of(
            st.lists(kids, max_size=4).map(lambda xs: {"all": xs}),
            st.lists(kids, max_size=4).map(lambda xs: {"any": xs}),
            kids.map(lambda x: {"not": x}),
        ),
        max_leaves=8,
    )


@st.composite
def scenario(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]], dt.date]:
    aud = draw(st.sampled_from([Audience.ENTERPRISE, Audience.RESIDENT]))
    n = draw(st.integers(1, 12))
    make = enterprise if aud is Audience.ENTERPRISE else resident
    profiles = [draw(make(i)) for i in range(n)]
    policies = [{"id": f"p{j}", "audience": aud.value, "title": "补贴", "text": "技术服务 融资 养老",
                 "criteria": draw(tree(aud)), "apply_until": None} for j in range(draw(st.integers(1, 4)))]
    return aud.value, profiles, policies, draw(st.sampled_from(DAYS))


def _expected(policies, profiles, on, parents) -> dict[tuple[str, str], bool | None]:
    return {(p["id"], r["id"]): evaluate(p["criteria"], r, on, parents) for p in policies for r in profiles}


@SETTINGS
@given(scenario())
def test_both_evaluators_agree_with_reference(regions, industries, tokenizer, parents, case):
    audience, profiles, policies, on = case
    engine = MatchEngine(audience, regions, industries, tokenizer).fit(profiles)
    engine.set_policies(policies)
    want = _expected(policies, profiles, on, parents)
    got: dict[tuple[str, str], bool | None] = {k: False for k in want}
    for p in policies:
        res = engine.match_policy(p, on=on, top_k=None)
        got.update({(p["id"], m.profile_id): True for m in res.eligible})
        got.update({(p["id"], m.profile_id): None for m in res.unknown})
        assert res.n_eligible + res.n_unknown + res.n_ineligible == len(profiles)
    assert got == want
    back: dict[tuple[str, str], bool | None] = {k: False for k in want}
    for r in profiles:
        res = engine.match_profile(r["id"], on=on, top_k=None, include_unknown=True)
        back.update({(m.policy_id, r["id"]): True for m in res.eligible})
        back.update({(m.policy_id, r["id"]): None for m in res.unknown})
    assert back == want


def _leaves(node: dict[str, Any]) -> list[dict[str, Any]]:
    if "all" in node or "any" in node:
        return [leaf for c in node.get("all", node.get("any", [])) for leaf in _leaves(c)]
    if "not" in node:
        return _leaves(node["not"])
    return [node]


@SETTINGS
@given(scenario())
def test_reasons_name_real_values_and_missing_never_met(regions, industries, tokenizer, parents, case):
    audience, profiles, policies, on = case
    engine = MatchEngine(audience, regions, industries, tokenizer).fit(profiles)
    by_id = {r["id"]: r for r in profiles}
    for p in policies:
        res = engine.match_policy(p, on=on, top_k=None)
        leaves = _leaves(p["criteria"])
        for m in res.eligible + res.unknown:
            assert len(m.reasons) == len(leaves)
            prof = by_id[m.profile_id]
            for leaf, text in zip(leaves, m.reasons, strict=True):
                spec = FIELDS[Audience(audience)][leaf["field"]]
                x = field_value(prof, leaf["field"], on)
                if leaf["op"] == "exists":
                    assert ("已填写" in text) == (x is not None)
                elif x is None:
                    assert text == f"缺少：{spec.label}"
                elif spec.kind is FieldKind.CODE:
                    tree = regions if spec.hierarchy == "region" else industries
                    assert tree.name(x) in text
                elif spec.kind is FieldKind.NUMBER:
                    shown = str(int(x)) if float(x).is_integer() else f"{x:.4f}".rstrip("0").rstrip(".")
                    assert text.startswith(f"{spec.label} {shown}")
                elif spec.kind is FieldKind.DATE:
                    assert x.isoformat() in text
            if m.eligible:
                assert not m.missing
            else:
                assert m.missing and all(by_id[m.profile_id].get(f) is None or f in ("age", "established_years")
                                         for f in m.missing)
