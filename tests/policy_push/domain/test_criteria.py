"""Every rule of the criteria language's validation (formats.md)."""

from typing import Any

import pytest

from policy_push.domain.criteria import validate_criteria
from policy_push.refdata import load_reference_data

REF = load_reference_data()


def errs(criteria: Any, audience: str = "enterprise", max_depth: int = 32) -> dict[str, str]:
    return {e.field: e.msg for e in validate_criteria(criteria, audience, REF, max_depth=max_depth)}


def cond(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


GOOD = [
    ("enterprise", cond("region", "within", ["211100"])),
    ("enterprise", cond("industry", "within", ["C", "35", "351", "3512"])),
    ("enterprise", cond("size", "in", ["small", "micro"])),
    ("enterprise", cond("size", "eq", "small")),
    ("enterprise", cond("tax_credit_rating", "not_in", ["C", "D"])),
    ("enterprise", cond("employees", "gte", 10)),
    ("enterprise", cond("annual_revenue_wan", "between", [100, None])),
    ("enterprise", cond("established_on", "between", [None, "2021-01-01"])),
    ("enterprise", cond("established_years", "gt", 2)),
    ("enterprise", cond("qualifications", "has_all", ["高新技术企业"])),
    ("enterprise", cond("employees", "exists", True)),
    ("enterprise", {"not": cond("size", "ne", "large")}),
    ("enterprise", {"any": [{"all": [cond("size", "eq", "micro")]}, cond("employees", "lt", 5)]}),
    ("resident", cond("hukou_region", "prefix", ["2111"])),
    ("resident", cond("age", "between", [16, 60])),
    ("resident", cond("gender", "eq", "female")),
    ("resident", cond("tags", "has_none", ["低保"])),
]


@pytest.mark.parametrize(("audience", "criteria"), GOOD)
def test_valid_criteria(audience: str, criteria: Any) -> None:
    assert errs(criteria, audience) == {}


@pytest.mark.parametrize(
    ("audience", "criteria", "field", "needle"),
    [
        ("enterprise", cond("registered_capital_wan", "gte", 100), "criteria.field", "unknown field 'registered_capital_wan'"),
        ("enterprise", cond("age", "gte", 80), "criteria.field", "unknown field 'age' for enterprise"),
        ("resident", cond("size", "eq", "small"), "criteria.field", "unknown field 'size' for resident"),
        ("enterprise", cond("size", "one_of", ["small"]), "criteria.op", "unknown operator 'one_of'"),
        ("enterprise", cond("size", "within", ["small"]), "criteria.op", "does not fit field 'size'"),
        ("enterprise", cond("qualifications", "eq", "x"), "criteria.op", "does not fit"),
        ("enterprise", cond("employees", "gte", "50"), "criteria.value", "expected a number, got string '50'"),
        ("enterprise", cond("employees", "gte", True), "criteria.value", "expected a number"),
        ("enterprise", cond("size", "eq", "tiny"), "criteria.value", "not one of"),
        ("enterprise", cond("size", "in", "small"), "criteria.value", "takes a list"),
        ("enterprise", cond("size", "in", []), "criteria.value", "at least one"),
        ("enterprise", cond("region", "within", ["211105"]), "criteria.value.0", "unknown region code"),
        ("enterprise", cond("industry", "within", ["3519"]), "criteria.value.0", "unknown industry"),
        ("enterprise", cond("established_on", "gte", "2021-13-01"), "criteria.value", "not a real date"),
        ("enterprise", cond("established_on", "gte", 2021), "criteria.value", "expected a string"),
        ("enterprise", cond("employees", "between", [10]), "criteria.value", "[min, max]"),
        ("enterprise", cond("employees", "between", [None, None]), "criteria.value", "both are null"),
        ("enterprise", cond("employees", "between", [50, 10]), "criteria.value", "greater than max"),
        ("enterprise", cond("employees", "exists", "yes"), "criteria.value", "true or false"),
        ("enterprise", cond("qualifications", "has_any", ["x" * 33]), "criteria.value.0", "longer than 32"),
        ("enterprise", {"field": "size", "op": "eq"}, "criteria.value", "needs a value"),
        ("enterprise", {"field": "size", "op": "eq", "value": "small", "weight": 2}, "criteria", "unexpected key"),
        ("enterprise", {"all": []}, "criteria.all", "non-empty list"),
        ("enterprise", {"all": [cond("size", "eq", "small")], "any": []}, "criteria", "only key"),
        ("enterprise", {"both": []}, "criteria", "unknown criteria node"),
        ("enterprise", ["size"], "criteria", "expected an object"),
        ("enterprise", {"all": [cond("size", "eq", "small"), cond("x", "eq", 1)]}, "criteria.all.1.field", "unknown field"),
    ],
)
def test_invalid_criteria(audience: str, criteria: Any, field: str, needle: str) -> None:
    found = errs(criteria, audience)
    assert field in found, found
    assert needle in found[field]


def _nested(depth: int) -> Any:
    node: Any = cond("size", "eq", "small")
    for i in range(depth - 1):
        node = {"all" if i % 2 else "any": [node]}
    return node


def test_depth_limit_is_inclusive() -> None:
    assert errs(_nested(32)) == {}
    assert "deeper than 32" in errs(_nested(33))["criteria"]


def test_very_deep_trees_do_not_recurse() -> None:
    # far past Python's recursion limit: must come back as one error
    assert "deeper than 32" in errs(_nested(50_000))["criteria"]


def test_not_counts_towards_depth() -> None:
    node: Any = cond("size", "eq", "small")
    for _ in range(40):
        node = {"not": node}
    assert "deeper than 8" in errs(node, max_depth=8)["criteria"]
