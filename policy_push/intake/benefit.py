"""The most one applicant can get, in yuan (``benefit_max_yuan``).

An explicit cap (单户最高, 年度最高, 累计最高, 限额) wins; otherwise the largest amount granted;
an amount given 再 on top of another is added to it.  Monthly amounts count for a year (×12).
Loan sizes (贷款额度), thresholds (营业收入2000万元以上, 投资额500万元以上) and amounts per
unit without a cap (每亩30元) are not benefits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .lexicon import cue
from .text import Kind, Sentence, SentenceFinding, cn_number

__all__ = ["BenefitFinding", "find_benefit"]

_AMOUNT = re.compile(r"(\d+(?:\.\d+)?|[一二两三四五六七八九十百千]+)\s*(亿元|千万元|万元|千元|元)")
_SCALE = {"亿元": 100_000_000, "千万元": 10_000_000, "万元": 10_000, "千元": 1_000, "元": 1}
_LOAN = cue("loan")
_LOAN_AFTER = re.compile(r"^\s*(?:的)?(?:创业担保贷款|贷款|额度|的额度|授信)")
_THRESHOLD_BEFORE = re.compile(
    r"(?:达到|不低于|不少于|(?<!不)超过|突破|投资额|投资|营业收入|收入|资产|销售额|进出口额|注册资本|营业额|费用|研发|规模|"
    r"配套额|合同额|额度应在)[^,;。]{0,6}$"
)
_THRESHOLD_AFTER = re.compile(r"^\s*(?:\(含\))?(?:及|或)?(?:以上|以下)")
_GRANT = cue("grant")
_CAP = cue("cap")
_MONTHLY = re.compile(r"每(?:人|户|名|孩|生)?每月|每月|月补贴|/月|按月")
_PER_UNIT = re.compile(r"每(?:亩|平方米|吨|千瓦|台|件|个产品|头|只|张床位|床位|公里|立方米)")
_EXTRA = re.compile(r"再(?:给予|奖励|补助|补贴|奖补)|另(?:行)?给予|额外给予")


#: the largest sum one applicant may get, in yuan (field ``benefit_max_yuan``)
BenefitFinding = SentenceFinding[float]
_FIELD = "benefit_max_yuan"


@dataclass(frozen=True, slots=True)
class _Amount:
    yuan: float
    cap: bool
    extra: bool
    sentence: Sentence
    start: int
    end: int


def _amounts(s: Sentence) -> list[_Amount]:
    out = []
    text = s.text
    for m in _AMOUNT.finditer(text):
        number = m.group(1)
        value = float(number) if number[0].isdigit() else float(cn_number(number) or 0)
        if value <= 0:
            continue
        before, after = text[max(0, m.start() - 14) : m.start()], text[m.end() : m.end() + 8]
        near_before = before[-8:]
        monthly = bool(_MONTHLY.search(before))
        if _LOAN_AFTER.match(after) or (_LOAN.search(near_before) and not re.search(r"贴息|利息", near_before)):
            continue
        capped = bool(_CAP.search(near_before))
        if not monthly and (_THRESHOLD_AFTER.match(after) or (_THRESHOLD_BEFORE.search(before) and not capped)):
            continue
        granted = _GRANT.search(before) or _GRANT.match(after.lstrip("的")) or monthly or re.search(r"每(?:人|户|生|孩|名)", before)
        if not granted and not (out and out[-1].sentence is s):
            continue  # an amount with no word of granting, unless it continues a list of grants
        if _PER_UNIT.search(before) and not _CAP.search(near_before):
            continue
        yuan = value * _SCALE[m.group(2)]
        if monthly:
            yuan *= 12
        cap = bool(_CAP.search(near_before)) or bool(re.search(r"(?:每年|年度|总额|累计|合计)[^,;。]{0,6}最高", before))
        out.append(_Amount(yuan, cap, bool(_EXTRA.search(before)), s, s.start + m.start(), s.start + m.end()))
    return out


def find_benefit(sentences: list[Sentence]) -> BenefitFinding | None:
    amounts: list[_Amount] = []
    for s in sentences:
        if s.kind in (Kind.WHO, Kind.EXCLUDE, Kind.TIME, Kind.OTHER) and not re.search(r"最高|每人|每户|标准", s.text):
            continue
        amounts.extend(_amounts(s))
    if not amounts:
        return None
    caps = [a for a in amounts if a.cap]
    if caps:
        best = max(caps, key=lambda a: a.yuan)
        return SentenceFinding(_FIELD, best.yuan, best.sentence, best.start, best.end, 0.85)
    plain = [a for a in amounts if not a.extra]
    extras = [a for a in amounts if a.extra]
    if not plain:
        best = max(extras, key=lambda a: a.yuan)
        return SentenceFinding(_FIELD, best.yuan, best.sentence, best.start, best.end, 0.5)
    best = max(plain, key=lambda a: a.yuan)
    if extras:
        # "给予10万元；…的，再给予5万元": the top-up adds to the grant it follows
        extra = max(extras, key=lambda a: a.yuan)
        return SentenceFinding(_FIELD, best.yuan + extra.yuan, extra.sentence, best.start, extra.end, 0.6,
                              note=f"{best.yuan:g} plus {extra.yuan:g} given on top")
    return SentenceFinding(_FIELD, best.yuan, best.sentence, best.start, best.end, 0.7)
