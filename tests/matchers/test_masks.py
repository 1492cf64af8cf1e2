"""The column masks read by rank and range (``_columns``) against a plain per-row reading."""

from __future__ import annotations

import random

import numpy as np
import pytest

from matchers import Hierarchy, compile_criteria
from matchers._columns import CodeColumn, DateColumn, EnumColumn

REGIONS = Hierarchy.from_pairs([
    ("210000", None, "辽宁省"), ("211100", "210000", "盘锦市"), ("211102", "211100", "双台子区"),
    ("211103", "211100", "兴隆台区"), ("211122", "211100", "盘山县"), ("210100", "210000", "沈阳市"),
    ("210102", "210100", "和平区"), ("211122001", "211122", "某镇"),
])


def _condition(field: str, op: str, value: object, audience: str = "enterprise"):
    return compile_criteria({"field": field, "op": op, "value": value}, audience).conditions[0]


@pytest.mark.parametrize("seed", range(4))
def test_code_hit_by_rank_is_the_lookup_as_codes_arrive_in_any_order(seed: int) -> None:
    rng = random.Random(seed)
    known = list(REGIONS.parents)
    col = CodeColumn(REGIONS)
    conditions = [
        _condition("region", "within", ["211100"]),
        _condition("region", "within", ["210000"]),
        _condition("region", "in", ["211102", "210102", "211122001"]),  # several runs
        _condition("region", "in", [rng.choice(known) for _ in range(5)]),  # more than three, often
        _condition("region", "prefix", ["2111"]),
        _condition("region", "within", ["219999"]),  # a code nobody has
    ]
    for _ in range(5):
        # new codes (some unknown to the hierarchy, some sorting before every stored one) and
        # missing values join between queries: the ranks are rebuilt or extended
        batch = [rng.choice([*known, None, f"1{rng.randrange(10**5):05d}", f"2111{rng.randrange(99):02d}"])
                 for _ in range(rng.randrange(1, 200))]
        col.extend(batch)
        for cond in conditions:
            lut = col.lut(cond.op, cond.value)
            assert np.array_equal(col.hit(cond), np.take(lut, col.v.a, mode="wrap"))


@pytest.mark.parametrize("values", [["micro"], ["small", "medium"], ["large", "micro"], ["large", "medium", "small", "micro"]])
def test_enum_hit_by_range_is_equality_with_any_value(values: list[str]) -> None:
    rng = random.Random(1)
    col = EnumColumn(("large", "medium", "small", "micro"))
    col.extend([rng.choice(["large", "medium", "small", "micro", None]) for _ in range(500)])
    got = col.hit(_condition("size", "in", values))
    stored = [col.get(r) for r in range(len(col))]
    assert got.tolist() == [v in values for v in stored]


@pytest.mark.parametrize(("op", "value"), [
    ("gte", "2020-01-01"), ("lt", "2020-01-01"), ("between", ["2019-05-01", "2021-02-28"]),
    ("between", [None, "2018-12-31"]), ("eq", "2020-06-15"), ("ne", "2020-06-15"),
    ("gt", "2020-06-15"), ("lte", "2019-12-31"),
])
def test_date_hit_by_unsigned_range_is_the_comparison(op: str, value: object) -> None:
    rng = random.Random(2)
    col = DateColumn()
    edges = [20200615, 20010101, 20200101, 20191231, 20180101, 20210228]
    col.extend([rng.choice([None, rng.choice(edges), rng.randrange(1990, 2027) * 10000 + 101 + rng.randrange(12) * 100])
                for _ in range(2000)])
    cond = _condition("established_on", op, value)
    intervals, negate = cond.intervals()
    stored = [col.get(r) for r in range(len(col))]

    def inside(x: int) -> bool:
        return any((x >= lo if lc else x > lo) and (x <= hi if hc else x < hi) for lo, lc, hi, hc in intervals)

    want = [x is not None and inside(x) != negate for x in stored]
    assert col.hit(cond).tolist() == want


@pytest.mark.parametrize("value", [[18, 35], [60, None], [None, 17], [40, 39]])
def test_years_by_unsigned_range_are_whole_years(value: list[int | None]) -> None:
    rng = random.Random(3)
    on = 20261126
    col = DateColumn()
    col.extend([None if rng.random() < 0.1 else rng.randrange(1930, 2026) * 10000 + 101 + rng.randrange(12) * 100
                + rng.randrange(28) for _ in range(3000)])
    cond = _condition("age", "between", value, "resident")
    lo, hi = value
    years = [None if b is None else (on - b) // 10000 for b in (col.get(r) for r in range(len(col)))]
    want = [y is not None and (lo is None or y >= lo) and (hi is None or y <= hi) for y in years]
    assert col.years_hit(cond, on).tolist() == want
