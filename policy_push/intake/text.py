"""Reading a policy text: normalised characters, sections, numbered items and clauses.

Everything keeps offsets into the original text, so each suggestion can point at the sentence
it came from.  Normalisation maps each character to at most one character (full-width digits,
letters and punctuation to ASCII), which keeps offsets valid.
"""

from __future__ import annotations

import enum
import itertools
import re
import unicodedata
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = [
    "Clause",
    "Kind",
    "Sentence",
    "SentenceFinding",
    "cn_number",
    "normalise",
    "read_sentences",
]


_V = TypeVar("_V")


def _one(ch: str) -> str:
    mapped = unicodedata.normalize("NFKC", ch)
    return mapped if len(mapped) == 1 else ch


_TABLE = {c: _one(chr(c)) for c in range(0xFF01, 0xFF5F)}
_TABLE.update({ord("\u3000"): " ", ord("\u00a0"): " ", ord("〇"): "〇"})


def normalise(text: str) -> str:
    """Full-width ASCII to half-width, same length as ``text`` (offsets stay valid)."""
    return text.translate(_TABLE)


_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10_000}


def cn_number(token: str) -> int | None:
    """An Arabic or Chinese numeral (一百二十, 二〇二六, 十五) as an int; None when it is neither."""
    token = token.strip()
    if not token:
        return None
    if token.isdigit():
        return int(token)
    if all(c in _CN_DIGITS for c in token):  # positional: 二〇二六
        return int("".join(str(_CN_DIGITS[c]) for c in token))
    total, section, digit = 0, 0, None
    for c in token:
        if c in _CN_DIGITS:
            digit = _CN_DIGITS[c]
        elif c in _CN_UNITS:
            unit = _CN_UNITS[c]
            if unit == 10_000:
                total += (section + (digit or 0)) * unit
                section = 0
            else:
                section += (1 if digit is None else digit) * unit
            digit = None
        else:
            return None
    return total + section + (digit or 0)


class Kind(enum.StrEnum):
    """What a section of a policy is about, read from its heading."""

    WHO = "who"  #: 申报对象, 申报条件, 适用范围 …: who may apply
    EXCLUDE = "exclude"  #: 不予支持的情形 …: who may not
    SCOPE = "scope"  #: 支持范围: sometimes applicants, sometimes project types
    BENEFIT = "benefit"  #: 支持标准, 补贴内容 …
    TIME = "time"  #: 申报时间, 实施期限 …
    OTHER = "other"  #: materials, procedure, supervision, contacts …
    NONE = "none"  #: no heading said (short notices, preambles)


_KIND_WORDS: tuple[tuple[Kind, re.Pattern[str]], ...] = (
    (Kind.EXCLUDE, re.compile(r"不予(?:支持|受理|补助|奖励|补贴)|不得申报|负面清单|除外情形|限制条件")),
    (Kind.TIME, re.compile(r"时间|期限|日期|时限|截止|有效期|安排|申报期|受理期")),
    (Kind.WHO, re.compile(r"对象|条件|主体|资格|适用范围|申报范围|适用|入库|企业条件|基本要求|申报要求|认定标准|人员范围|哪些")),
    (Kind.SCOPE, re.compile(r"支持范围|补助范围|奖励范围|扶持范围|范围")),
    (Kind.BENEFIT, re.compile(r"标准|内容|措施|政策|方式|额度|金额|补助|奖励|奖补|贴息|补贴|资助|救助|多少|优待|支持方向|扶持")),
    (Kind.OTHER, re.compile(r"材料|程序|流程|办理|申领|监督|管理|其他|附则|咨询|联系|要求|目标|组织|受理|渠道|用途|总则|说明|服务")),
)


def section_kind(title: str) -> Kind:
    for kind, pattern in _KIND_WORDS:
        if pattern.search(title):
            return kind
    return Kind.NONE


@dataclass(frozen=True, slots=True)
class Sentence:
    """A stretch of text ending at 。；; ！？ or a line end, with its place in the document."""

    text: str  #: normalised (same length as the original slice)
    start: int
    end: int
    kind: Kind
    section: str  #: heading or inline label the sentence belongs to ("" when none)
    #: numbered item (（一）, 1., ①) this sentence belongs to within its section, 0 when none
    item: int = 0
    #: the sentence that introduced the numbered list ("…下列情形之一："), "" when none
    lead: str = ""
    #: 1-based line number, for people reading the report
    line: int = 0


@dataclass(frozen=True, slots=True)
class SentenceFinding(Generic[_V]):
    """A field's value read from one sentence: where it stands (absolute offsets), how sure the reading
    is, and a note for the reviewer ("" when none)."""

    field: str
    value: _V
    sentence: Sentence
    start: int
    end: int
    confidence: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class Clause:
    text: str
    start: int
    end: int


