"""Issuer, document number, audience and categories of a policy text."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from .lexicon import categories, cue, departments
from .places import Gazetteer, Setting
from .text import Kind, Sentence, normalise

__all__ = ["Finding", "find_audience", "find_categories", "find_doc_number", "find_issuer"]


@dataclass(frozen=True, slots=True)
class Finding:
    value: object
    sentence: str  #: the sentence (or title) the value came from
    start: int  #: offsets in the text; -1 when it came from the title
    end: int
    confidence: float
    note: str = ""


# -- document number: 盘政发〔2026〕12号, 盘政发[2026]12号, 盘政发(2026)12号 ------------------------
_DOC = re.compile(
    r"([\u4e00-\u9fff]{1,12}?(?:发|字|函|办|规|文|令|通|告|金|贸|中小)?)\s*"
    r"[〔\[(【〖]\s*((?:19|20)\d{2})\s*[〕\])】〗]\s*(?:第\s*)?(\d{1,4})\s*号"
)
_REFERENCE_BEFORE = re.compile(r"(?:根据|依据|按照|参照|依照|转发|印发|执行|落实|《[^》]*》)[^。;]{0,30}$")


def find_doc_number(title: str, text: str, sentences: list[Sentence]) -> Finding | None:
    """The policy's own number: on a line of its own near the top, or in the title.  Numbers of
    other documents (根据《…》（辽人社〔2026〕3号）) are references, not this one."""
    norm = normalise(text)
    best: Finding | None = None
    for m in _DOC.finditer(norm):
        prefix = re.sub(r"^(?:关于|根据|依据|按照|参照|依照|的通知|通知)", "", m.group(1))
        if not prefix:
            continue
        value = f"{prefix}〔{m.group(2)}〕{m.group(3)}号"
        line_start = norm.rfind("\n", 0, m.start()) + 1
        line_end = norm.find("\n", m.end())
        line = norm[line_start : line_end if line_end != -1 else len(norm)]
        own_line = line.strip() == norm[m.start() : m.end()].strip() or len(line.strip()) <= len(m.group()) + 4
        before = norm[max(0, m.start() - 40) : m.start()]
        if _REFERENCE_BEFORE.search(before) or norm[max(0, m.start() - 2) : m.start()].endswith(("》(", "》（")):
            continue
        near_top = m.start() < 200
        if own_line and near_top:
            conf = 0.95
        elif own_line:
            conf = 0.8
        elif near_top:
            conf = 0.6
        else:
            continue
        if best is None or conf > best.confidence:
            best = Finding(value, line.strip(), m.start(), m.end(), conf)
    if best is None:
        m = _DOC.search(normalise(title))
        if m:
            best = Finding(f"{m.group(1)}〔{m.group(2)}〕{m.group(3)}号", title, -1, -1, 0.9)
    return best


# -- issuer ----------------------------------------------------------------------------------------
_DEPT: re.Pattern[str] | None = None


def _dept() -> re.Pattern[str]:
    global _DEPT
    if _DEPT is None:
        _DEPT = re.compile("|".join(map(re.escape, departments())))
    return _DEPT


def _place_before(text: str, at: int, gazetteer: Gazetteer) -> int:
    """Where the chain of place names ending at ``at`` starts ("盘锦市大洼区" before 民政局)."""
    start = at
    while True:
        for k in range(min(14, start), 1, -1):
            if text[start - k : start] in gazetteer.by_name:
                start -= k
                break
        else:
            break
    if text[max(0, start - 2) : start] == "中共":
        start -= 2
    return start


def _expand(name: str, setting: Setting, gazetteer: Gazetteer) -> str:
    """"市民政局" read in Panjin is 盘锦市民政局."""
    level = {"市": setting.city, "省": setting.province, "区": setting.county, "县": setting.county}.get(name[:1])
    if not level:
        return name
    place = gazetteer.regions.name(level)
    if not place.endswith(name[:1]):
        return name
    return place + name[1:]


def _organisations(text: str, gazetteer: Gazetteer, setting: Setting) -> list[tuple[str, int, int, bool]]:
    """Bodies named in ``text``: (full name, start, end, named with its place)."""
    out = []
    for d in _dept().finditer(text):
        start = _place_before(text, d.start(), gazetteer)
        if start < d.start():
            out.append((text[start : d.end()], start, d.end(), True))
        elif d.start() > 0 and text[d.start() - 1] in "市区县省" and text[max(0, d.start() - 2) : d.start()] not in ("县区", "各市"):
            out.append((_expand(text[d.start() - 1 : d.end()], setting, gazetteer), d.start() - 1, d.end(), False))
    return out


def find_issuer(title: str, text: str, sentences: list[Sentence], setting: Setting, gazetteer: Gazetteer) -> Finding | None:
    norm_title = normalise(title)
    m = re.match(r"^(.{2,40}?)(?:关于|印发|转发)", norm_title)
    if m:
        head = m.group(1).strip()
        orgs = _organisations(head, gazetteer, setting)
        if orgs and orgs[0][1] == 0 and orgs[-1][2] == len(head) and orgs[0][3]:
            return Finding(head, title, -1, -1, 0.9)
    norm = normalise(text)
    lines = [ln for ln in norm.split("\n") if ln.strip()]
    # a signature: an organisation alone on one of the last lines
    for ln in lines[-3:]:
        orgs = _organisations(ln.strip(), gazetteer, setting)
        if orgs and orgs[0][1] == 0 and orgs[0][2] == len(ln.strip()) and orgs[0][3]:
            at = norm.rfind(ln)
            return Finding(ln.strip(), ln.strip(), at, at + len(ln), 0.9)
    counts: Counter[str] = Counter()
    first_at: dict[str, tuple[int, int, str]] = {}
    for s in sentences:
        if s.kind is Kind.WHO:
            continue
        for name, start, end, _ in _organisations(s.text, gazetteer, setting):
            if not re.match(r"[\u4e00-\u9fff]{2,}", name) or name[:1] in "市区县省":
                continue  # a bare 市X局 that could not be placed
            weight = 2 if re.search(r"负责解释|制定本|会同|牵头|决定|研究制定|组织开展|现将|现就|审核汇总|复核", s.text) else 1
            counts[name] += weight
            first_at.setdefault(name, (s.start + start, s.start + end, s.text))
    if not counts:
        return None
    (name, score), *rest = counts.most_common()
    if rest and rest[0][1] == score:
        return None  # two bodies named as often: no guess
    start, end, sentence = first_at[name]
    return Finding(name, sentence, start, end, 0.6 if score >= 2 else 0.4)


# -- audience ---------------------------------------------------------------------------------------
_ENTERPRISE = cue("enterprise")
_RESIDENT = cue("resident")


_HIRED = re.compile(r"(?:招用|吸纳|聘用|引进|安置|招收|雇用|接收)[^,;。]{0,40}")
_PERSON_HEAD = re.compile(r"(?:职工|人员|老年人|居民|家庭|毕业生|军人|士兵|儿童|学生|妇女|农户|残疾人|青年|个人)$")


def find_audience(title: str, sentences: list[Sentence]) -> Finding:
    """Enterprise (惠企) or resident (惠民), from whom the who-sentences are about."""
    score = 0.0
    evidence = ""
    first_who = True
    for s in sentences:
        weight = 3.0 if s.kind in (Kind.WHO, Kind.EXCLUDE) else 0.5
        # people an enterprise hires are not the applicants: "企业招用…高校毕业生"
        text = _HIRED.sub("", s.text)
        e = len(_ENTERPRISE.findall(text))
        r = len(_RESIDENT.findall(text))
        # the subject of an applicant sentence is the noun it ends on: "…的企业" / "…的企业职工"
        tail = re.search(r"([\u4e00-\u9fff]{1,8}?)[,;。]?\s*$", text.rstrip("。;"))
        if s.kind is Kind.WHO and tail:
            head = tail.group(1)
            if _PERSON_HEAD.search(head):
                r += 3
            elif _ENTERPRISE.search(head):
                e += 3
            if first_who:
                weight *= 2  # the first applicant sentence says most
                first_who = False
        score += weight * (e - r)
        if s.kind is Kind.WHO and not evidence and (e or r):
            evidence = s.text
    t_e, t_r = len(_ENTERPRISE.findall(title)), len(_RESIDENT.findall(title))
    score += 2 * (t_e - t_r)
    audience = "enterprise" if score > 0 else "resident"
    confidence = min(0.95, 0.55 + abs(score) / 40)
    return Finding(audience, evidence or title, -1, -1, round(confidence, 2))


def find_categories(title: str, text: str, limit: int = 3) -> Finding | None:
    norm_title, norm = normalise(title), normalise(text)
    scores = []
    for name, pattern in categories():
        hits = 3 * len(pattern.findall(norm_title)) + len(pattern.findall(norm))
        if hits >= 2:
            scores.append((hits, name))
    if not scores:
        return None
    chosen = [name for _, name in sorted(scores, key=lambda x: -x[0])[:limit]]
    return Finding(chosen, title, -1, -1, 0.5)
