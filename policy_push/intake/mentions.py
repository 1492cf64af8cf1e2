"""Finders: the spans of one clause that name a condition of the criteria language.

Each finder returns :class:`Mention` objects (a field, a comparison and a value, the span and a
confidence).  They are deliberately strict: a pattern must be whole, so a damaged phrase (a
scanned page with characters missing) yields no mention rather than a wrong one, and a few
readings that a missing character could produce (a positive requirement of tax rating C or D)
are refused as implausible.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from typing import Any

from .lexicon import Term, industry_names, vocabulary
from .places import Gazetteer, Setting
from .text import cn_number

__all__ = ["Mention", "find_mentions"]

_NUM = r"(\d+(?:\.\d+)?|[一二两三四五六七八九十百千]+)"


@dataclass(slots=True)
class Mention:
    field: str  #: a criteria field, or "place" until the place's role (region / hukou) is known
    op: str  #: "has", "within", "in" (sets), or a comparison: gte, lte, gt, lt, between, eq
    value: Any
    start: int
    end: int
    confidence: float
    negated: bool = False
    implies: str | None = None
    #: words near a place that say what it is: "register", "reside", "hukou"
    role: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def span(self) -> tuple[int, int]:
        return self.start, self.end


def _num(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        n = cn_number(token)
        return float(n) if n is not None else None


def _int_or_float(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


# -- tags and qualifications --------------------------------------------------------------------
def _vocabulary(clause: str, kinds: tuple[str, ...]) -> list[Mention]:
    found: list[tuple[int, int, Term]] = []
    for term in vocabulary():
        if term.kind not in kinds:
            continue
        for m in term.pattern.finditer(clause):
            if m.end() > m.start():
                found.append((m.start(), m.end(), term))
    # longest match wins where two overlap
    found.sort(key=lambda f: (-(f[1] - f[0]), f[0]))
    taken: list[tuple[int, int, Term]] = []
    for start, end, term in found:
        if any(start < e and s < end for s, e, _ in taken):
            continue
        taken.append((start, end, term))
    out = []
    for start, end, term in sorted(taken, key=lambda f: f[0]):
        fld = "tags" if term.kind == "tag" else "qualifications"
        out.append(Mention(fld, "has", [term.term], start, end, 0.85, implies=term.implies))
    return out


# -- enterprise size ----------------------------------------------------------------------------
_SIZES: tuple[tuple[re.Pattern[str], list[str]], ...] = (
    (re.compile(r"中型(?:企业)?[、,和及与]\s*小型(?:企业)?(?:[、,和及与]|以及)\s*微型企业|中小微(?:型)?[\u4e00-\u9fff]{0,4}?企业"),
     ["medium", "small", "micro"]),
    (re.compile(r"(?<![型新特])中小(?:型)?[\u4e00-\u9fff]{0,4}?企业"), ["medium", "small", "micro"]),
    (re.compile(r"小型(?:企业)?(?:[、,和及与]|以及)\s*微型企业|小微(?:型)?[\u4e00-\u9fff]{0,4}?企业(?<!微利企业)"), ["small", "micro"]),
    (re.compile(r"(?<![小、和及型])微型企业"), ["micro"]),
    (re.compile(r"大型企业"), ["large"]),
)


#: "小微企业和“三农”担保业务", "小微企业贷款": a size named as someone's customers
_SIZE_OBJECT = re.compile(r"^(?:和|及)?[“\"]?(?:三农)?[”\"]?[^,;。]{0,3}(?:担保|贷款|业务|融资|客户|信贷|账款)")


def _sizes(clause: str) -> list[Mention]:
    out: list[Mention] = []
    for pattern, sizes in _SIZES:
        for m in pattern.finditer(clause):
            if "小型微利" in m.group() or any(m.start() < o.end and o.start < m.end() for o in out):
                continue
            if _SIZE_OBJECT.match(clause[m.end() :]):
                continue
            conf = 0.7 if sizes == ["large"] else 0.9
            out.append(Mention("size", "in", list(sizes), m.start(), m.end(), conf))
    return out


# -- industries -----------------------------------------------------------------------------------
_INDUSTRY_CONTEXT = re.compile(r"从事|属于|所属|行业|企业|领域|产业|单位|个体工商户|经营者|经营主体|公司|法人")
_INDUSTRY_ORG = re.compile(r"^[^,;。、()]{0,6}?(?:局|厅|委|办|协会|学会|主管部门|部门|园区|基地|平台)")
#: what an industry name is followed by when it names the applicant's trade ("制造业企业")
_INDUSTRY_HEAD = re.compile(
    r"^(?:等|类|的|相关)?[\u4e00-\u9fff]{0,4}?(?:企业|行业|领域|产业|单位|个体工商户|经营者|经营主体|公司|法人|工业企业|业)"
)
_INDUSTRY_VERB = re.compile(r"(?:从事|属于|所属|涉及|主营)[^,;。]{0,3}$")
_LIST_GLUE = re.compile(r"^(?:\s|[、,和及与或]|以及|或者)+")


def _industries(clause: str, industries: Any) -> list[Mention]:
    if not _INDUSTRY_CONTEXT.search(clause):
        return []
    names = industry_names(industries)
    longest = max(len(n) for n in names)
    found: list[Mention] = []
    i = 0
    while i < len(clause):
        for length in range(min(longest, len(clause) - i), 1, -1):
            name = clause[i : i + length]
            if name in names and not _INDUSTRY_ORG.match(clause[i + length :]):
                conf = 0.85 if length >= 4 else 0.75
                found.append(Mention("industry", "within", list(names[name]), i, i + length, conf))
                i += length
                break
        else:
            i += 1
    # keep a run of names ("采矿业、制造业和…") only when it names a trade: followed by 企业 / 行业 …
    # or introduced by 从事 / 属于
    out: list[Mention] = []
    run: list[Mention] = []
    for m in [*found, None]:
        if m is not None and run and _LIST_GLUE.fullmatch(clause[run[-1].end : m.start] or " "):
            run.append(m)
            continue
        if run:
            tail = clause[run[-1].end :]
            if _INDUSTRY_HEAD.match(tail) or _INDUSTRY_VERB.search(clause[: run[0].start]):
                out.extend(run)
        run = [m] if m is not None else []
    return out


# -- places ---------------------------------------------------------------------------------------
_HUKOU = re.compile(r"户籍|户口|籍贯|入伍时户籍")
_RESIDE = re.compile(r"居住|常住|生活|居民|住所|现居|定居|就业|工作|参保|参加")
_REGISTER = re.compile(r"注册|登记|设立|落户|注册地|纳税|税收|经营地|位于|辖区|行政区域|范围内")


_LEVEL_AFTER = re.compile(r"^(?:级|认定|评定|评为|专精特新|高新|科技型|创新型|示范|龙头|首台)")


def _places(clause: str, gazetteer: Gazetteer, setting: Setting, audience: str) -> list[Mention]:
    out = []
    after_including = clause.find("包括")
    for p in gazetteer.find(clause, setting):
        if after_including != -1 and p.start > after_including:
            continue
        before = clause[max(0, p.start - 8) : p.start]
        after = clause[p.end : p.end + 6]
        role = ""
        if _HUKOU.search(after[:4]) or _HUKOU.search(before[-6:]):
            role = "hukou"
        elif _REGISTER.search(before[-8:]) or _REGISTER.search(after):
            role = "register"
        elif _RESIDE.search(before[-8:]) or _RESIDE.search(after):
            role = "reside"
        if not role and (p.name in ("本市", "全市", "我市", "市内", "本省", "全省", "我省", "省内", "本区", "全区",
                                     "我区", "本县", "全县", "我县", "区内", "县内", "辖区") or _LEVEL_AFTER.match(after)):
            continue  # "送入本市备案机构", "辽宁省专精特新企业": a place, but not the applicant's
        conf = p.confidence * (1.0 if role else 0.75)
        fld = "hukou_region" if audience == "resident" and role == "hukou" else "region"
        out.append(Mention(fld, "within", [p.code], p.start, p.end, conf, role=role))
    return out


# -- ages and gender ------------------------------------------------------------------------------
_AGE = "(?:周)?岁"
_AGE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"{_NUM}\s*(?:{_AGE})?\s*(?:至|到|-|—|~|－)\s*{_NUM}\s*{_AGE}(?:\(含\))?(?:之间)?"), "between"),
    (re.compile(rf"(?:年满|已满|(?<![未不])满|年龄达到|达到)\s*{_NUM}\s*{_AGE}(?:\(含\))?(?:及|或)?(?:以上)?"), "gte"),
    (re.compile(rf"{_NUM}\s*{_AGE}(?:\(含\))?(?:及|或)?以上"), "gte"),
    (re.compile(rf"(?:未满|不满|未达到|低于|小于|不足)\s*{_NUM}\s*{_AGE}"), "lt"),
    (re.compile(rf"(?:不超过|不高于|不大于)\s*{_NUM}\s*{_AGE}"), "lte"),
    (re.compile(rf"(?:年龄在)?{_NUM}\s*{_AGE}(?:\(含\))?(?:及|或)?以下"), "lte"),
    (re.compile(rf"(?:超过|大于|高于)\s*{_NUM}\s*{_AGE}"), "gt"),
)
#: the age is someone else's (a child's) when it sits next to these words
_OTHER_PERSON = re.compile(r"婴幼儿|子女|孩子|婴儿|孙")


def _ages(clause: str) -> list[Mention]:
    out: list[Mention] = []
    for pattern, op in _AGE_PATTERNS:
        for m in pattern.finditer(clause):
            if any(m.start() < o.end and o.start < m.end() for o in out):
                continue
            around = clause[max(0, m.start() - 4) : m.end() + 4]
            if _OTHER_PERSON.search(around):
                continue
            nums = [_num(g) for g in m.groups() if g]
            if any(n is None or n > 150 for n in nums):
                continue
            if op == "between":
                lo, hi = int(nums[0]), int(nums[1])  # type: ignore[arg-type]
                if lo >= hi:
                    continue
                out.append(Mention("age", "between", [lo, hi], m.start(), m.end(), 0.9))
            else:
                out.append(Mention("age", op, int(nums[0]), m.start(), m.end(), 0.9))  # type: ignore[arg-type]
    return out


_GENDER = re.compile(r"女性|妇女(?!联合会)|女职工|(?<![妇])女(?=\d|年满)|男性|男(?=\d|年满)")


def _genders(clause: str) -> list[Mention]:
    out = []
    for m in _GENDER.finditer(clause):
        value = "female" if "女" in m.group() else "male"
        out.append(Mention("gender", "eq", value, m.start(), m.end(), 0.85))
    return out


# -- enterprise figures ---------------------------------------------------------------------------
_CMP_BEFORE = {
    "不低于": "gte", "不少于": "gte", "达到": "gte", "在": "gte", "超过": "gt", "高于": "gt", "大于": "gt", "突破": "gt",
    "首次超过": "gt", "不超过": "lte", "不高于": "lte", "低于": "lt", "少于": "lt", "小于": "lt", "不足": "lt",
}
_CMP_AFTER = {"以上": "gte", "及以上": "gte", "或以上": "gte", "(含)以上": "gte", "以下": "lte", "及以下": "lte",
              "(含)以下": "lte", "以内": "lte"}
_BEFORE_RE = "|".join(sorted(map(re.escape, _CMP_BEFORE), key=len, reverse=True))
_AFTER_RE = r"(?:\(含\))?(?:及|或)?(?:以上|以下|以内)"


def _figure(clause: str, subject: str, unit: str, field_name: str, scale: dict[str, float]) -> list[Mention]:
    pattern = re.compile(
        rf"(?:{subject})[^,;。:()%]{{0,8}}?(?:({_BEFORE_RE})\s*)?{_NUM}\s*({unit})\s*({_AFTER_RE})?"
    )
    out = []
    for m in pattern.finditer(clause):
        before, number, u, after = m.group(1), m.group(2), m.group(3), m.group(4)
        value = _num(number)
        if value is None:
            continue
        value *= scale.get(u, 1.0)
        op = None
        if after:
            op = _CMP_AFTER.get(after.replace("(含)", "").replace("及", "").replace("或", "")) or (
                "gte" if "以上" in after else "lte"
            )
        if before:
            op = _CMP_BEFORE[before] if op is None or before in ("超过", "首次超过", "突破") else op
        if op is None:
            continue
        # "参保职工30人(含)以下的企业裁员率不高于20%": a figure that only selects a sub-rule
        if re.match(r"^的?(?:企业|单位)?[^,;。]{0,6}(?:裁员率|比例|按)", clause[m.end() :]):
            continue
        out.append(Mention(field_name, op, _int_or_float(round(value, 4)), m.start(), m.end(), 0.9))
    return out


def _inside_parens(clause: str, at: int) -> bool:
    """True when ``at`` lies in parentheses that state a sub-rule ("(超过100人的企业达到8%)"),
    not a definition ("(年主营业务收入2000万元及以上)")."""
    opened = clause.rfind("(", 0, at)
    closed = clause.find(")", opened)
    if opened == -1 or closed < at:
        return False
    inside = clause[opened:closed]
    return "%" in inside or "的企业" in inside or "的单位" in inside


def _enterprise_figures(clause: str) -> list[Mention]:
    money = {"亿元": 10_000.0, "万元": 1.0, "元": 0.0001, "千万元": 1000.0}
    out = _figure(clause, r"从业人(?:员|数)|职工(?:总)?人数|员工(?:人数)?|在职职工|参保职工|用工人数|从业人员数", "人", "employees", {})
    out += _figure(clause, r"营业收入|主营业务收入|销售收入|营收|年收入|营业额|销售额", "千万元|亿元|万元|元", "annual_revenue_wan", money)
    out += _figure(clause, r"资产总额|总资产|资产规模", "千万元|亿元|万元|元", "total_assets_wan", money)
    return [m for m in out if not _inside_parens(clause, m.end - 1)]


_EST_YEARS = re.compile(
    rf"(?:成立|注册成立|注册|设立|经营)(?:时间)?\s*(满|已满|超过|不少于|不低于|达到|不满|未满|不足|不超过)?\s*{_NUM}\s*(?:个)?(?:周)?年"
    rf"\s*((?:\(含\))?(?:及|或)?(?:以上|以内|以下))?"
)
_EST_DATE = re.compile(
    r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日\s*(?:\(含\))?\s*(以后|之后|后|起|以前|之前|前)"
    r"[^,;。]{0,14}?(成立|注册成立|注册登记|登记注册|注册|设立|转型升级为企业|转为企业|登记)"
)


def _established(clause: str) -> list[Mention]:
    out = []
    for m in _EST_YEARS.finditer(clause):
        qual, number, after = m.group(1) or "", m.group(2), m.group(3) or ""
        n = _num(number)
        if n is None or n > 100:
            continue
        if qual in ("不满", "未满", "不足") or "以内" in after:
            op = "lt"
        elif qual == "不超过" or "以下" in after:
            op = "lte"
        elif qual == "超过":
            op = "gt"
        elif qual or "以上" in after:
            op = "gte"
        else:
            continue
        out.append(Mention("established_years", op, int(n), m.start(), m.end(), 0.9))
    for m in _EST_DATE.finditer(clause):
        try:
            day = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            continue
        after = m.group(4) in ("以后", "之后", "后", "起")
        if not after:
            day = day - dt.timedelta(days=1)
        out.append(Mention("established_on", "gte" if after else "lte", day.isoformat(), m.start(), m.end(), 0.85))
    return out


_RATINGS = ("A", "B", "M", "C", "D")
_TAX = re.compile(
    r"(?:纳税信用|税务信用|信用等级|纳税等级)[^,;。]{0,6}?(不为|不是|非|不属于|不得为|为|是|达到|属于|评价为|在)?\s*"
    r"((?:[ABMCD]\s*级?\s*(?:、|或|和|及|,|与)?\s*)+)\s*((?:\(含\))?(?:及|或)?(?:以上|以下))?"
)


def _tax(clause: str) -> list[Mention]:
    out = []
    for m in _TAX.finditer(clause):
        letters = [c for c in m.group(2) if c in _RATINGS]
        if not letters:
            continue
        qualifier, after = m.group(1) or "", m.group(3) or ""
        chosen = set(letters)
        if "以上" in after:
            chosen = set(_RATINGS[: max(_RATINGS.index(c) for c in letters) + 1])
        elif "以下" in after:
            chosen = set(_RATINGS[min(_RATINGS.index(c) for c in letters) :])
        negated = qualifier in ("不为", "不是", "非", "不属于", "不得为")
        values = [r for r in _RATINGS if r in chosen]
        out.append(Mention("tax_credit_rating", "in", values, m.start(), m.end(), 0.9, negated=negated))
    return out


# -- all of them ----------------------------------------------------------------------------------
_NEGATION_BEFORE = re.compile(r"(?:不为|不是|非|不属于|未被|尚未被|尚未|未|没有|无)(?:认定为|评为|认定|列为|纳入)?$")


def find_mentions(
    clause: str, audience: str, gazetteer: Gazetteer, setting: Setting, industries: Any
) -> list[Mention]:
    """Every mention in ``clause`` of a condition the audience's fields can hold."""
    mentions = _places(clause, gazetteer, setting, audience)
    if audience == "enterprise":
        mentions += _vocabulary(clause, ("qualification",))
        mentions += _sizes(clause)
        mentions += _industries(clause, industries)
        mentions += _enterprise_figures(clause)
        mentions += _established(clause)
        mentions += _tax(clause)
    else:
        mentions += _vocabulary(clause, ("tag",))
        mentions += _ages(clause)
        mentions += _genders(clause)
    # tags and qualifications negated in place: "尚未被认定为高新技术企业"
    for i, m in enumerate(mentions):
        if m.field in ("tags", "qualifications") and _NEGATION_BEFORE.search(clause[max(0, m.start - 7) : m.start]):
            mentions[i] = replace(m, negated=True)
    # a mention inside another of the same field is the same thing said twice
    mentions.sort(key=lambda m: (m.start, -(m.end - m.start)))
    kept: list[Mention] = []
    for m in mentions:
        if any(k.field == m.field and k.start <= m.start and m.end <= k.end for k in kept):
            continue
        kept.append(m)
    return kept
