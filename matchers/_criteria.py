"""Criteria trees (formats.md, "Criteria expression") parsed into an immutable, validated form.

``compile_criteria(tree, audience)`` checks every node against the field table in
``_fields.py`` and returns a ``Criteria``: a tree of ``Node`` whose leaves are ``Condition``
objects with normalised values (codes and tags as tuples of str, dates as ``yyyymmdd`` ints,
numbers as floats).  Both evaluators (columns: policy -> profiles, and the policy catalogue:
profile -> policies) work from this form; nothing is ever passed to ``eval``.

Truth values are Kleene's three, encoded as ints so that ``all`` is ``min``, ``any`` is
``max`` and ``not`` is ``2 - x``: ``FALSE = 0``, ``UNKNOWN = 1``, ``TRUE = 2``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import CriteriaError
from ._fields import OPERATORS, Audience, FieldKind, FieldSpec, field_spec

__all__ = ["MAX_DEPTH", "Condition", "Criteria", "Node", "compile_criteria"]

FALSE, UNKNOWN, TRUE = 0, 1, 2
MAX_DEPTH = 32

#: numeric ops as intervals (lo, lo_closed, hi, hi_closed); "in"/"eq" give one per value
Interval = tuple[float, bool, float, bool]
_INF = math.inf


def to_ymd(value: Any) -> int:
    """``date`` or ``"YYYY-MM-DD"`` -> ``yyyymmdd`` int (ordering of ints = ordering of dates)."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.year * 10000 + value.month * 100 + value.day
    if isinstance(value, str):
        d = dt.date.fromisoformat(value.strip()[:10])
        return d.year * 10000 + d.month * 100 + d.day
    raise ValueError(f"not a date: {value!r}")


@dataclass(frozen=True, slots=True)
class Condition:
    """One leaf ``{"field", "op", "value"}``, value normalised by field kind.

    ``value`` is: a tuple for set ops (eq/ne/in/not_in/within/prefix/has_*; eq and ne hold one
    element), a float or ``yyyymmdd`` int for gte/lte/gt/lt, ``(lo, hi)`` with None ends for
    ``between``, a bool for ``exists``.  ``raw`` keeps the policy's value for display.
    """

    index: int
    field: str
    op: str
    value: Any
    spec: FieldSpec
    raw: Any
    path: str
    #: under an odd number of ``not``: reasons then phrase the requirement the policy really makes
    flipped: bool = False

    @property
    def negated(self) -> bool:
        return self.op in ("ne", "not_in", "has_none")

    def intervals(self) -> tuple[list[Interval], bool]:
        """Numeric/date ops as a union of intervals plus a negate flag."""
        op, v = self.op, self.value
        if op in ("eq", "ne", "in", "not_in"):
            return [(x, True, x, True) for x in v], op in ("ne", "not_in")
        if op == "gte":
            return [(v, True, _INF, False)], False
        if op == "gt":
            return [(v, False, _INF, False)], False
        if op == "lte":
            return [(-_INF, False, v, True)], False
        if op == "lt":
            return [(-_INF, False, v, False)], False
        if op == "between":
            lo, hi = v
            return [(-_INF if lo is None else lo, True, _INF if hi is None else hi, True)], False
        raise CriteriaError(f"operator {op!r} is not numeric", path=self.path)


@dataclass(frozen=True, slots=True)
class Node:
    """``kind`` is "all", "any", "not", "leaf" or "const" (``const`` holds a bool in ``constant``)."""

    kind: str
    children: tuple[Node, ...] = ()
    condition: Condition | None = None
    constant: bool = True


@dataclass(frozen=True, slots=True)
class Criteria:
    """A validated criteria tree for one audience; ``root`` is None for a policy without criteria."""

    audience: Audience
    root: Node | None
    conditions: tuple[Condition, ...] = field(default=())

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(c.field for c in self.conditions)


