"""Seeded synthetic profiles and policies for the matching benchmarks (Panjin-like).

``write_enterprises(path, n, seed)`` / ``write_residents(path, n, seed)`` write JSONL records in
the shape the app hands the engine (sizes already effective, dates ISO strings);
``policies(n, seed, sample)`` makes ``n`` policies from templates (region + size/age + tag
criteria) with full texts taken from the sample policies.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REFDATA = ROOT / "policy_push" / "refdata" / "data"

SCOPE = [
    "石油钻采专用设备制造", "石油钻采专用设备销售", "机械零部件加工", "技术开发、技术咨询、技术服务",
    "石油和天然气开采专业及辅助性活动", "压裂酸化技术服务", "油田修井作业", "油田化学剂制造",
    "化工产品销售（不含许可类化工产品）", "基础化学原料制造", "专用化学产品制造", "合成材料制造",
    "塑料制品制造", "橡胶制品制造", "高端聚烯烃研发", "催化剂生产", "炼油、化工生产专用设备制造",
    "阀门和旋塞研发", "阀门和旋塞销售", "通用设备修理", "专用设备修理", "金属结构制造",
    "稻谷种植", "大米加工", "粮食收购", "农产品初加工活动", "水产养殖", "河蟹养殖", "水产品加工",
    "水产品冷冻加工", "海参养殖", "食品生产", "食品销售", "预包装食品销售", "农副产品销售",
    "冷链物流", "普通货物仓储服务", "道路货物运输", "国内货物运输代理", "装卸搬运",
    "软件开发", "信息系统集成服务", "信息技术咨询服务", "数据处理和存储支持服务", "工业互联网数据服务",
    "物联网技术服务", "网络技术服务", "计算机系统服务", "人工智能应用软件开发",
    "建设工程施工", "市政设施管理", "园林绿化工程施工", "土石方工程施工", "建筑材料销售",
    "住宿服务", "餐饮服务", "酒店管理", "民宿服务", "旅游业务", "会议及展览服务",
    "日用百货销售", "五金产品零售", "服装服饰零售", "家用电器销售", "汽车零配件零售",
    "环境保护专用设备制造", "环保咨询服务", "污水处理及其再生利用", "固体废物治理", "大气污染治理",
    "节能管理服务", "合同能源管理", "热力生产和供应", "供电业务", "新能源原动设备制造",
    "检验检测服务", "安全评价业务", "企业管理咨询", "人力资源服务", "劳务派遣服务",
    "货物进出口", "技术进出口", "进出口代理", "电子商务平台运营", "互联网销售（除销售需要许可的商品）",
    "物业管理", "房地产开发经营", "停车场服务", "家政服务", "养老服务", "托育服务",
]
ENT_INTERESTS = [
    "融资贷款", "稳岗", "研发补助", "技术改造", "专精特新", "高新技术企业", "人才引进", "出口",
    "外贸", "环保治理", "节能降碳", "数字化", "工业互联网", "设备更新", "乡村振兴", "惠农政策",
    "盘锦大米", "盘锦河蟹", "食品安全", "品牌建设", "创业", "纾困", "租金减免", "安全生产",
    "石化配套", "精细化工", "新材料", "电商", "物流", "冷链", "文旅", "民宿", "税收优惠",
]
QUALS = [("高新技术企业", 0.08), ("科技型中小企业", 0.12), ("专精特新中小企业", 0.03),
         ("专精特新小巨人企业", 0.005), ("首次认定高新技术企业", 0.02), ("进出口经营者备案", 0.06),
         ("出口信用保险投保企业", 0.02), ("HACCP认证", 0.02), ("ISO22000认证", 0.02),
         ("绿色食品认证", 0.03), ("地理标志产品使用授权", 0.01), ("省级企业技术中心", 0.01)]
RES_TAGS = [("参保职工", 0.45), ("低保", 0.04), ("特困", 0.01), ("残疾", 0.05), ("重度残疾", 0.015),
            ("退役军人", 0.04), ("高校毕业生", 0.08), ("失业", 0.04), ("就业困难", 0.03), ("脱贫户", 0.03),
            ("农户", 0.2), ("灵活就业", 0.06), ("育有三岁以下婴幼儿", 0.05), ("技能证书", 0.1), ("独居老人", 0.03)]
RES_INTERESTS = ["养老", "医疗", "就业", "子女教育", "技能培训", "社保", "住房", "托育", "居家养老",
                 "健康体检", "助餐", "取暖", "创业", "见习", "社保补贴", "高龄津贴", "惠农政策"]
DIVISIONS = ["25", "26", "29", "07", "11", "35", "34", "13", "14", "04", "01", "51", "52", "54", "59",
             "61", "62", "65", "70", "72", "74", "47", "48", "44"]


def _regions() -> tuple[list[str], list[str], list[str]]:
    panjin, liaoning, other = [], [], []
    with open(REFDATA / "regions.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            c = r["code"]
            if c.startswith("2111") and r["level"] in ("county", "township"):
                panjin.append(c)
            elif c.startswith("21") and r["level"] in ("county", "township"):
                liaoning.append(c)
            elif r["level"] == "county":
                other.append(c)
    return panjin, liaoning, other


def _classes() -> list[str]:
    with open(REFDATA / "industries.csv", encoding="utf-8") as f:
        return [r["code"] for r in csv.DictReader(f) if r["level"] == "class" and r["code"][:2] in DIVISIONS]


def _region(rng: random.Random, regions: tuple[list[str], list[str], list[str]]) -> str:
    x = rng.random()
    return rng.choice(regions[0] if x < 0.92 else regions[1] if x < 0.985 else regions[2])


def _maybe(rng: random.Random, value: Any, p_missing: float) -> Any:
    return None if rng.random() < p_missing else value


def _date(rng: random.Random, start: dt.date, end: dt.date) -> str:
    return (start + dt.timedelta(days=rng.randrange((end - start).days))).isoformat()


_SIZES = [("micro", 0.6), ("small", 0.3), ("medium", 0.08), ("large", 0.02)]


def size_and_employees(rng: random.Random) -> tuple[str, int]:
    size = rng.choices([s for s, _ in _SIZES], [w for _, w in _SIZES])[0]
    emp = {"micro": rng.randrange(1, 20), "small": rng.randrange(20, 300),
           "medium": rng.randrange(300, 1000), "large": rng.randrange(1000, 5000)}[size]
    return size, emp


def enterprise_measures(rng: random.Random, size: str, emp: int) -> dict[str, Any]:
    """An enterprise's size, age, staff, money, qualifications and tax rating, a few % missing; both
    benchmarks' generators draw them here (in this order, so a seed gives the same firms)."""
    return {
        "size": _maybe(rng, size, 0.03),
        "established_on": _maybe(rng, _date(rng, dt.date(1990, 1, 1), dt.date(2026, 11, 1)), 0.01),
        "employees": _maybe(rng, emp, 0.02),
        "annual_revenue_wan": _maybe(rng, round(emp * rng.uniform(5, 80), 1), 0.03),
        "total_assets_wan": _maybe(rng, round(emp * rng.uniform(5, 120), 1), 0.03),
        "qualifications": _maybe(rng, [q for q, p in QUALS if rng.random() < p], 0.02),
        "tax_credit_rating": _maybe(rng, rng.choices("ABMCD", [30, 40, 20, 6, 4])[0], 0.03),
    }