_TOP = re.compile(r"^\s*(?:([一二三四五六七八九十]{1,3})\s*[、.．]|第([一二三四五六七八九十百]{1,4})\s*([条章节部分]))\s*")
_SUB_PAREN = re.compile(r"^\s*[(（]\s*([一二三四五六七八九十]{1,3})\s*[)）]\s*")
_SUB_NUM = re.compile(r"^\s*(\d{1,2})\s*[.、．]\s*(?!\d)")
_SUB_CIRCLED = re.compile(r"^\s*([①②③④⑤⑥⑦⑧⑨⑩])\s*")
_QUESTION = re.compile(r"^\s*(?:问|Q)\s*[:：]\s*")
_ANSWER = re.compile(r"^\s*(?:答|A)\s*[:：]\s*")
#: "申报对象：…", "补贴标准为…", "支持对象。…": a label that works like a heading for its sentence
_LABEL = re.compile(
    r"^\s*([\u4e00-\u9fff]{2,10}?(?:对象|条件|主体|范围|标准|内容|时间|期限|时限|方式|程序|材料|要求|上限|期|安排|用途|措施|额度))"
    r"\s*(?:[:：。]|为|是|如下)"
)
_INLINE_ITEM = re.compile(r"[(（]\s*[一二三四五六七八九十]{1,3}\s*[)）]|(?<![\d.])\d{1,2}[.．、](?!\d)|[①②③④⑤⑥⑦⑧⑨⑩]")
_ENDERS = re.compile(r"[。；;！？!?]")


def _heading_title(rest: str) -> tuple[str, str]:
    """Split ``rest`` (what follows 一、) into a short title and the text after it."""
    m = re.match(r"\s*([^。:：；;，,]{1,16}?)\s*([。:：]|$)", rest)
    if m and (m.group(2) or len(rest) <= 16):
        return m.group(1), rest[m.end():]
    return "", rest


_LEAD_COLON = re.compile(r"(?:下列|以下|如下)[^:：;；。]{0,12}[:：]")


def _split_sentences(line: str, offset: int) -> list[tuple[str, int, int]]:
    out: list[tuple[str, int, int]] = []
    start = 0
    enders = sorted([*_ENDERS.finditer(line), *_LEAD_COLON.finditer(line)], key=lambda m: m.end())
    for m in enders:
        if m.end() <= start:
            continue
        out.append((line[start : m.end()], offset + start, offset + m.end()))
        start = m.end()
    if line[start:].strip():
        out.append((line[start:], offset + start, offset + len(line)))
    return [(t, s, e) for t, s, e in out if t.strip()]


_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩"


def _marker_number(marker: str) -> int:
    core = marker.strip("()（）.．、 ")
    if core in _CIRCLED:
        return _CIRCLED.index(core) + 1
    return cn_number(core) or 0


def _split_inline_items(line: str, continuing: bool) -> list[tuple[int, str, int]]:
    """A line holding "（一）…；（二）…" becomes one piece per item: (item number, text, offset).

    ``continuing``: the line itself started with an item marker (already stripped), so a single
    further marker is enough to split it."""
    marks = [m for m in _INLINE_ITEM.finditer(line)]
    # only list markers that follow a separator (or start the line) count
    marks = [m for m in marks if m.start() == 0 or line[m.start() - 1] in "：:；;。，, "]
    if len(marks) < (1 if continuing else 2):
        return [(0, line, 0)]
    pieces = []
    if marks[0].start() > 0:
        pieces.append((0, line[: marks[0].start()], 0))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(line)
        pieces.append((_marker_number(m.group()), line[m.end() : end], m.end()))
    return pieces


#: a numbered heading after the end of a sentence on the same line: "…企业。二、申报条件:…" (a text pasted or
#: copied without its line breaks); the line is read as if the heading began a new one
_INLINE_TOP = re.compile(
    r"(?<=[。;])\s*(?=[一二三四五六七八九十]{1,3}\s*、|第[一二三四五六七八九十百]{1,4}\s*条)"
)


def _lines(norm: str) -> list[tuple[int, str, int]]:
    """(line number, line, offset of its start) of ``norm``, a line cut before each inline numbered heading."""
    out: list[tuple[int, str, int]] = []
    offset = 0
    for lineno, line in enumerate(norm.split("\n"), start=1):
        cuts = [0, *(m.end() for m in _INLINE_TOP.finditer(line)), len(line)]
        for a, b in itertools.pairwise(cuts):
            if a < b or not line:
                out.append((lineno, line[a:b], offset + a))
        offset += len(line) + 1
    return out


