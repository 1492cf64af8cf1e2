"""A policy's criteria tree (formats.md) as readable Chinese sentences, for staff who check what the
machine will match on: "注册地 属于 盘锦市", "纳税信用等级 不为 C、D", nested 全部 / 任一 / 不满足."""

from __future__ import annotations

from typing import Any

from matchers import field_label
from policy_push.refdata import ReferenceData

__all__ = ["criteria_lines"]

_OPS = {"eq": "为", "ne": "不为", "gte": "不低于", "gt": "高于", "lte": "不高于", "lt": "低于", "in": "为以下之一：",
        "not_in": "不为", "within": "属于", "not_within": "不属于", "has_any": "包含任一：", "has_all": "全部包含：",
        "has_none": "不含任何：", "exists": "已填写", "missing": "未填写"}  # fmt: skip
_VALUES = {"large": "大型", "medium": "中型", "small": "小型", "micro": "微型", "male": "男", "female": "女",
           "enterprise": "企业", "resident": "居民", "true": "是", "false": "否"}  # fmt: skip
_UNITS = {"employees": "人", "annual_revenue_wan": "万元", "total_assets_wan": "万元", "established_years": "年",
          "age": "周岁"}  # fmt: skip


def _value(field: str, v: Any, ref: ReferenceData) -> str:
    if isinstance(v, list):
        return "、".join(_value(field, x, ref) for x in v)
    if isinstance(v, bool):
        return "是" if v else "否"
    s = str(v)
    if field in ("region", "hukou_region") and s in ref.regions.names:
        return ref.regions.names[s]
    if field == "industry" and s in ref.industries.names:
        return f"{ref.industries.names[s]}（{s}）"
    return _VALUES.get(s, s) + (_UNITS.get(field, "") if isinstance(v, int | float) else "")


def _leaf(node: dict[str, Any], audience: str, ref: ReferenceData) -> str:
    field = str(node.get("field", "?"))
    op = str(node.get("op", "?"))
    label = field_label(field, audience)
    if op in ("exists", "missing"):
        return f"{label}{_OPS[op]}"
    return f"{label} {_OPS.get(op, op)} {_value(field, node.get('value'), ref)}"


def criteria_lines(criteria: dict[str, Any] | None, audience: str, ref: ReferenceData, depth: int = 0) -> list[tuple[int, str]]:
    """(indent, sentence) lines; an empty tree says that everyone in the audience qualifies."""
    if not criteria:
        return [(0, "无条件：受众中的每个档案都符合。")]
    for key, head in (("all", "同时满足以下全部条件："), ("any", "满足以下任一条件：")):
        if key in criteria:
            out = [(depth, head)]
            for child in criteria[key]:
                out += criteria_lines(child, audience, ref, depth + 1)
            return out
    if "not" in criteria:
        return [(depth, "不满足以下条件："), *criteria_lines(criteria["not"], audience, ref, depth + 1)]
    return [(depth, _leaf(criteria, audience, ref))]
