"""The /me profile form: the fields a person fills in for each kind of profile (labels in plain Chinese,
hints, choices), and the conversions between a stored profile, the form's values and an import record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from multidict import MultiDictProxy

from policy_push.errors import InvalidInput

__all__ = ["FIELDS", "FormField", "form_record", "form_values", "split_list"]

_LIST_SPLIT = re.compile(r"[、,，;；\s]+")


def split_list(raw: str) -> list[str]:
    """A list typed into one box, however the person separated it (顿号, commas, semicolons, spaces)."""
    return [x for x in _LIST_SPLIT.split(raw) if x]


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    label: str
    type: str = "text"
    required: bool = False
    hint: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    kind: str = "str"  # str, int, float, list


_RESIDENT_FIELDS = (
    FormField("name", "姓名", required=True),
    FormField("region", "居住地（区县或乡镇代码）", hint="例如 211103（兴隆台区）"),
    FormField("birth_date", "出生日期", type="date"),
    FormField("gender", "性别", choices=(("female", "女"), ("male", "男"))),
    FormField("hukou_region", "户籍地（区县代码）"),
    FormField("tags", "身份情况", hint="用顿号分开，例如：退役军人、高校毕业生", kind="list"),
    FormField("interests", "关心的事", hint="例如：就业 养老 医疗"),
)
_ENTERPRISE_FIELDS = (
    FormField("id", "统一社会信用代码", required=True, hint="18 位，在营业执照上"),
    FormField("name", "企业名称", required=True),
    FormField("region", "注册地（区县或乡镇代码）"),
    FormField("industry", "行业代码（国民经济行业分类）", hint="例如 2511"),
    FormField("size", "企业规模", choices=(("micro", "微型"), ("small", "小型"), ("medium", "中型"), ("large", "大型"))),
    FormField("established_on", "成立日期", type="date"),
    FormField("employees", "从业人员（人）", type="number", kind="int"),
    FormField("annual_revenue_wan", "上年营业收入（万元）", type="number", kind="float"),
    FormField("total_assets_wan", "资产总额（万元）", type="number", kind="float"),
    FormField("qualifications", "资质荣誉", hint="用顿号分开，例如：高新技术企业、专精特新中小企业", kind="list"),
    FormField("tax_credit_rating", "纳税信用等级", choices=tuple((v, v) for v in "ABMCD")),
    FormField("business_scope", "经营范围"),
    FormField("interests", "关心的政策", hint="例如：技术改造 融资贷款"),
)
FIELDS = {"resident": _RESIDENT_FIELDS, "enterprise": _ENTERPRISE_FIELDS}


def form_values(profile: Any) -> dict[str, str]:
    if profile is None:
        return {}
    doc = profile.to_json()
    out = {}
    for key, value in doc.items():
        if isinstance(value, list):
            out[key] = "、".join(str(v) for v in value)
        elif value is not None and not isinstance(value, dict):
            out[key] = str(value)
    return out


def form_record(kind: str, form: MultiDictProxy[Any]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for f in FIELDS[kind]:
        raw = str(form.get(f.name, "")).strip()
        if not raw:
            continue
        try:
            if f.kind == "int":
                record[f.name] = int(raw)
            elif f.kind == "float":
                record[f.name] = float(raw)
            elif f.kind == "list":
                record[f.name] = split_list(raw)
            else:
                record[f.name] = raw
        except ValueError:
            raise InvalidInput(f"{f.label}：请填数字", loc=["form", f.name]) from None
    return record
