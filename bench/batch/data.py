"""Valid enterprise and resident profile files (formats.md, what ``policy-push match`` reads) with
realistic, non-repeating text (``bench.textgen``).  Distributions follow ``bench.matching.generate``:
92 % Panjin, Panjin-weighted industries, a few % of fields missing."""

from __future__ import annotations

import json
import random
from pathlib import Path

from bench.matching.generate import (
    _classes,
    _maybe,
    _region,
    _regions,
    enterprise_measures,
    resident_fields,
    size_and_employees,
)
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
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            size, emp = size_and_employees(rng)
            region = _region(rng, regions)
            industry = rng.choice(classes)
            rec = {
                "id": _uscc(i, region[:6]), "region": _maybe(rng, region, 0.01), "industry": industry,
                **enterprise_measures(rng, size, emp),
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
            rec = resident_fields(rng, regions, i) | {
                "interests": text.resident_interests(),
                "name": rng.choice(_NAMES) + "某", "contact": _contact(rng), "channels": ["sms"], "categories": [],
                "consent": rng.random() < 0.92,
            }
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
