"""When applications open and close: ``apply_from`` and ``apply_until`` from the text.

Read in this order of trust:

1. an application window: 申报 / 申请 / 受理 / 申领 / 报名 time, "…年…月…日至…年…月…日",
   "即日起至…", "自发布之日起30日内", "每年3月1日至4月30日";
2. a deadline alone: 截止 / 截至 / "…前报送";
3. the policy's period of validity: 自…起施行, 有效期至…, 有效期N年; 长期有效 / 常年受理
   says there is no deadline.

Dates that qualify applicants (2021年1月1日以后成立, 2025年7月1日以后开工) are not windows.
Relative forms count from ``published_on``; without it they are reported but not filled in.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import re
from dataclasses import dataclass

from .lexicon import cue
from .text import Kind, Sentence, SentenceFinding, cn_number

__all__ = ["DateFinding", "find_window"]

_CN = r"[〇零一二三四五六七八九十]"
_Y = rf"((?:19|20)\d{{2}}|二{_CN}{{3}})\s*年"
_M = rf"(\d{{1,2}}|{_CN}{{1,3}})\s*月"
_D = rf"(\d{{1,2}}|{_CN}{{1,3}})\s*[日号]"
_FULL = re.compile(rf"{_Y}\s*{_M}\s*{_D}")
_ISO = re.compile(r"((?:19|20)\d{2})\s*[-./]\s*(\d{1,2})\s*[-./]\s*(\d{1,2})(?!\d)")
_MONTH_DAY = re.compile(rf"(?<![\d年]){_M}\s*{_D}")
_YEAR_MONTH = re.compile(rf"{_Y}\s*{_M}\s*(底|末|上旬|中旬|下旬)?(?!\s*\d{{0,2}}\s*[日号])")
_MONTH_END = re.compile(rf"(?<![\d年]){_M}\s*(底|末)")

_APPLY = cue("apply")
_CONDITION = cue("condition")
_SEP = r"\s*(?:至|到|-|—|–|~|～|起至|起到|起\s*至)\s*"
_LONG_TERM = cue("long_term")
_FROM_PUBLISH = re.compile(r"(?:即日起|自(?:本)?(?:通知|公告|办法|指南|细则|方案)?(?:发布|印发|公布|下发)之日起)")
_RELATIVE = re.compile(r"(?:自|从)?(?:本)?(?:通知|公告|办法|指南|细则|方案)?(?:发布|印发|公布)之日起\s*(\d+|[一二三四五六七八九十]+)\s*(日|天|个工作日|个月)内")
_EVERY_YEAR = re.compile(rf"每年\s*{_M}\s*(?:{_D})?(?:{_SEP}{_M}\s*(?:{_D})?)?")
_VALID_FROM = re.compile(r"(?:自|从|于)?\s*$")
_VALIDITY = cue("validity")
_VALID_YEARS = re.compile(r"有效期\s*(?:为)?\s*(\d+|[一二三四五六七八九十]+)\s*年")


#: field apply_from or apply_until; value None: "no deadline" (长期有效) or a relative date without published_on
DateFinding = SentenceFinding[dt.date | None]


@dataclass(frozen=True, slots=True)
class _Date:
    day: dt.date
    start: int
    end: int
    month_only: bool = False


def _num(token: str) -> int | None:
    return cn_number(token)


def _make(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _month_day(year: int, month: int, tail: str | None, *, end: bool) -> dt.date | None:
    if not 1 <= month <= 12:
        return None
    last = calendar.monthrange(year, month)[1]
    if tail in ("底", "末", "下旬") or (end and not tail):
        return dt.date(year, month, last)
    if tail == "中旬":
        return dt.date(year, month, 20 if end else 11)
    if tail == "上旬":
        return dt.date(year, month, 10 if end else 1)
    return dt.date(year, month, 1)


def _dates(text: str, default_year: int | None) -> list[_Date]:
    """Every date in ``text``; a month and day without a year take the year before them."""
    found: list[_Date] = []
    taken: list[tuple[int, int]] = []

    def free(s: int, e: int) -> bool:
        return not any(s < te and ts < e for ts, te in taken)

    for m in _FULL.finditer(text):
        y, mo, d = _num(m.group(1)), _num(m.group(2)), _num(m.group(3))
        day = _make(y, mo, d) if y and mo and d else None
        if day:
            found.append(_Date(day, m.start(), m.end()))
            taken.append((m.start(), m.end()))
    for m in _ISO.finditer(text):
        day = _make(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if day and free(m.start(), m.end()):
            found.append(_Date(day, m.start(), m.end()))
            taken.append((m.start(), m.end()))
    for m in _YEAR_MONTH.finditer(text):
        if not free(m.start(), m.end()):
            continue
        y, mo = _num(m.group(1)), _num(m.group(2))
        if y and mo and 1 <= mo <= 12:
            found.append(_Date(dt.date(y, mo, 1), m.start(), m.end(), month_only=True))
            taken.append((m.start(), m.end()))
    for pattern, month_only in ((_MONTH_DAY, False), (_MONTH_END, True)):
        for m in pattern.finditer(text):
            if not free(m.start(), m.end()):
                continue
            before = [d for d in found if d.end <= m.start()]
            year = max(before, key=lambda d: d.end).day.year if before else default_year
            mo = _num(m.group(1))
            if year is None or not mo:
                continue
            if month_only:
                day = _month_day(year, mo, m.group(2), end=True)
            else:
                dd = _num(m.group(2))
                day = _make(year, mo, dd) if dd else None
            if day:
                found.append(_Date(day, m.start(), m.end(), month_only=month_only))
                taken.append((m.start(), m.end()))
    return sorted(found, key=lambda d: d.start)


def _month_end(d: _Date, text: str) -> dt.date:
    tail = re.match(r"\s*(底|末|上旬|中旬|下旬)?", text[d.end:]).group(1)  # type: ignore[union-attr]
    return _month_day(d.day.year, d.day.month, tail, end=True) or d.day


def _working_days_after(start: dt.date, n: int) -> dt.date:
    day = start
    while n > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years) - dt.timedelta(days=1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def find_window(sentences: list[Sentence], published_on: dt.date | None) -> list[DateFinding]:
    """Candidates for apply_from and apply_until, best first per field (at most one each kept)."""
    default_year = published_on.year if published_on else None
    candidates: list[tuple[float, DateFinding]] = []
    long_term: Sentence | None = None
    for s in sentences:
        text = s.text
        if _LONG_TERM.search(text):
            long_term = long_term or s
        in_time = s.kind is Kind.TIME
        applying = bool(_APPLY.search(text)) or "申" in s.section or "受理" in s.section
        dates = _dates(text, default_year)
        # a line that is only a date is the signature's date, not a window
        if len(dates) == 1 and not text.replace(" ", "")[: dates[0].start].strip() and len(text.strip()) <= dates[0].end - dates[0].start + 2:
            continue
        base = 2.0 if in_time else 0.0
        base += 1.5 if applying else 0.0
        validity = bool(_VALIDITY.search(text)) or "有效期" in text
        # relative windows
        rel = _RELATIVE.search(text)
        if rel:
            n = _num(rel.group(1)) or 0
            unit = rel.group(2)
            if published_on and n:
                if unit == "个工作日":
                    until = _working_days_after(published_on, n)
                elif unit == "个月":
                    month = published_on.month - 1 + n
                    year = published_on.year + month // 12
                    until = _make(year, month % 12 + 1, min(published_on.day, calendar.monthrange(year, month % 12 + 1)[1]))
                else:
                    until = published_on + dt.timedelta(days=n)
                candidates.append((base + 3, SentenceFinding("apply_from", published_on, s, s.start + rel.start(), s.start + rel.end(), 0.8)))
                candidates.append((base + 3, SentenceFinding("apply_until", until, s, s.start + rel.start(), s.start + rel.end(), 0.8)))
            else:
                candidates.append((base, SentenceFinding("apply_until", None, s, s.start + rel.start(), s.start + rel.end(), 0.3,
                                                     note="relative deadline; needs published_on")))
            continue
        every = _EVERY_YEAR.search(text)
        if every and (in_time or applying):
            year = default_year
            m1, d1, m2, d2 = (_num(g) if g else None for g in every.groups())
            if year and m1:
                start = _make(year, m1, d1 or 1)
                end_month = m2 or m1
                end = _make(year, end_month, d2) if d2 else _month_day(year, end_month, None, end=True)
                if start and end and published_on and end < published_on:
                    start, end = _make(year + 1, m1, d1 or 1), _make(year + 1, end_month, end.day)
                if start and end:
                    span = (s.start + every.start(), s.start + every.end())
                    candidates.append((base + 2, SentenceFinding("apply_from", start, s, *span, 0.6, note="recurring every year")))
                    candidates.append((base + 2, SentenceFinding("apply_until", end, s, *span, 0.6, note="recurring every year")))
            continue
        if not dates:
            continue
        from_publish = _FROM_PUBLISH.search(text)
        # ranges: date SEP date
        used: set[int] = set()
        for a, b in itertools.pairwise(dates):
            between = text[a.end : b.start]
            if not re.fullmatch(_SEP, between) and not re.fullmatch(r"\s*起\s*", between):
                continue
            if _CONDITION.search(text[max(0, a.start - 10) : a.start]) and not applying:
                continue
            start_day, end_day = a.day, (_month_end(b, text) if b.month_only else b.day)
            if end_day < start_day:
                continue
            score = base + 2 + (0 if not validity or applying else -1.5)
            conf = 0.9 if (in_time or applying) else 0.7 if validity else 0.55
            candidates.append((score, SentenceFinding("apply_from", start_day, s, s.start + a.start, s.start + b.end, conf)))
            candidates.append((score, SentenceFinding("apply_until", end_day, s, s.start + a.start, s.start + b.end, conf)))
            used.update((id(a), id(b)))
        for d in dates:
            if id(d) in used:
                continue
            before = text[max(0, d.start - 12) : d.start]
            after = text[d.end : d.end + 10]
            if _CONDITION.search(before[-6:] + after[:6]) and not re.match(r"\s*(?:前|之前|截止)", after):
                continue
            day_end = _month_end(d, text) if d.month_only else d.day
            if from_publish and from_publish.end() <= d.start and published_on:
                candidates.append((base + 2.5, SentenceFinding("apply_from", published_on, s, s.start + from_publish.start(), s.start + d.end, 0.8)))
                candidates.append((base + 2.5, SentenceFinding("apply_until", day_end, s, s.start + from_publish.start(), s.start + d.end, 0.85)))
                continue
            if re.match(r"\s*(?:前|之前|以前|截止|止)", after) or re.search(r"(?:截止|截至|截止日期|截止时间)[为到至:]?\s*$", before):
                score = base + 1.5 + (1.0 if applying else 0)
                candidates.append((score, SentenceFinding("apply_until", day_end, s, s.start + d.start, s.start + d.end, 0.8 if applying or in_time else 0.6)))
            elif re.match(r"\s*(?:起|开始)", after) or re.search(r"(?:自|从)\s*$", before):
                score = base + (1.0 if applying else 0) + (0.5 if validity else 0)
                conf = 0.8 if applying or in_time else 0.65
                candidates.append((score, SentenceFinding("apply_from", d.day, s, s.start + d.start, s.start + d.end, conf)))
                years = _VALID_YEARS.search(text)
                if years and validity:
                    n = _num(years.group(1)) or 0
                    if n:
                        candidates.append((score - 0.5, SentenceFinding("apply_until", _add_years(d.day, n), s, s.start + d.start,
                                                                    s.start + years.end(), 0.6)))
            elif re.search(r"有效期(?:至|到)\s*$", before):
                candidates.append((base + 0.5, SentenceFinding("apply_until", day_end, s, s.start + d.start, s.start + d.end, 0.65)))
        if from_publish and validity and published_on and not dates:
            pass
    # "自发布(印发)之日起施行" without a date: validity from publication
    for s in sentences:
        m = re.search(r"自(?:本)?(?:通知|办法|细则|方案|意见)?(?:发布|印发|公布)之日起(?:施行|实施|执行|生效)", s.text)
        if m and published_on:
            candidates.append((0.5, SentenceFinding("apply_from", published_on, s, s.start + m.start(), s.start + m.end(), 0.55)))
            years = _VALID_YEARS.search(s.text)
            if years:
                n = _num(years.group(1)) or 0
                if n:
                    candidates.append((0.4, SentenceFinding("apply_until", _add_years(published_on, n), s, s.start + m.start(),
                                                        s.start + years.end(), 0.5)))
    best: dict[str, tuple[float, DateFinding]] = {}
    for score, finding in candidates:
        current = best.get(finding.field)
        if current is None or score > current[0]:
            best[finding.field] = (score, finding)
    out = [f for _, f in sorted(best.values(), key=lambda x: x[1].field)]
    has_until = "apply_until" in best and best["apply_until"][1].value is not None and best["apply_until"][0] >= 2.0
    if long_term is not None and not has_until:
        out = [f for f in out if f.field != "apply_until"]
        out.append(SentenceFinding("apply_until", None, long_term, long_term.start, long_term.end, 0.75, note="no deadline (长期有效)"))
    # a window whose end precedes its start is no window
    found = {f.field: f for f in out}
    if (
        "apply_from" in found and "apply_until" in found and found["apply_from"].value and found["apply_until"].value
        and found["apply_until"].value < found["apply_from"].value  # type: ignore[operator]
    ):
        out = [f for f in out if f.field != "apply_from"]
    return out
