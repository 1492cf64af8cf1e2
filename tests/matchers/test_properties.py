"""Property tests: both vectorised evaluators agree with the plain reference evaluator."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchers import FIELDS, Audience, FieldKind, MatchEngine, is_sensitive

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


def _at(tree: dict[str, Any], path: str) -> tuple[dict[str, Any], int]:
    """The node at a criteria path ("criteria.all[1].not.any[0]") and how many ``not`` lie above it."""
    node, nots = tree, 0
    for part in path.split(".")[1:]:
        if part == "not":
            node, nots = node["not"], nots + 1
        else:
            key, _, idx = part.partition("[")
            node = node[key][int(idx.rstrip("]"))]
    return node, nots


def _kleene_with_only(node: dict[str, Any], cited: dict[int, bool | None], profile, on, parents) -> bool | None:
    """The tree's value when only the cited leaves are known (others unknown), by the reference."""
    if "all" in node or "any" in node:
        vals = [_kleene_with_only(c, cited, profile, on, parents) for c in node.get("all", node.get("any"))]
        if "all" in node:
            return False if False in vals else (None if None in vals else True)
        return True if True in vals else (None if None in vals else False)
    if "not" in node:
        v = _kleene_with_only(node["not"], cited, profile, on, parents)
        return None if v is None else not v
    return cited.get(id(node))


def _check_record(m, policy, profile, on, parents, audience, regions, industries) -> None:
    crit = policy["criteria"]
    texts = [d.text for d in m.details]
    assert list(m.reasons) == texts and len(set(texts)) == len(texts), "duplicate lines"
    for d in m.details:
        assert not re.search(r"(\S+) 属于 \1(\s|$)", d.text), f"tautology: {d.text}"
        leaf, nots = _at(crit, d.path)
        assert "field" in leaf and leaf["field"] == d.field
        truth = evaluate(leaf, profile, on, parents)
        spec = FIELDS[Audience(audience)][leaf["field"]]
        listed = leaf["value"] if spec.kind is FieldKind.TAGS and leaf["op"] != "exists" else []
        named = [t for t in listed if t in d.text]
        assert d.sensitive == any(is_sensitive(t) for t in named), d.text
        x = field_value(profile, leaf["field"], on)
        if d.state == "missing":
            assert truth is None and (x is None or leaf["op"] == "within") and leaf["field"] in m.missing
            assert d.text.startswith("缺少：") or "无法判断" in d.text
            assert d.advice.startswith("请")
            continue
        # a line that holds: the condition, read as the policy means it, is true of the profile
        assert d.state == "holds"
        assert truth is (nots % 2 == 0), (d.text, truth, nots)
        if spec.kind is FieldKind.CODE and leaf["op"] != "exists":
            tree = regions if spec.hierarchy == "region" else industries
            assert (tree.name(x) if x in tree else x) in d.text
        elif spec.kind is FieldKind.NUMBER and leaf["op"] != "exists":
            shown = str(int(x)) if float(x).is_integer() else f"{x:.4f}".rstrip("0").rstrip(".")
            assert d.text.startswith(f"{spec.label} {shown}")
        elif spec.kind is FieldKind.DATE and leaf["op"] != "exists":
            assert x.isoformat() in d.text
    if m.eligible:
        # read alone, the cited conditions justify eligibility: with every other condition
        # unknown, the tree is still true by Kleene logic
        cited = {}
        for d in m.details:
            assert d.paths[0] == d.path
            for path in d.paths:
                leaf, _ = _at(crit, path)
                cited[id(leaf)] = evaluate(leaf, profile, on, parents)
        assert _kleene_with_only(crit, cited, profile, on, parents) is True, (crit, m.reasons)
        assert not m.missing
        assert m.message_reason() is None or m.message_reason() in m.public_reasons
    else:
        assert m.details and all(d.state == "missing" for d in m.details)
        assert m.missing and all(profile.get(f) is None or f in ("age", "established_years", "region",
                                                                  "hukou_region", "industry") for f in m.missing)


@SETTINGS
@given(scenario())
def test_reasons_read_alone_justify_the_decision(regions, industries, tokenizer, parents, case):
    audience, profiles, policies, on = case
    engine = MatchEngine(audience, regions, industries, tokenizer).fit(profiles)
    engine.set_policies(policies)
    by_id = {r["id"]: r for r in profiles}
    by_pol = {p["id"]: p for p in policies}
    for p in policies:
        res = engine.match_policy(p, on=on, top_k=None)
        for m in res.eligible + res.unknown:
            _check_record(m, p, by_id[m.profile_id], on, parents, audience, regions, industries)
    for r in profiles:
        res = engine.match_profile(r["id"], on=on, top_k=None, include_unknown=True)
        for m in res.eligible + res.unknown:
            _check_record(m, by_pol[m.policy_id], r, on, parents, audience, regions, industries)
