"""Realistic, non-repeating business scopes (经营范围) and interests for benchmarks.

Real registered scopes are not picked from a short list: each firm's registrar text combines the
products of its trade ("石油钻采专用设备及配件的制造、销售"), qualifiers (新型、智能、环保), the
activities done on them (研发、加工、维修、租赁、进出口), registration boilerplate in two styles
(the 2021 "许可项目：…；一般项目：…" form and the older one-paragraph form), parenthesised notes
("（不含危险化学品）"), and punctuation that varies from firm to firm (；, ，, 、, ASCII ";" and
",", a closing 。 or none).  Lengths range from one phrase to several hundred characters.

This module builds such texts from the vocabulary of the shipped GB/T 4754-2017 industry table:
the products and services of each class name, split from the activity word that ends it
("稻谷种植" -> 稻谷 + 种植), plus lists of qualifiers, activities and notes.  A firm's phrases lean
to its own division (60 %) as real scopes do, the rest come from anywhere.  Phrases joined with
及/和/的 make long runs of Han characters, so the tokenizer's block cache meets few repeats: the
index build measures jieba's real cost, not the cache's.

``ScopeGen(seed).scope(industry)``, ``.enterprise_interests()``, ``.resident_interests()``.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

__all__ = ["ScopeGen", "class_products"]

_INDUSTRIES = Path(__file__).resolve().parents[1] / "policy_push" / "refdata" / "data" / "industries.csv"

# activity words that end GB/T 4754 class names, longest first (so 技术服务 wins over 服务)
_ENDINGS = ("专业及辅助性活动", "技术推广服务", "技术服务", "开采辅助活动", "专用设备制造", "设备制造", "制品制造",
            "批发", "零售", "制造", "加工", "种植", "养殖", "饲养", "开采", "生产和供应", "生产", "供应", "销售",
            "服务", "修理", "维修", "管理", "经营", "开发", "建筑", "施工", "运输", "租赁", "代理", "活动",
            "处理", "治理", "采选", "捕捞", "采集", "培育", "印刷", "出版")
_ACTS = ["制造", "生产", "销售", "批发", "零售", "研发", "加工", "维修", "安装", "租赁", "技术服务", "技术开发",
         "技术咨询", "技术转让", "进出口", "回收", "检测", "设计", "仓储", "运输", "代理销售", "网上销售", "组装",
         "调试", "改造", "清洗", "保养", "推广", "收购", "经销"]
_QUALIFIERS = ["新型", "高端", "智能", "环保", "节能", "特种", "精密", "大型", "小型", "二手", "农用", "工业用", "民用",
               "日用", "专用", "通用", "医用", "食品级", "高性能", "数字化", "绿色", "有机", "进口", "国产", "定制",
               "成套", "配套", "散装", "预包装", "冷冻", "新鲜", "深加工", "初级"]
_TAILS = ["及配件", "及零部件", "及其制品", "及辅助设备", "及相关产品", "配套产品", "及原辅材料", "相关技术", "及耗材"]
_NOTES = ["（不含危险化学品）", "（不含许可类化工产品）", "（依法须经批准的项目，经相关部门批准后方可开展经营活动）",
          "（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）", "（国家禁止或限制的除外）", "（仅限分支机构经营）",
          "（涉及许可经营项目，应取得相关部门许可后方可经营）", "（不含特种设备）", "（不得从事增值电信、金融业务）",
          "（以上经营范围不含前置许可项目）", "（凭有效许可证经营）", "（除专项规定）"]
_LICENSED = ["食品经营", "道路货物运输（不含危险货物）", "危险化学品经营", "建设工程施工", "餐饮服务", "第二类增值电信业务",
             "药品零售", "燃气经营", "特种设备安装改造修理", "食品生产", "饲料生产", "农药经营", "职业中介活动",
             "住宿服务", "港口经营", "成品油零售", "建设工程设计", "劳务派遣服务", "种子生产经营", "水产养殖"]
_ENT_INTERESTS = ["融资贷款", "稳岗", "研发补助", "技术改造", "专精特新", "高新技术企业认定", "人才引进", "出口信用保险",
                  "外贸", "环保治理", "节能降碳", "数字化转型", "工业互联网", "设备更新", "乡村振兴", "惠农政策", "品牌建设",
                  "盘锦大米", "盘锦河蟹", "食品安全", "创业担保贷款", "纾困", "租金减免", "安全生产", "石化配套",
                  "精细化工", "新材料", "跨境电商", "物流", "冷链", "文旅", "民宿", "税收优惠", "社保补贴", "以工代训",
                  "首台套", "知识产权", "标准化", "上市辅导", "招商引资", "绿色工厂", "智能制造", "吸纳就业"]
_RES_INTERESTS = ["养老", "医疗", "就业", "子女教育", "技能培训", "社保", "住房", "托育", "居家养老", "健康体检", "助餐",
                  "取暖", "创业", "见习", "社保补贴", "高龄津贴", "惠农政策", "残疾人补贴", "医疗救助", "临时救助",
                  "公租房", "职业技能提升", "灵活就业", "农机补贴", "耕地地力保护", "大病保险", "学前教育资助", "助学金"]
_RES_FRAMES = ["关注{a}和{b}", "想了解{a}", "{a}、{b}", "{a} {b}", "家里老人需要{a}", "希望申请{a}", "咨询{a}政策",
               "{a}，{b}", "孩子{a}", "{a}方面的补贴"]
_ENT_FRAMES = ["希望了解{a}和{b}政策", "关注{a}", "{a}、{b}", "{a} {b}", "计划开展{a}", "需要{a}支持", "{a}；{b}",
               "申请{a}", "{a}相关补贴"]


def class_products() -> tuple[dict[str, list[str]], list[str]]:
    """(division -> product stems of its classes, all stems) from the industry table."""
    by_div: dict[str, list[str]] = defaultdict(list)
    with open(_INDUSTRIES, encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["level"] != "class" or r["name"].startswith("其他"):
                continue
            name = r["name"]
            for end in _ENDINGS:
                if name.endswith(end) and len(name) > len(end) + 1:
                    name = name[: -len(end)]
                    break
            name = name.removesuffix("的").removesuffix("和").removesuffix("及")
            if len(name) >= 2:
                by_div[r["code"][:2]].append(name)
    stems = sorted({s for v in by_div.values() for s in v})
    return dict(by_div), stems


class ScopeGen:
    """Seeded generator; one per process (``random.Random`` state is not shared)."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.by_div, self.stems = class_products()

    def _stem(self, division: str | None) -> str:
        rng = self.rng
        own = self.by_div.get(division or "")
        return rng.choice(own) if own and rng.random() < 0.6 else rng.choice(self.stems)

    def phrase(self, division: str | None = None) -> str:
        """One activity phrase, in one of the shapes registrars write."""
        rng = self.rng
        a = self._stem(division)
        if rng.random() < 0.3:
            a = rng.choice(_QUALIFIERS) + a
        if rng.random() < 0.2:
            a += rng.choice(_TAILS)
        shape = rng.random()
        acts = rng.sample(_ACTS, 3)
        if shape < 0.35:
            out = a + acts[0]
        elif shape < 0.55:
            out = f"{a}{rng.choice(['及', '和', '与'])}{self._stem(division)}的{acts[0]}"
        elif shape < 0.75:
            out = f"{a}{acts[0]}{rng.choice(['及', '、', '与'])}{acts[1]}"
        elif shape < 0.85:
            out = f"{a}的{acts[0]}、{acts[1]}、{acts[2]}"
        elif shape < 0.93:
            out = f"{acts[0]}{a}"
        else:
            out = f"{a}{self._stem(division)}{acts[0]}"
        if rng.random() < 0.12:
            out += rng.choice(_NOTES)
        return out

    def _n_phrases(self) -> int:
        return max(1, min(30, int(self.rng.lognormvariate(1.5, 0.7))))

    def scope(self, industry: str | None = None) -> str:
        """A business scope for a firm of ``industry`` (a class code, or None)."""
        rng = self.rng
        division = industry[:2] if industry else None
        sep = rng.choices(["；", "，", "、", ";", ",", "； "], [50, 20, 15, 6, 5, 4])[0]
        phrases = [self.phrase(division) for _ in range(self._n_phrases())]
        end = rng.choice(["", "。", "。", "；", ".", "（依法须经批准的项目，经相关部门批准后方可开展经营活动）"])
        if rng.random() < 0.4:  # the 2021 form: licensed business first, then the general
            lic = sep.join(rng.sample(_LICENSED, rng.randrange(1, 4)))
            tail = rng.choice(["（依法须经批准的项目，经相关部门批准后方可开展经营活动，具体经营项目以审批结果为准）", ""])
            return f"许可项目：{lic}{tail}{rng.choice(['。', '；', ' '])}一般项目：{sep.join(phrases)}{end}"
        if rng.random() < 0.1:
            return f"经营范围：{sep.join(phrases)}{end}"
        return sep.join(phrases) + end

    def enterprise_interests(self) -> str:
        return self._interests(_ENT_INTERESTS, _ENT_FRAMES, 4, [" ", "，", "；", "、"])

    def resident_interests(self) -> str:
        return self._interests(_RES_INTERESTS, _RES_FRAMES, 3, [" ", "，", "、"])

    def _interests(self, pool: Sequence[str], frames: Sequence[str], most: int, seps: list[str]) -> str:
        """1 to ``most - 1`` phrases, each a frame filled with two interests of ``pool``."""
        rng = self.rng
        parts = []
        for _ in range(rng.randrange(1, most)):
            a, b = rng.sample(pool, 2)
            parts.append(rng.choice(frames).format(a=a, b=b))
        return rng.choice(seps).join(parts)
