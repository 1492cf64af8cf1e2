"""Valid enterprise and resident profile files (formats.md, what ``policy-push match`` reads) with
realistic, non-repeating text (``bench.textgen``).  Distributions follow ``bench.matching.generate``:
92 % Panjin, Panjin-weighted industries, a few % of fields missing."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

from bench.matching.generate import QUALS, RES_TAGS, _classes, _date, _maybe, _region, _regions
from bench.textgen import ScopeGen
from policy_push.domain import uscc_check_char
from policy_push.domain.checksums import USCC_ALPHABET

__all__ = ["write_enterprises", "write_residents"]


_NAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗兴盛鑫源宏泰华安恒达"
_TRADES = ["石化", "农业", "科技", "装备", "商贸", "物流", "食品", "建设", "能源", "环保"]


def _contact(rng: random.Random) -> dict[str, str | None]:
    return {"phone": f"1{rng.choice('3589')}{rng.randrange(10**9):09d}", "wechat_openid": None, "app_registration_id": None}


def _uscc(i: int, county: str) -> str:
    """A valid, unique credit code for firm ``i`` (its 9-character organisation code encodes i)."""
    digits = []
    for _ in range(9):
        i, d = divmod(i, len(USCC_ALPHABET))
        digits.append(USCC_ALPHABET[d])
    body = "91" + county + "".join(reversed(digits))
    return body + uscc_check_char(body)


def write_enterprises(path: Path, n: int, seed: int = 20261130) -> None:
    rng = random.Random(seed)
    text = ScopeGen(seed + 1)
    regions, classes = _regions(), _classes()
    sizes = [("micro", 0.6), ("small", 0.3), ("medium", 0.08), ("large", 0.02)]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            size = rng.choices([s for s, _ in sizes], [w for _, w in sizes])[0]
            emp = {"micro": rng.randrange(1, 20), "small": rng.randrange(20, 300),
                   "medium": rng.randrange(300, 1000), "large": rng.randrange(1000, 5000)}[size]
            region = _region(rng, regions)
            industry = rng.choice(classes)
            rec = {
                "id": _uscc(i, region[:6]), "region": _maybe(rng, region, 0.01),
                "industry": industry, "size": _maybe(rng, size, 0.03),
                "established_on": _maybe(rng, _date(rng, dt.date(1990, 1, 1), dt.date(2026, 11, 1)), 0.01),
                "employees": _maybe(rng, emp, 0.02),
                "annual_revenue_wan": _maybe(rng, round(emp * rng.uniform(5, 80), 1), 0.03),
                "total_assets_wan": _maybe(rng, round(emp * rng.uniform(5, 120), 1), 0.03),
                "qualifications": _maybe(rng, [q for q, p in QUALS if rng.random() < p], 0.02),
                "tax_credit_rating": _maybe(rng, rng.choices("ABMCD", [30, 40, 20, 6, 4])[0], 0.03),
                "business_scope": text.scope(industry),
                "interests": text.enterprise_interests(),
                "name": f"盘锦{rng.choice(_NAMES)}{rng.choice(_NAMES)}{rng.choice(_TRADES)}有限公司",
                "contact": _contact(rng), "channels": ["sms"], "categories": [], "consent": rng.random() < 0.94,
            }
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def write_residents(path: Path, n: int, seed: int = 20261131) -> None:
    rng = random.Random(seed)
    text = ScopeGen(seed + 1)
    regions = _regions()
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            region = _region(rng, regions)
            rec = {
                "id": f"R{i:09d}", "region": _maybe(rng, region, 0.02),
                "hukou_region": _maybe(rng, region[:6] if rng.random() < 0.9 else _region(rng, regions)[:6], 0.01),
                "birth_date": _maybe(rng, _date(rng, dt.date(1926, 1, 1), dt.date(2010, 11, 26)), 0.02),
                "gender": rng.choice(["male", "female"]),
                "tags": _maybe(rng, [t for t, p in RES_TAGS if rng.random() < p], 0.03),
                "interests": text.resident_interests(),
                "name": rng.choice(_NAMES) + "某", "contact": _contact(rng), "channels": ["sms"], "categories": [],
                "consent": rng.random() < 0.92,
            }
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
