"""The fields a criteria tree may name, per audience, and the operators each kind of field takes.

This table is the single definition of the criteria language's vocabulary (formats.md,
"Fields" and "Criteria expression"): the application validates policies against it and the
engine compiles criteria with it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "AUDIENCES",
    "FIELDS",
    "FIELD_LABELS",
    "OPERATORS",
    "Audience",
    "FieldKind",
    "FieldSpec",
    "field_label",
    "field_spec",
]


class Audience(enum.StrEnum):
    ENTERPRISE = "enterprise"
    RESIDENT = "resident"


AUDIENCES = tuple(a.value for a in Audience)


class FieldKind(enum.StrEnum):
    #: a code in a hierarchy (regions, industries): equality, lists, ``within`` and ``prefix``
    CODE = "code"
    #: one of a closed set of strings
    ENUM = "enum"
    #: an integer or decimal number
    NUMBER = "number"
    #: a calendar date ``YYYY-MM-DD``
    DATE = "date"
    #: a set of open-vocabulary tags
    TAGS = "tags"


#: every operator of the criteria language and the value shape it takes
OPERATORS: dict[str, str] = {
    "eq": "scalar",
    "ne": "scalar",
    "in": "list",
    "not_in": "list",
    "within": "list",
    "prefix": "list",
    "gte": "scalar",
    "lte": "scalar",
    "gt": "scalar",
    "lt": "scalar",
    "between": "range",
    "has_any": "list",
    "has_all": "list",
    "has_none": "list",
    "exists": "bool",
}

_OPS_BY_KIND: dict[FieldKind, frozenset[str]] = {
    FieldKind.CODE: frozenset({"eq", "ne", "in", "not_in", "within", "prefix", "exists"}),
    FieldKind.ENUM: frozenset({"eq", "ne", "in", "not_in", "exists"}),
    FieldKind.NUMBER: frozenset({"eq", "ne", "in", "not_in", "gte", "lte", "gt", "lt", "between", "exists"}),
    FieldKind.DATE: frozenset({"eq", "ne", "gte", "lte", "gt", "lt", "between", "exists"}),
    FieldKind.TAGS: frozenset({"has_any", "has_all", "has_none", "exists"}),
}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: FieldKind
    label: str  #: the Chinese name used in reasons ("注册地", "年龄")
    hierarchy: str | None = None  #: "region" or "industry" for CODE fields
    choices: tuple[str, ...] = ()  #: allowed values of an ENUM field
    integer: bool = False  #: NUMBER fields that only take whole numbers
    unit: str = ""  #: shown after numbers in reasons ("人", "万元", "岁", "年")

    @property
    def operators(self) -> frozenset[str]:
        return _OPS_BY_KIND[self.kind]


SIZES = ("large", "medium", "small", "micro")
TAX_CREDIT_RATINGS = ("A", "B", "M", "C", "D")
GENDERS = ("male", "female")

FIELDS: dict[Audience, dict[str, FieldSpec]] = {
    Audience.ENTERPRISE: {
        f.name: f
        for f in (
            FieldSpec("region", FieldKind.CODE, "注册地", hierarchy="region"),
            FieldSpec("industry", FieldKind.CODE, "所属行业", hierarchy="industry"),
            FieldSpec("size", FieldKind.ENUM, "企业规模", choices=SIZES),
            FieldSpec("established_on", FieldKind.DATE, "成立日期"),
            FieldSpec("established_years", FieldKind.NUMBER, "成立年限", integer=True, unit="年"),
            FieldSpec("employees", FieldKind.NUMBER, "从业人数", integer=True, unit="人"),
            FieldSpec("annual_revenue_wan", FieldKind.NUMBER, "营业收入", unit="万元"),
            FieldSpec("total_assets_wan", FieldKind.NUMBER, "资产总额", unit="万元"),
            FieldSpec("qualifications", FieldKind.TAGS, "资质"),
            FieldSpec("tax_credit_rating", FieldKind.ENUM, "纳税信用等级", choices=TAX_CREDIT_RATINGS),
        )
    },
    Audience.RESIDENT: {
        f.name: f
        for f in (
            FieldSpec("region", FieldKind.CODE, "居住地", hierarchy="region"),
            FieldSpec("hukou_region", FieldKind.CODE, "户籍地", hierarchy="region"),
            FieldSpec("age", FieldKind.NUMBER, "年龄", integer=True, unit="岁"),
            FieldSpec("gender", FieldKind.ENUM, "性别", choices=GENDERS),
            FieldSpec("tags", FieldKind.TAGS, "身份标签"),
        )
    },
}


def field_spec(audience: str, name: str) -> FieldSpec | None:
    """The spec of ``name`` for ``audience``, or None when the audience has no such field."""
    return FIELDS[Audience(audience)].get(name)


#: Chinese names of every profile and policy key a person may see (staff views, reasons, advice),
#: beyond the criteria fields above, which carry their own ``label``
FIELD_LABELS: dict[str, str] = {
    "id": "编号",
    "name": "名称",
    "business_scope": "经营范围",
    "interests": "关注事项",
    "categories": "关注的政策类别",
    "contact": "联系方式",
    "contact.phone": "手机号码",
    "contact.wechat_openid": "微信",
    "contact.app_registration_id": "App 推送编号",
    "phone": "手机号码",
    "channels": "接收渠道",
    "consent": "同意接收通知",
    "id_number": "身份证号",
    "birth_date": "出生日期",
    "size": "企业规模",
    "title": "政策标题",
    "summary": "政策摘要",
    "text": "政策原文",
    "issuer": "发文单位",
    "doc_number": "文号",
    "audience": "面向对象",
    "published_on": "发布日期",
    "apply_from": "申报开始日期",
    "apply_until": "申报截止日期",
    "benefit_max_yuan": "最高支持金额",
    "criteria": "申报条件",
    "url": "原文链接",
}


def field_label(name: str, audience: str | None = None) -> str:
    """The Chinese name of a profile or policy key (``"tags"`` -> "身份标签", ``"region"`` -> "注册地"
    for enterprises and "居住地" for residents).  A key without a name is returned as it is."""
    auds = [Audience(audience)] if audience else [Audience.ENTERPRISE, Audience.RESIDENT]
    for aud in auds:
        spec = FIELDS[aud].get(name)
        if spec is not None:
            return spec.label
    return FIELD_LABELS.get(name, name)
