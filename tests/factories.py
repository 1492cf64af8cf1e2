"""Factory functions for valid records (notifications-api's ``tests/app/db.py`` style).

Each call makes a fresh record from a sequence number, so ids, credit codes, ID numbers and
phone numbers do not collide; pass ``seq`` for a reproducible one and keyword overrides for
any formats.md field.  Records go through the real parsers, so a factory never hands out
something the service would reject.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from policy_push.domain import (
    EnterpriseProfile,
    Policy,
    ResidentProfile,
    ValidationContext,
    id_number_check_digit,
    parse_enterprise,
    parse_policy,
    parse_resident,
    uscc_check_char,
)

__all__ = [
    "enterprise_doc",
    "make_credit_code",
    "make_enterprise",
    "make_id_number",
    "make_phone",
    "make_policy",
    "make_resident",
    "policy_doc",
    "resident_doc",
]

_seq = itertools.count(1)
# validation reads the reference tables; build the context once, not per record
_CTX = ValidationContext()


def _next(seq: int | None) -> int:
    return next(_seq) if seq is None else seq


def make_credit_code(seq: int, region: str = "211103") -> str:
    """A valid 18-character unified social credit code (9 = enterprise, 1 = company)."""
    first17 = f"91{region}{seq % 10**9:09d}"
    return first17 + uscc_check_char(first17)


def make_id_number(
    seq: int, region: str = "211103", born: dt.date | None = None, *, male: bool = True
) -> str:
    """A valid 18-digit resident ID number; distinct for distinct ``seq`` below ~7 million."""
    if born is None:
        born = dt.date(1950, 1, 1) + dt.timedelta(days=(seq // 500) % 20000)
    order = (seq % 500) * 2 + (1 if male else 0)  # the 17th digit is odd for men
    first17 = f"{region}{born:%Y%m%d}{order:03d}"
    return first17 + id_number_check_digit(first17)


def make_phone(seq: int) -> str:
    return f"139{seq % 10**8:08d}"


def policy_doc(seq: int | None = None, **overrides: Any) -> dict[str, Any]:
    n = _next(seq)
    doc: dict[str, Any] = {
        "id": f"pol-{n:06d}",
        "title": f"关于组织申报第{n}批中小企业奖励资金的通知",
        "issuer": "盘锦市工业和信息化局",
        "audience": "enterprise",
        "categories": ["资金奖补"],
        "summary": "对符合条件的中小企业给予奖励",
        "text": "为支持中小企业发展，现就申报有关事项通知如下。",
        "published_on": "2026-03-01",
        "apply_from": "2026-03-01",
        "apply_until": "2026-12-31",
        "benefit_max_yuan": 100000,
        "criteria": {"all": [{"field": "region", "op": "within", "value": ["211100"]}]},
    }
    doc.update(overrides)
    return doc


def make_policy(seq: int | None = None, **overrides: Any) -> Policy:
    return parse_policy(policy_doc(seq, **overrides), _CTX)


def enterprise_doc(seq: int | None = None, **overrides: Any) -> dict[str, Any]:
    n = _next(seq)
    doc: dict[str, Any] = {
        "id": make_credit_code(n),
        "name": f"盘锦测试装备有限公司{n}",
        "region": "211103",
        "industry": "3512",
        "size": None,
        "established_on": "2016-05-10",
        "employees": 45,
        "annual_revenue_wan": 3200,
        "total_assets_wan": 5000,
        "qualifications": ["高新技术企业"],
        "tax_credit_rating": "A",
        "business_scope": "石油钻采专用设备制造",
        "interests": "技术改造 研发补助",
        "contact": {
            "phone": make_phone(n),
            "wechat_openid": f"oTest_{n:012d}Wx",
            "app_registration_id": f"app{n:013x}",
        },
        "channels": ["wechat", "app", "sms"],
        "categories": [],
        "consent": True,
    }
    doc.update(overrides)
    return doc


def make_enterprise(seq: int | None = None, **overrides: Any) -> EnterpriseProfile:
    return parse_enterprise(enterprise_doc(seq, **overrides), _CTX)


def resident_doc(seq: int | None = None, **overrides: Any) -> dict[str, Any]:
    n = _next(seq)
    doc: dict[str, Any] = {
        "id": f"r-{n:07d}",
        "name": f"测试居民{n}",
        "id_number": make_id_number(n),
        "region": "211102002",
        "tags": ["退役军人"],
        "interests": "养老 医疗",
        "contact": {
            "phone": make_phone(n + 50_000_000),
            "wechat_openid": f"oRes_{n:012d}Wx",
            "app_registration_id": None,
        },
        "channels": ["sms", "wechat"],
        "categories": [],
        "consent": True,
    }
    doc.update(overrides)
    return doc


def make_resident(seq: int | None = None, **overrides: Any) -> ResidentProfile:
    return parse_resident(resident_doc(seq, **overrides), _CTX)
