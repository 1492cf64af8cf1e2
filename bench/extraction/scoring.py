"""How a suggested record is compared with the gold one.

Criteria are compared leaf by leaf.  Both trees are first brought to a canonical form that only
rewrites a tree into an equivalent one, so two ways of writing the same condition count as one:

- ``not`` is pushed down to the leaves (``not in`` → ``not_in``, ``not gte 60`` → ``lt 60``,
  ``not has_any`` → ``has_none``), swapping ``all`` and ``any`` on the way (De Morgan);
- closed sets (size, tax_credit_rating, gender) become the set of allowed values:
  ``ne large`` = ``not_in [large]`` = ``in [medium, small, micro]``; two such conditions side
  by side in an ``all`` become their intersection;
- ``between [a, b]`` is two conditions, ``gte a`` and ``lte b`` (an open end is no condition);
  on whole-number fields (age, employees, established_years) and dates, ``gt n`` is
  ``gte n+1`` and ``lt n`` is ``lte n-1``;
- a region ``prefix`` of 2, 4 or 6 digits is ``within`` the code it abbreviates (2111 →
  211100);
- alternatives on one field in an ``any`` are one condition with the union of values
  (``any(within [B], within [C])`` = ``within [B, C]``); single tags required side by side in an
  ``all`` are one ``has_all``; a one-value ``has_any`` equals a one-value ``has_all``.

A **condition** is then (field, operator, value) with list values compared as sets.  Precision
is the share of suggested conditions found in the gold tree, recall the share of gold
conditions suggested (multisets; the tree's shape beyond the above is not scored).  An
**atom** splits a set-valued condition into one (field, operator, value) per member, which
gives partial credit (``size in [small, micro]`` against ``in [medium, small, micro]``: 2 of 3).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from matchers import FieldKind, field_spec

__all__ = ["Condition", "Score", "atoms", "canonical_conditions", "score"]

Condition = tuple[str, str, Any]

_ENUMS = {"size": ("large", "medium", "small", "micro"), "tax_credit_rating": ("A", "B", "M", "C", "D"),
          "gender": ("male", "female")}
_NEG = {"gte": "lt", "gt": "lte", "lte": "gt", "lt": "gte", "eq": "ne", "ne": "eq", "in": "not_in", "not_in": "in",
        "has_any": "has_none", "has_none": "has_any", "within": "not_within", "not_within": "within"}


def _shift(fld: str, audience: str, value: Any, step: int) -> Any:
    spec = field_spec(audience, fld)
    if spec is None:
        return value
    if spec.kind is FieldKind.DATE and isinstance(value, str):
        return (dt.date.fromisoformat(value) + dt.timedelta(days=step)).isoformat()
    if spec.integer and isinstance(value, int | float) and float(value).is_integer():
        return int(value) + step
    return value


def _leaf(cond: dict[str, Any], negated: bool, audience: str) -> list[tuple[str, str, Any]]:
    """One or two canonical (field, op, value) for a leaf; values of sets as frozensets."""
    fld, op, value = cond["field"], cond["op"], cond.get("value")
    if op == "exists":
        return [(fld, "exists", bool(value) != negated)]
    if op == "has_all" and negated:
        # not has_all [a, b] = lacks a or lacks b: keep as its own operator
        return [(fld, "not_has_all", frozenset(value))]
    if op == "between":
        lo, hi = value
        if negated:
            out = []
            if lo is not None:
                out.append((fld, "lt", lo))
            if hi is not None:
                out.append((fld, "gt", hi))
            return [_num_canon(fld, o, v, audience) for fld, o, v in out]
        parts = []
        if lo is not None:
            parts.append(_num_canon(fld, "gte", lo, audience))
        if hi is not None:
            parts.append(_num_canon(fld, "lte", hi, audience))
        return parts
    if op == "prefix" and fld in ("region", "hukou_region"):
        codes = {(p + "000000")[:6] if len(p) in (2, 4, 6) else p for p in value}
        op, value = "within", sorted(codes)
    if negated:
        op = _NEG.get(op, "not_" + op)
    if fld in _ENUMS:
        choices = _ENUMS[fld]
        if op in ("eq", "ne"):
            value = [value]
            op = "in" if op == "eq" else "not_in"
        allowed = set(value) if op == "in" else set(choices) - set(value)
        return [(fld, "in", frozenset(allowed))]
    if op in ("gte", "gt", "lte", "lt"):
        return [_num_canon(fld, op, value, audience)]
    if op in ("eq", "ne"):
        if isinstance(value, str) and fld in ("region", "hukou_region", "industry"):
            return [(fld, "in" if op == "eq" else "not_in", frozenset([value]))]
        return [(fld, op, value)]
    if op in ("has_any", "has_all") and len(value) == 1:
        return [(fld, "has", frozenset(value))]
    if isinstance(value, list):
        return [(fld, op, frozenset(value))]
    return [(fld, op, value)]


def _num_canon(fld: str, op: str, value: Any, audience: str) -> tuple[str, str, Any]:
    if op == "gt":
        shifted = _shift(fld, audience, value, 1)
        if shifted != value:
            return (fld, "gte", shifted)
    if op == "lt":
        shifted = _shift(fld, audience, value, -1)
        if shifted != value:
            return (fld, "lte", shifted)
    return (fld, op, value)


_UNION_IN_ANY = {"has", "has_any", "within", "in"}
_UNION_IN_ALL = {"has_none", "not_in", "not_within"}


def _merge(leaves: list[tuple[str, str, Any]], logic: str) -> list[tuple[str, str, Any]]:
    out: list[tuple[str, str, Any]] = []
    for fld, op, value in leaves:
        merged = False
        for i, (f2, o2, v2) in enumerate(out):
            if f2 != fld or not isinstance(value, frozenset) or not isinstance(v2, frozenset):
                continue
            if logic == "any" and op in _UNION_IN_ANY and o2 in _UNION_IN_ANY and {op, o2} <= {"has", "has_any"} | ({op} & {o2}):
                new_op = "has_any" if op in ("has", "has_any") else op
                out[i] = (fld, new_op, v2 | value)
                merged = True
            elif logic == "all" and fld in _ENUMS and op == o2 == "in":
                out[i] = (fld, "in", v2 & value)
                merged = True
            elif logic == "all" and op in ("has", "has_all") and o2 in ("has", "has_all"):
                out[i] = (fld, "has_all", v2 | value)
                merged = True
            elif logic == "all" and op == o2 and op in _UNION_IN_ALL:
                out[i] = (fld, op, v2 | value)
                merged = True
            if merged:
                break
        if not merged:
            out.append((fld, op, value))
    # a merged one-value set reads as "has"
    return [(f, "has", v) if o in ("has_any", "has_all") and len(v) == 1 else (f, o, v) for f, o, v in out]


def canonical_conditions(tree: dict[str, Any] | None, audience: str) -> list[Condition]:
    """The canonical conditions of a criteria tree (see the module's docstring)."""
    if not tree:
        return []

    def walk(node: dict[str, Any], negated: bool) -> list[tuple[str, str, Any]]:
        if "not" in node:
            return walk(node["not"], not negated)
        for logic in ("all", "any"):
            if logic in node:
                effective = logic if not negated else ("any" if logic == "all" else "all")
                direct: list[tuple[str, str, Any]] = []
                nested: list[tuple[str, str, Any]] = []
                for child in node[logic]:
                    if "field" in child or ("not" in child and "field" in child["not"]):
                        direct.extend(walk(child, negated))
                    else:
                        nested.extend(walk(child, negated))
                return _merge(direct, effective) + nested
        return _leaf(node, negated, audience)

    return walk(tree, False)


def atoms(conditions: Iterable[Condition]) -> list[Condition]:
    out: list[Condition] = []
    for fld, op, value in conditions:
        if isinstance(value, frozenset):
            out.extend((fld, op, v) for v in sorted(value))
        else:
            out.append((fld, op, value))
    return out


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, predicted: list[Condition], gold: list[Condition]) -> None:
        p, g = Counter(predicted), Counter(gold)
        common = sum((p & g).values())
        self.tp += common
        self.fp += sum(p.values()) - common
        self.fn += sum(g.values()) - common

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def score(predicted: list[Condition], gold: list[Condition]) -> Score:
    s = Score()
    s.add(predicted, gold)
    return s