def read_sentences(text: str) -> list[Sentence]:
    """The sentences of ``text`` with the section kind, heading and list position of each."""
    norm = normalise(text)
    sentences: list[Sentence] = []
    title, kind = "", Kind.NONE
    chapter_kind = Kind.NONE
    item, lead = 0, ""
    for lineno, line, line_start in _lines(norm):
        if not line.strip():
            continue
        body, body_at = line, 0
        top = _TOP.match(line)
        question = _QUESTION.match(line)
        answer = _ANSWER.match(line)
        sub = _SUB_PAREN.match(line) or _SUB_CIRCLED.match(line) or _SUB_NUM.match(line)
        if question:
            title, kind = line[question.end():], section_kind(line[question.end():])
            item, lead = 0, ""
            continue
        if answer:
            body_at = answer.end()
        elif top:
            rest = line[top.end():]
            if top.group(3) in ("章", "节", "部分"):
                title, kind, item, lead = rest.strip(), section_kind(rest), 0, ""
                chapter_kind = kind
                continue
            head, after = _heading_title(rest)
            if top.group(3) == "条":
                # articles carry no title: the kind comes from what the article says
                head, after = "", rest
            title = head
            kind = section_kind(head) if head else section_kind_of_text(after)
            if kind is Kind.NONE and top.group(3) == "条":
                kind = chapter_kind
            item, lead = 0, ""
            body_at = top.end() + (len(rest) - len(after))
        elif sub:
            item += 1
            rest = line[sub.end():]
            # "（一）申报主体" on a line of its own is a heading at this level
            if len(rest.strip()) <= 12 and not _ENDERS.search(rest) and section_kind(rest) != Kind.NONE:
                title, kind, item, lead = rest.strip(), section_kind(rest), 0, ""
                continue
            body_at = sub.end()
        elif kind is Kind.NONE or not item:
            label = _LABEL.match(line)
            if label:
                label_kind = section_kind(label.group(1))
                if label_kind is not Kind.NONE:
                    title, kind, item, lead = label.group(1), label_kind, 0, ""
                    body_at = label.end()
        body = line[body_at:]
        if not body.strip():
            continue
        in_line_list = 0
        for number, piece, at in _split_inline_items(body, continuing=sub is not None):
            piece_item = item
            if number:
                piece_item = number
            elif body_at == 0 and top is None and sub is None and not item:
                piece_item = 0
            for s_text, s_start, s_end in _split_sentences(piece, line_start + body_at + at):
                label = _LABEL.match(s_text)
                s_kind, s_title = kind, title
                if label and section_kind(label.group(1)) not in (Kind.NONE,) and not piece_item:
                    s_kind, s_title = section_kind(label.group(1)), label.group(1)
                elif s_kind in (Kind.NONE, Kind.OTHER, Kind.BENEFIT) and not top:
                    guessed = section_kind_of_text(s_text)
                    if guessed in (Kind.WHO, Kind.EXCLUDE, Kind.TIME) and s_kind is Kind.NONE:
                        s_kind = guessed
                if s_kind in (Kind.OTHER, Kind.NONE) and _DEFINES_APPLICANT.search(s_text):
                    s_kind = Kind.WHO
                s_item = piece_item
                if not piece_item and in_line_list:
                    # "…下列老年人：A；B；C。": the pieces after a lead in the same line are items
                    in_line_list += 1
                    s_item = in_line_list - 1
                sentences.append(
                    Sentence(s_text, s_start, s_end, s_kind, s_title, s_item, lead if s_item else "", lineno)
                )
                if not s_item and re.search(r"[:：]\s*$", s_text):
                    lead = s_text
                    in_line_list = 1
            if number:
                item = max(item, number)
        if body.rstrip().endswith((":", "：")):
            lead = body
            item = 0
    return sentences


_WHO_FRAME = re.compile(
    r"(?:对象|主体)(?:为|是|:)|(?:适用于|面向)|(?:^|[,，])\s*(?:凡|对)[^，。,]{2,60}?(?:企业|单位|人员|家庭|老年人|残疾人|毕业生|农户|个体工商户|士兵|军人)"
    r"|^\s*(?:具有|户籍在|居住在|在[^，。,]{2,14}(?:注册|登记|居住))"
    r"|应当?(?:同时)?(?:具备|符合|满足)|须同时满足|下列条件|以下条件|(?:下列|以下)(?:人员|对象|企业|单位)"
)
#: "本办法适用于…的企业", "本办法所称新就业高校毕业生，是指…": says who the policy is for
_DEFINES_APPLICANT = re.compile(r"适用于[^,;。]{0,20}(?:企业|单位|人员|居民|家庭)|所称[^,;。]{2,20}?[,，]?\s*是指")
_EXCLUDE_FRAME = re.compile(r"不予(?:支持|受理|补助|奖励|补贴)|不得(?:申报|申请|享受)|不能申请|不在[^。；]{0,10}范围|不属于[^。；]{0,10}对象")
_TIME_FRAME = re.compile(r"(?:申报|申请|受理|申领|报名|投保)(?:时间|期限|日期)|截止|截至|施行|实施期限|有效期")


def section_kind_of_text(text: str) -> Kind:
    """The kind of an untitled sentence (an article, a short notice) from what it says."""
    if _EXCLUDE_FRAME.search(text):
        return Kind.EXCLUDE
    if _WHO_FRAME.search(text):
        return Kind.WHO
    if _TIME_FRAME.search(text):
        return Kind.TIME
    return Kind.NONE