def compile_criteria(tree: Mapping[str, Any] | None, audience: str | Audience) -> Criteria:
    """Validate ``tree`` for ``audience`` and return its ``Criteria``.

    Raises ``CriteriaError`` (with ``.path``) for an unknown field or operator, an operator that
    does not fit the field, a malformed value, or nesting deeper than ``MAX_DEPTH``.
    """
    aud = Audience(audience)
    if tree is None or (isinstance(tree, Mapping) and not tree):
        return Criteria(aud, None, ())
    leaves: list[Condition] = []
    root = _parse(tree, aud, "criteria", 1, leaves, False)
    return Criteria(aud, root, tuple(leaves))


def _parse(node: Any, aud: Audience, path: str, depth: int, leaves: list[Condition], flipped: bool) -> Node:
    if depth > MAX_DEPTH:
        raise CriteriaError(f"criteria nest deeper than {MAX_DEPTH} levels", path=path)
    if not isinstance(node, Mapping):
        raise CriteriaError("a criteria node must be an object", path=path)
    keys = set(node)
    for kind in ("all", "any"):
        if keys == {kind}:
            items = node[kind]
            if not isinstance(items, list):
                raise CriteriaError(f"'{kind}' takes a list", path=f"{path}.{kind}")
            kids = tuple(
                _parse(x, aud, f"{path}.{kind}[{i}]", depth + 1, leaves, flipped) for i, x in enumerate(items)
            )
            # Kleene identities: an empty "all" holds, an empty "any" does not.
            return Node(kind, kids) if kids else Node("const", constant=kind == "all")
    if keys == {"not"}:
        return Node("not", (_parse(node["not"], aud, f"{path}.not", depth + 1, leaves, not flipped),))
    if "field" in keys and "op" in keys and keys <= {"field", "op", "value"}:
        cond = _condition(node, aud, path, len(leaves), flipped)
        leaves.append(cond)
        return Node("leaf", condition=cond)
    raise CriteriaError(
        "expected {'all': [...]}, {'any': [...]}, {'not': ...} or {'field', 'op', 'value'}", path=path
    )


def _condition(node: Mapping[str, Any], aud: Audience, path: str, index: int, flipped: bool) -> Condition:
    name, op, raw = node["field"], node["op"], node.get("value")
    spec = field_spec(aud, name) if isinstance(name, str) else None
    if spec is None:
        raise CriteriaError(f"unknown field {name!r} for {aud.value} profiles", path=f"{path}.field")
    if op not in OPERATORS:
        raise CriteriaError(f"unknown operator {op!r}", path=f"{path}.op")
    if op not in spec.operators:
        raise CriteriaError(f"operator {op!r} does not apply to {spec.kind.value} field {name!r}", path=f"{path}.op")
    vpath = f"{path}.value"
    try:
        value = _normalise(spec, op, raw)
    except (TypeError, ValueError) as exc:
        raise CriteriaError(f"bad value for {name} {op}: {exc}", path=vpath) from None
    return Condition(index, name, op, value, spec, raw, path, flipped)


def _normalise(spec: FieldSpec, op: str, raw: Any) -> Any:
    shape = OPERATORS[op]
    if shape == "bool":
        if not isinstance(raw, bool):
            raise TypeError("exists takes true or false")
        return raw
    if shape == "range":
        if not isinstance(raw, list | tuple) or len(raw) != 2:
            raise TypeError("between takes [min, max]")
        lo, hi = (None if x is None else _scalar(spec, x) for x in raw)
        return lo, hi
    if shape == "list":
        if not isinstance(raw, list | tuple):
            raise TypeError(f"{op} takes a list")
        return tuple(dict.fromkeys(_scalar(spec, x) for x in raw))
    value = _scalar(spec, raw)
    return (value,) if op in ("eq", "ne") else value


def _scalar(spec: FieldSpec, x: Any) -> Any:
    kind = spec.kind
    if kind is FieldKind.NUMBER:
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise TypeError(f"{x!r} is not a number")
        return float(x)
    if kind is FieldKind.DATE:
        return to_ymd(x)
    if not isinstance(x, str) or not x:
        raise TypeError(f"{x!r} is not a non-empty string")
    if kind is FieldKind.ENUM and x not in spec.choices:
        raise ValueError(f"{x!r} is not one of {', '.join(spec.choices)}")
    return x
