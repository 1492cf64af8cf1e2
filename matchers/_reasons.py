"""Readable Chinese reasons, one per condition, naming the profile's own value.

Both directions (policy -> profiles, profile -> policies) compute the truth of every condition
vectorised; this module only turns the few returned (condition, value, truth) triples into
text, e.g. "注册地 兴隆台区 属于 盘锦市", "企业规模 小型 符合", "年龄 82 岁，满足 ≥80 岁",
"缺少：从业人数".  A condition under ``not`` is phrased as the requirement the policy really
makes ("纳税信用等级 B 符合（不为 C、D）"), so a reader never has to undo a negation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._criteria import FALSE, TRUE, UNKNOWN, Condition, Criteria, Node
from ._fields import FieldKind
from ._hierarchy import Hierarchy

__all__ = ["ENUM_NAMES", "explain", "missing_fields", "node_value", "reason"]

#: Chinese for enum values shown in reasons
ENUM_NAMES = {"large": "大型", "medium": "中型", "small": "小型", "micro": "微型", "male": "男", "female": "女"}

_NUM_OPS = {"gte": "≥", "gt": ">", "lte": "≤", "lt": "<", "eq": "=", "ne": "≠"}
_DATE_OPS = {"gte": "不早于 ", "gt": "晚于 ", "lte": "不晚于 ", "lt": "早于 ", "eq": "为 ", "ne": "不为 "}
_COMPLEMENT = {"gte": "lt", "gt": "lte", "lte": "gt", "lt": "gte", "eq": "ne", "ne": "eq", "in": "not_in",
               "not_in": "in", "has_any": "has_none", "has_none": "has_any"}


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.4f}".rstrip("0").rstrip(".")


def _date(ymd: int) -> str:
    return f"{ymd // 10000:04d}-{ymd // 100 % 100:02d}-{ymd % 100:02d}"


def _show(cond: Condition, x: Any, hierarchies: Mapping[str, Hierarchy]) -> str:
    """One value of the condition's field (the profile's, or one from the policy) as text."""
    spec = cond.spec
    if spec.kind is FieldKind.CODE and spec.hierarchy:
        return hierarchies[spec.hierarchy].name(x)
    if spec.kind is FieldKind.ENUM:
        return ENUM_NAMES.get(x, x)
    if spec.kind is FieldKind.DATE:
        return _date(x)
    if spec.kind is FieldKind.NUMBER:
        return f"{_num(x)} {spec.unit}".rstrip()
    return str(x)


def _requirement(cond: Condition, op: str, negate: bool, hierarchies: Mapping[str, Hierarchy]) -> str:
    """The numeric/date requirement as text, e.g. "≥80 岁", "不早于 2021-01-01"."""
    is_date = cond.spec.kind is FieldKind.DATE
    unit = "" if is_date or not cond.spec.unit else f" {cond.spec.unit}"

    def one(o: str, v: Any) -> str:
        return (_DATE_OPS[o] + _date(v)) if is_date else f"{_NUM_OPS[o]}{_num(v)}{unit}"

    if op == "between":
        lo, hi = cond.value
        if lo is not None and hi is not None:
            text = f"{_date(lo)} 至 {_date(hi)}" if is_date else f"{_num(lo)}–{_num(hi)}{unit}"
            return f"不在 {text} 之间" if negate else text
        if lo is None and hi is None:
            return "无限制" if not negate else "不可能满足"
        o, v = ("gte", lo) if lo is not None else ("lte", hi)
        return one(_COMPLEMENT[o] if negate else o, v)
    if op in ("in", "not_in"):
        listed = "、".join(_show(cond, v, hierarchies) for v in cond.value)
        return f"{'不为' if (op == 'not_in') != negate else '为'} {listed}"
    return one(_COMPLEMENT[op] if negate else op, cond.value if op not in ("eq", "ne") else cond.value[0])


def reason(cond: Condition, value: Any, truth: int, hierarchies: Mapping[str, Hierarchy]) -> str:
    """One line for ``cond`` given the profile's ``value`` and the condition's Kleene ``truth``."""
    spec, label = cond.spec, cond.spec.label
    if cond.op == "exists":
        has = value is not None
        return f"{label} {'已填写' if has else '未填写'}，{'符合' if truth == TRUE else '不符合'}"
    if truth == UNKNOWN or value is None:
        return f"缺少：{label}"
    # ``ok`` is whether the policy's real (un-negated) requirement holds for this profile.
    ok = (truth == TRUE) != cond.flipped
    op = cond.op
    if spec.kind is FieldKind.TAGS:
        have = set(value)
        listed = "、".join(cond.value)
        matched = "、".join(t for t in cond.value if t in have)
        if op == "has_all":
            lacking = "、".join(t for t in cond.value if t not in have)
            verdict = "符合" if ok else "不符合"
            return f"{label} {listed} 均具备，{verdict}" if not lacking else f"{label} 缺 {lacking}，{verdict}"
        if matched:
            return f"{label} {matched} {'符合' if ok else '不符合'}"
        return f"{label} 不含 {listed}，{'符合' if ok else '不符合'}"
    shown = _show(cond, value, hierarchies)
    if op in ("within", "prefix"):
        hit = truth == TRUE
        listed = "、".join(
            _show(cond, v, hierarchies) if op == "within" else v for v in cond.value
        )
        if op == "within":
            return f"{label} {shown} {'属于' if hit else '不属于'} {listed}"
        return f"{label} {shown}（{value}）{'以' if hit else '不以'} {listed} 开头"
    if spec.kind in (FieldKind.CODE, FieldKind.ENUM):
        if ok:
            return f"{label} {shown} 符合" + ("" if op in ("eq", "in") and not cond.flipped else
                                              f"（{_requirement(cond, _set_op(op), cond.flipped, hierarchies)}）")
        return f"{label} {shown} 不符合（要求{_requirement(cond, _set_op(op), cond.flipped, hierarchies)}）"
    req = _requirement(cond, op, cond.flipped, hierarchies)
    return f"{label} {shown}，{'满足' if ok else '不满足'} {req}"


def _set_op(op: str) -> str:
    return "in" if op in ("eq", "in") else "not_in"


def node_value(node: Node, leaf_values: Sequence[int]) -> int:
    """Kleene value of ``node`` from its conditions' values (FALSE < UNKNOWN < TRUE)."""
    if node.kind == "leaf":
        assert node.condition is not None
        return leaf_values[node.condition.index]
    if node.kind == "const":
        return TRUE if node.constant else FALSE
    if node.kind == "not":
        return TRUE + FALSE - node_value(node.children[0], leaf_values)
    vals = [node_value(c, leaf_values) for c in node.children]
    return min(vals) if node.kind == "all" else max(vals)


def missing_fields(criteria: Criteria, leaf_values: Sequence[int]) -> list[str]:
    """Fields whose emptiness makes the result unknown (only along unknown branches), sorted."""
    out: set[str] = set()

    def walk(node: Node) -> None:
        if node_value(node, leaf_values) != UNKNOWN:
            return
        if node.kind == "leaf":
            assert node.condition is not None
            out.add(node.condition.field)
        for child in node.children:
            walk(child)

    if criteria.root is not None:
        walk(criteria.root)
    return sorted(out)


def explain(criteria: Criteria, values: Mapping[str, Any], leaf_values: Sequence[int],
            hierarchies: Mapping[str, Hierarchy]) -> tuple[list[str], list[str]]:
    """(reasons, missing) for one profile: ``values`` maps criteria field -> profile value."""
    reasons = [reason(c, values.get(c.field), leaf_values[c.index], hierarchies) for c in criteria.conditions]
    return reasons, missing_fields(criteria, leaf_values)