def write_enterprises(path: Path, n: int, seed: int = 20261126) -> None:
    rng = random.Random(seed)
    regions, classes = _regions(), _classes()
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            size, emp = size_and_employees(rng)
            rec = {
                "id": f"E{i:09d}", "region": _maybe(rng, _region(rng, regions), 0.01), "industry": rng.choice(classes),
                **enterprise_measures(rng, size, emp),
                "business_scope": "；".join(rng.sample(SCOPE, rng.randrange(3, 7))),
                "interests": " ".join(rng.sample(ENT_INTERESTS, rng.randrange(1, 5))),
            }
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def resident_fields(rng: random.Random, regions: tuple[list[str], list[str], list[str]], i: int) -> dict[str, Any]:
    """Resident ``i``'s matching fields (id, places, birth date, gender, tags), a few % missing; both
    benchmarks' generators add their own text and contact fields to it."""
    region = _region(rng, regions)
    return {
        "id": f"R{i:09d}", "region": _maybe(rng, region, 0.02),
        "hukou_region": _maybe(rng, region[:6] if rng.random() < 0.9 else _region(rng, regions)[:6], 0.01),
        "birth_date": _maybe(rng, _date(rng, dt.date(1926, 1, 1), dt.date(2010, 11, 26)), 0.02),
        "gender": rng.choice(["male", "female"]),
        "tags": _maybe(rng, [t for t, p in RES_TAGS if rng.random() < p], 0.03),
    }


def write_residents(path: Path, n: int, seed: int = 20261127) -> None:
    rng = random.Random(seed)
    regions = _regions()
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            rec = resident_fields(rng, regions, i)
            rec["interests"] = " ".join(rng.sample(RES_INTERESTS, rng.randrange(1, 4)))
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def policies(n: int, audience: str, sample: list[dict[str, Any]], seed: int = 7) -> list[dict[str, Any]]:
    """``n`` policies of ``audience``: region + size/age + tag criteria, sample texts."""
    rng = random.Random(seed)
    panjin = [c for c in _regions()[0] if len(c) == 6]
    texts = [p for p in sample if p["audience"] == audience]
    out = []
    for i in range(n):
        src = rng.choice(texts)
        region = {"field": "region", "op": "within", "value": rng.choice([["211100"], [rng.choice(panjin)], ["210000"]])}
        if audience == "enterprise":
            second = {"field": "size", "op": "in", "value": rng.sample(["micro", "small", "medium"], rng.randrange(1, 4))}
            tag = {"field": "qualifications", "op": "has_any", "value": [q for q, _ in rng.sample(QUALS, 2)]}
        else:
            lo = rng.randrange(16, 80)
            second = {"field": "age", "op": "between", "value": [lo, rng.choice([None, lo + 20])]}
            tag = {"field": "tags", "op": "has_any", "value": [t for t, _ in rng.sample(RES_TAGS, 2)]}
        parts = [region, second, tag][: rng.choice([1, 2, 3, 3])]
        out.append({**src, "id": f"bench-{audience[0]}-{i:05d}", "criteria": {"all": parts},
                    "apply_until": rng.choice([None, "2027-06-30", "2026-12-31", "2025-12-31"])})
    return out
