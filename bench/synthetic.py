"""Seeded generator of valid, Panjin-like enterprise and resident profiles for benchmarks.

Every record passes the service's validation: credit codes and ID numbers carry computed
check characters, regions and industries come from the shipped tables.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from pathlib import Path

from policy_push.domain import id_number_check_digit, uscc_check_char
from policy_push.domain.checksums import USCC_ALPHABET
from policy_push.refdata import load_reference_data

__all__ = ["enterprises", "residents", "write_jsonl"]

_COUNTIES = ["211102", "211103", "211104", "211122"]
_INDUSTRIES = ["2511", "2614", "2662", "3512", "3443", "0111", "1311", "0412", "0411", "1361", "5111", "5211", "6210", "6513", "4710", "0711", "1120"]
_QUALS = ["高新技术企业", "专精特新中小企业", "科技型中小企业", "专精特新小巨人企业", "首次认定高新技术企业", "绿色工厂"]
_TAGS = ["低保", "特困", "残疾", "重度残疾", "退役军人", "高校毕业生", "失业", "就业困难", "脱贫户", "农户", "灵活就业", "参保职工"]
_SCOPE = ["石油钻采专用设备制造", "油田化学剂生产", "技术开发、技术咨询、技术服务", "水稻种植", "河蟹养殖", "大米加工",
          "普通机械设备销售", "软件开发", "信息系统集成服务", "餐饮服务", "房屋建筑工程施工", "化工产品销售", "货物进出口"]
_INTERESTS = ["技术改造", "研发补助", "融资贷款", "稳岗", "专精特新", "出口", "人才", "惠农政策", "乡村振兴", "养老", "医疗", "就业", "培训"]
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗"


def _townships(counties: list[str]) -> list[str]:
    regions = load_reference_data().regions
    return [c for c in regions.names if len(c) == 9 and c[:6] in counties]


def _uscc(rng: random.Random, county: str) -> str:
    body = "91" + county + "MA" + "".join(rng.choice(USCC_ALPHABET) for _ in range(7))
    return body + uscc_check_char(body)


def enterprises(n: int, seed: int = 1) -> Iterator[dict]:
    rng = random.Random(seed)
    towns = _townships(_COUNTIES)
    seen: set[str] = set()
    while len(seen) < n:
        county = rng.choice(_COUNTIES)
        code = _uscc(rng, county)
        if code in seen:
            continue
        seen.add(code)
        employees = int(rng.lognormvariate(3, 1.2))
        yield {
            "id": code,
            "name": f"盘锦{rng.choice(_SURNAMES)}{rng.choice(['石化', '农业', '科技', '装备', '商贸'])}有限公司",
            "region": rng.choice([county, rng.choice(towns)]),
            "industry": rng.choice(_INDUSTRIES),
            "size": rng.choice([None, None, "small", "micro", "medium"]),
            "established_on": (dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(9000))).isoformat(),
            "employees": employees,
            "annual_revenue_wan": round(employees * rng.uniform(5, 80), 1),
            "total_assets_wan": round(employees * rng.uniform(5, 120), 1),
            "qualifications": rng.sample(_QUALS, rng.choice([0, 0, 1, 2])),
            "tax_credit_rating": rng.choice(["A", "B", "M", "C", None]),
            "business_scope": "；".join(rng.sample(_SCOPE, 3)),
            "interests": " ".join(rng.sample(_INTERESTS, 3)),
            "contact": {
                "phone": f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
                "wechat_openid": "o" + "".join(rng.choice("abcdefghijkLMNOP0123456789_-") for _ in range(27)),
                "app_registration_id": f"{rng.randrange(16**16):016x}",
            },
            "channels": rng.sample(["sms", "wechat", "app"], 3),
            "categories": [],
            "consent": rng.random() < 0.94,
        }


def residents(n: int, seed: int = 2) -> Iterator[dict]:
    rng = random.Random(seed)
    towns = _townships(_COUNTIES)
    seen: set[str] = set()
    for i in range(n):
        first17 = ""
        while not first17 or first17 in seen:
            born = dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(30000))
            first17 = f"{rng.choice(_COUNTIES)}{born:%Y%m%d}{rng.randrange(1000):03d}"
        seen.add(first17)
        yield {
            "id": f"r-{seed}-{i:07d}",
            "name": rng.choice(_SURNAMES) + "某",
            "id_number": first17 + id_number_check_digit(first17),
            "region": rng.choice(towns),
            "tags": rng.sample(_TAGS, rng.choice([0, 1, 1, 2, 3])),
            "interests": " ".join(rng.sample(_INTERESTS, 2)),
            "contact": {"phone": f"1{rng.choice('3589')}{rng.randrange(10**9):09d}", "wechat_openid": None, "app_registration_id": None},
            "channels": ["sms"],
            "categories": [],
            "consent": rng.random() < 0.92,
        }


def write_jsonl(records: Iterator[dict], path: Path) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    return n
