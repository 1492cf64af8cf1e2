"""How damaged a sentence looks, so that what is read from a damaged one is trusted less.

Scanned and copied pages lose characters.  A lost character usually breaks a word, and the
word cutter then falls back to single characters that are not function words (的, 在, 和 …).
The share of such stray characters in a sentence, beyond what clean policy prose shows, lowers
the confidence of every suggestion taken from it.  Numbers and dates are checked elsewhere
(an impossible date is dropped, a range that runs backwards is refused).
"""

from __future__ import annotations

import functools
import itertools
import re

from .text import cn_number, normalise

__all__ = ["damage_signs", "document_share", "sentence_quality", "stray_share"]

#: characters that stand alone in clean prose
_FUNCTION = set(
    "的在和或及与等为按给对由并且年月日元万人个以上下内外起至前后者其之于被将可应须该本各每从向到同共已未不无非"
    "含即如经凡若当个户项次名张亩所把让使向再另又也都均仍级岁号"
)
_CJK = re.compile(r"[\u4e00-\u9fff]+")
_BESIDE_SYMBOL = re.compile(r"[0-9A-Za-z]")
#: stray-character share (with 10 characters of smoothing) below which a sentence counts as clean
#: (on the development set: 90 % of clean sentences ≤ 0.062; half of those with 15 % of their
#: characters deleted ≥ 0.083)
_CLEAN = 0.065
_SLOPE = 2.5
#: the same for a whole text, which says how the page was copied or scanned (clean development
#: texts: 90 % ≤ 0.067; with 5 % of characters deleted, median 0.083; with 15 %, 90 % ≥ 0.110)
_DOC_CLEAN = 0.07
_DOC_SLOPE = 3.0


@functools.cache
def _jieba():  # type: ignore[no-untyped-def]
    """A word cutter of our own (jieba's global one belongs to nobody), knowing policy terms."""
    import logging
    import tempfile
    from importlib import resources

    import jieba

    from .lexicon import vocabulary

    jieba.setLogLevel(logging.WARNING)
    cutter = jieba.Tokenizer()
    cutter.tmp_dir = tempfile.gettempdir()
    cutter.cache_file = "policy_push_intake_jieba.cache"
    cutter.initialize()
    terms = (resources.files("matchers") / "data" / "policy_terms.txt").read_text(encoding="utf-8")
    words = [line.split()[0] for line in terms.splitlines() if line.strip() and not line.startswith("#")]
    words += [t.term for t in vocabulary()]
    # the plain words inside the vocabulary's patterns ("失能", "空巢", "低保户" …)
    for t in vocabulary():
        words += [w for w in re.split(r"[^\u4e00-\u9fff]+", t.pattern.pattern) if 2 <= len(w) <= 8]
    words += ["普惠", "托育", "育有", "婴幼儿", "周岁", "申报", "申领", "补贴", "奖补", "贴息", "首贷", "入统", "纳统"]
    # place names (田庄台镇, 兴隆台区 …) are words too, though jieba's dictionary lacks most of them
    from policy_push.refdata import load_reference_data

    words += [name for name in load_reference_data().regions.names.values() if 2 <= len(name) <= 12]
    for word in words:
        cutter.add_word(word, 2000)
    return cutter


def document_share(text: str) -> float:
    """:func:`stray_share` of a whole text; 0 for texts too short to say anything about the page."""
    if sum(len(c) for c in _CJK.findall(text)) < 80:
        return 0.0
    return stray_share(text)


def stray_share(text: str, smoothing: int = 0) -> float:
    """Share of the Chinese characters of ``text`` that the word cutter leaves alone and that
    are not function words; ``smoothing`` characters are added to the count so that a short
    sentence with one abbreviation does not look damaged."""
    jieba = _jieba()
    total = stray = 0
    for m in _CJK.finditer(text):
        chunk = m.group()
        total += len(chunk)
        if len(chunk) == 1 and _BESIDE_SYMBOL.search(text[max(0, m.start() - 1) : m.end() + 1]):
            continue  # "A级", "3年": a unit beside a letter or number
        for token in jieba.lcut(chunk, HMM=False):
            if len(token) == 1 and token not in _FUNCTION:
                stray += 1
    return stray / (total + smoothing) if total else 0.0


