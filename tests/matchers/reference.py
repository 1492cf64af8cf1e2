"""A plain per-profile criteria evaluator, written apart from the engine, for the property tests.

It reads the criteria dict and the profile record as they are, with no compilation, no
columns and no shared code with ``matchers``: if both give the same answer on random trees and
random profiles, the vectorised evaluators are right (or wrong in exactly the same way twice).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

DERIVED = {"age": "birth_date", "established_years": "established_on"}


def full_years(born: dt.date, on: dt.date) -> int:
    # a 29 February birthday is reached on 1 March in common years
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def ancestors(code: str, parents: Mapping[str, str]) -> list[str]:
    out = [code]
    while parents.get(out[-1]) and parents[out[-1]] not in out:
        out.append(parents[out[-1]])
    return out


def field_value(profile: Mapping[str, Any], field: str, on: dt.date) -> Any:
    if field in DERIVED:
        born = profile.get(DERIVED[field])
        return None if born is None else full_years(born, on)
    return profile.get(field)


def evaluate(node: Mapping[str, Any], profile: Mapping[str, Any], on: dt.date,
             parents: Mapping[str, Mapping[str, str]]) -> bool | None:
    """True, False or None (unknown) by Kleene logic, formats.md semantics."""
    if "all" in node:
        vals = [evaluate(c, profile, on, parents) for c in node["all"]]
        return False if False in vals else (None if None in vals else True)
    if "any" in node:
        vals = [evaluate(c, profile, on, parents) for c in node["any"]]
        return True if True in vals else (None if None in vals else False)
    if "not" in node:
        v = evaluate(node["not"], profile, on, parents)
        return None if v is None else not v
    field, op, value = node["field"], node["op"], node["value"]
    x = field_value(profile, field, on)
    if op == "exists":
        return (x is not None) == value
    if x is None:
        return None
    if isinstance(x, dt.date):
        value = _dates(value)
    if op == "eq":
        return x == value
    if op == "ne":
        return x != value
    if op == "in":
        return x in value
    if op == "not_in":
        return x not in value
    if op == "within":
        tree = parents["industry" if field == "industry" else "region"]
        if x not in tree:
            # a code the table does not know: its place cannot be told unless it is listed itself
            return True if x in value else None
        return any(a in value for a in ancestors(x, tree))
    if op == "prefix":
        return any(x.startswith(p) for p in value)
    if op == "gte":
        return x >= value
    if op == "gt":
        return x > value
    if op == "lte":
        return x <= value
    if op == "lt":
        return x < value
    if op == "between":
        lo, hi = value
        return (lo is None or x >= lo) and (hi is None or x <= hi)
    if op == "has_any":
        return any(t in x for t in value)
    if op == "has_all":
        return all(t in x for t in value)
    if op == "has_none":
        return not any(t in x for t in value)
    raise ValueError(op)


def _dates(v: Any) -> Any:
    if isinstance(v, str):
        return dt.date.fromisoformat(v)
    if isinstance(v, list):
        return [_dates(x) for x in v]
    return v