def sentence_quality(text: str, document_share: float = 0.0) -> float:
    """A factor in [0.3, 1]: 1 for clean prose, lower as more characters look stranded, in the
    sentence and in the document it is part of (``document_share``: :func:`stray_share` of it)."""
    share = stray_share(text, smoothing=10)
    sentence = 1.0 - _SLOPE * max(0.0, share - _CLEAN)
    document = 1.0 - _DOC_SLOPE * max(0.0, document_share - _DOC_CLEAN)
    return round(max(0.3, min(1.0, sentence * document)), 3)


# -- signs that a page lost characters --------------------------------------------------------------
# A lost character often takes part of the page's structure with it: one of a pair of brackets or
# quotes, the number of a list item, the digit between 年 and 月, the letter between 或 and 级.
# Clean pages (all 54 development texts but one, whose numbered articles are an excerpt) show none
# of these; with 5 % of their characters deleted about half do.  Any such sign means the words
# beside it may have lost a digit, an alternative or a negation that nobody can see, so nothing read
# from that page is offered as confident.
_PAIRS = ("()", "“”", "《》", "〔〕", "【】", "[]")
_EMPTY_PAIR = re.compile(r"\(\s*\)|《\s*》|“\s*”|〔\s*〕|【\s*】")
_GAP = re.compile(
    r"(?:或|和|及|与|至|为|、)\s*级"  # "C级或级", "为级B级": a letter is gone
    r"|\d{4}\s*年\s*月\s*\d|(?<!\d)\d{1,2}\s*月\s*日|年\s*\d{1,2}\s*日"  # a date lost its month or day
)
#: list items numbered (一) (二) … or 1. 2. …; a skipped number inside one list is a lost item
#: (articles and chapters are left out: an excerpt skips them on purpose)
_ITEM_MARKS = (
    ("paren", re.compile(r"^\s*\(\s*([一二三四五六七八九十]{1,3})\s*\)")),
    ("num", re.compile(r"^\s*(\d{1,2})\s*[.、．](?!\d)")),
)
_UPPER_MARK = re.compile(
    r"^\s*(?:[一二三四五六七八九十]{1,3}\s*[、.．]|第[一二三四五六七八九十百]{1,4}\s*[条章节])"
)
_BROKEN_MARK = re.compile(
    r"^\s*(?:[一二三四五六七八九十]{1,3}\s*\)|\(\s*[一二三四五六七八九十]{1,3}\s*(?![)\d一二三四五六七八九十])"
    r"|第[一二三四五六七八九十百]{1,4}\s+\S)"  # "第十二 本办法": the 条 is gone
)
#: "(一)…；(二)…" on one line: an item whose number does not follow a separator lost it
_INLINE_PAREN = re.compile(r"\(\s*([一二三四五六七八九十]{1,3})\s*\)")


def damage_signs(text: str) -> list[str]:
    """What in ``text`` shows that characters were lost (empty for a page that looks whole)."""
    t = normalise(text)
    signs = [f"unbalanced {a}{b}" for a, b in _PAIRS if t.count(a) != t.count(b)]
    signs += [f"empty {m.group()}" for m in _EMPTY_PAIR.finditer(t)]
    signs += [f"gap {m.group()}" for m in _GAP.finditer(t)]
    last: dict[str, int] = {}
    for line in t.splitlines():
        if _BROKEN_MARK.match(line):
            signs.append(f"broken item number {line.strip()[:6]}")
        for a, b in itertools.pairwise(_INLINE_PAREN.finditer(line)):
            follows = cn_number(b.group(1)) == (cn_number(a.group(1)) or 0) + 1
            if follows and line[: b.start()].rstrip()[-1:] not in "：:；;。，, ":
                signs.append(f"item {b.group()} runs into the one before")
        if _UPPER_MARK.match(line):
            last.clear()  # a new section or article: its lists start afresh
            continue
        for style, pattern in _ITEM_MARKS:
            m = pattern.match(line)
            if m is None:
                continue
            n = cn_number(m.group(1))
            if n is not None and style in last and n not in (last[style] + 1, 1):
                signs.append(f"item {last[style]} then {n}")
            if n is not None:
                last[style] = n
            break
    return signs
