"""How one clause (a sentence that says who may apply) becomes logic: the rules a staff member can
check against the source sentence.

- A clause is cut into *segments* at 的, commas, 且 / 并 / 同时 and semicolons: segments are
  joined by ``all`` (each one narrows who may apply).
- A segment is cut into *pieces* at list words (、 和 及 以及 与 或 或者).  Two neighbouring pieces
  are alternatives (``any``) when the text says 或, or when both name the same kind of thing
  (kinds of person or enterprise: tags, qualifications, industries, sizes, ages; or places).
  "具有盘锦市户籍、持有残疾人证" names a place and a tag: both must hold.
- Exclusions (不予支持, 不在…范围, 除外 …) negate what they name, but only when what they name is
  all they say; "重新认定（复审）的高新技术企业不在本次奖励范围" is reported, not negated.
- A condition the language cannot hold (R&D spending, a clean record, a housing grade …) is
  reported as unsupported.  When it is one side of an 或, the other side is not kept either: it
  alone would turn away people the text admits.

The whole document (numbered items, exclusion lists) is read in ``conditions``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from matchers import field_spec

from .mentions import Mention, find_mentions
from .places import Gazetteer, Setting
from .text import Sentence

__all__ = ["EXCLUSION", "Group", "Leaf", "Node", "field_class", "read_clause"]


@dataclass(slots=True)
class Leaf:
    condition: dict[str, Any]
    confidence: float
    sentence: Sentence
    start: int  #: absolute offsets of the words the condition came from
    end: int


@dataclass(slots=True)
class Group:
    logic: str  #: "all" or "any"
    children: list[Node] = field(default_factory=list)


Node = Leaf | Group


# -- masks: parts of a clause that do not restrict who may apply ---------------------------------
_ELABORATION = re.compile(r"\((?:含|包括|包含|如|例如|其中|主要|即|以下简称|不含)[^()]*\)|《[^》]*》")
#: ", 重点支持餐饮、住宿…" / ", 优先安置…": who comes first, not who may apply
_PRIORITY = re.compile(r"[,，]\s*(?:重点|优先)(?:支持|扶持|保障|资助|帮扶|安排|安置|考虑|筛查|发展)[^;。]*")
_ELABORATION_TAIL = re.compile(r"[,，]\s*包括[^;。]*|(?:不得|不能|主要)?(?<!适)用于[^;。]*")
#: "(双台子区、兴隆台区、大洼区、盘山县)": places listed inside the one before them
_PLACE_LIST = re.compile(r"\((?:[\u4e00-\u9fff]{2,12}?(?:区|县|市|镇|乡|街道|开发区)[、,和及与]?)+(?:等)?\)")
_ITEM_LABEL = re.compile(r"^\s*[^,;。:]{2,16}?(?:补贴|补助|奖励|资助|贴息|津贴|救助|保险)\s*[:：]")
_EXCLUSION = re.compile(
    r"不予(?:支持|受理|补助|奖励|补贴|纳入|享受)|不得(?:申报|申请|享受|纳入)|不能申请|不再(?:重复)?(?:纳入|享受|申报)"
    r"|不在[^;。]{0,10}范围|不属于[^;。]{0,10}对象|不享受|除外|不列入|不纳入|排除"
)
_FILLER = re.compile(
    r"[的、,，和及或与为是已被其者等\s]|企业|单位|人员|对象|本次|本项|申报|申请|纳税信用|信用|等级|家庭|办理|补贴|补助|奖励|"
    r"范围|有|下列|情形|之一|以下|评价|认定|纳入|列入|登记|中|个人|外|注册|在|本"
)
_CUE = re.compile(
    r"\d+(?:\.\d+)?\s*(?:%|万元|亿元|元|人|年|个月|项|亩|平方米|万美元|美元|次|户|张)|不低于|不少于|不超过|不高于|达到|以上|以下|以内"
    r"|未发生|未被|无[^,;。]{0,8}记录|失信|事故|违法|处罚|拥有|取得|签订|缴纳|就读|在读|首次|新认定|新获|列入|纳入|具有|持有|"
    r"通过|获得|经评估|经认定|经鉴定|无劳动能力|无生活来源|参加|考入|生育|退出现役|期满"
)
#: conditions every applicant meets anyway, not worth a reviewer's attention
_BOILERPLATE = re.compile(r"独立法人资格|依法(?:登记|注册|设立|成立)|正常经营|生产经营正常|持续经营|正常运营")

_BREAK = re.compile(r"的|且|并且|同时|并|[,;:]")
_OR_WORDS = ("或者", "或是", "或")
_CONNECT = re.compile(r"以及|或者|或是|[、和及与或]")
_COMMA_CONNECT = re.compile(r",\s*(?:以及|或者|或是|或)")

_CLASS = {
    "place": "place", "region": "place", "hukou_region": "place",
    "tags": "type", "qualifications": "type", "industry": "type", "size": "type", "age": "type", "gender": "type",
}


def _mask(text: str, pattern: re.Pattern[str]) -> str:
    return pattern.sub(lambda m: " " * len(m.group()), text)


def _clean(clause: str) -> str:
    """The clause with elaborations, priorities and item labels blanked (offsets kept)."""
    clause = _mask(clause, _ELABORATION)
    clause = _mask(clause, _ELABORATION_TAIL)
    clause = _mask(clause, _PLACE_LIST)
    clause = _mask(clause, _PRIORITY)
    label = _ITEM_LABEL.match(clause)
    if label:
        clause = " " * label.end() + clause[label.end():]
    return clause


# -- turning mentions into conditions -------------------------------------------------------------
_NEGATE_OP = {"gte": "lt", "gt": "lte", "lte": "gt", "lt": "gte", "eq": "ne", "in": "not_in", "has": "none"}


def _condition(m: Mention, audience: str) -> dict[str, Any] | None:
    fld = m.field
    if field_spec(audience, fld) is None:
        return None
    op, value = m.op, m.value
    if op == "has":
        op = "has_none" if m.negated else "has_any"
    elif op == "within":
        cond = {"field": fld, "op": "within", "value": list(value)}
        return {"not": cond} if m.negated else cond
    elif m.negated:
        if op == "between":
            return {"not": {"field": fld, "op": "between", "value": value}}
        op = _NEGATE_OP[op]
    return {"field": fld, "op": op, "value": value}


def _implausible(m: Mention) -> bool:
    """A reading no policy means: a positive requirement of tax credit rating C or D (only the poorest ratings)."""
    return m.field == "tax_credit_rating" and m.op == "in" and not m.negated and set(m.value) <= {"C", "D"}


def _merge_key(cond: dict[str, Any]) -> tuple[str, str] | None:
    if cond.get("op") in ("has_any", "within", "in"):
        return cond["field"], cond["op"]
    return None


def _union(conds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alternatives on one field become one condition: has_any [低保] | has_any [特困] → has_any [低保, 特困]."""
    out: list[dict[str, Any]] = []
    index: dict[tuple[str, str], int] = {}
    for c in conds:
        key = _merge_key(c)
        if key is not None and key in index:
            target = out[index[key]]
            target["value"] = list(dict.fromkeys([*target["value"], *c["value"]]))
            continue
        if key is not None:
            index[key] = len(out)
        out.append({**c, "value": list(c["value"])} if key else c)
    return out


#: a piece that starts with one of these states a condition ("年满60周岁、经评估为失能"), it does
#: not name a kind of applicant: such pieces side by side are all required
_PREDICATE = re.compile(r"^\s*(?:年满|已满|满|具有|持有|经|已|取得|获得|属于|纳入|在|居住|注册|成立|从事|参加|依法|未|无|是|为|拥有|近)")
_STRONG_OR = ("以及",)


@dataclass(slots=True)
class _Piece:
    start: int
    end: int
    mentions: list[Mention]
    connector: str  #: the list word before this piece ("" for the first)
    cue: bool  #: a mentionless piece that still states a condition
    predicate: bool = False


def _positions(pattern: re.Pattern[str], text: str, covered: list[bool]) -> list[re.Match[str]]:
    return [m for m in pattern.finditer(text) if not any(covered[m.start() : m.end()])]


def _pieces(clause: str, mentions: list[Mention], start: int, end: int, covered: list[bool]) -> list[_Piece]:
    cuts = [(m.start(), m.end(), m.group()) for m in _positions(_CONNECT, clause[start:end], covered[start:end])]
    pieces: list[_Piece] = []
    at, connector = start, ""
    for c_start, c_end, word in [*cuts, (end - start, end - start, "")]:
        p_start, p_end = at, start + c_start
        inside = [m for m in mentions if p_start <= m.start < p_end]
        residue = clause[p_start:p_end]
        for m in inside:
            residue = residue.replace(clause[m.start : m.end], " ")
        cue = not inside and bool(_CUE.search(residue)) and not _BOILERPLATE.search(residue)
        pieces.append(_Piece(p_start, p_end, inside, connector, cue, bool(_PREDICATE.match(clause[p_start:p_end]))))
        at, connector = start + c_end, word
    return pieces


def _compatible(a: list[Mention], b: list[Mention]) -> bool:
    ca = {_CLASS.get(m.field, "figure") for m in a}
    cb = {_CLASS.get(m.field, "figure") for m in b}
    if ca != cb:
        return False
    if ca == {"place"}:
        return {m.field for m in a} == {m.field for m in b}
    return ca == {"type"}


@dataclass(slots=True)
class _ClauseResult:
    node: Node | None
    unsupported: list[str]


def _leaf(m: Mention, audience: str, sentence: Sentence, base: int, factor: float) -> Leaf | None:
    cond = _condition(m, audience)
    if cond is None:
        return None
    return Leaf(cond, round(m.confidence * factor, 3), sentence, base + m.start, base + m.end)


def _implied(m: Mention, audience: str, sentence: Sentence, base: int, factor: float) -> Leaf | None:
    if not m.implies or m.negated:
        return None
    extra = Mention(m.field, "has", [m.implies], m.start, m.end, m.confidence * 0.95)
    return _leaf(extra, audience, sentence, base, factor)


def _or_node(pieces: list[_Piece], audience: str, sentence: Sentence, base: int, factor: float) -> Node | None:
    """Alternatives: one child per piece (its mentions all required), alike conditions merged."""
    children: list[Node] = []
    singles: list[Leaf] = []
    hoisted: list[Leaf] = []
    first, others = pieces[0], pieces[1:]
    other_fields = {m.field for p in others for m in p.mentions}
    head = next((i for i, m in enumerate(first.mentions) if m.field in other_fields), None)
    if head:
        # "35至64周岁农村妇女和城镇低保家庭妇女": the age before the first alternative's head
        # belongs to all of them
        lead, rest = first.mentions[:head], first.mentions[head:]
        if all(m.field not in other_fields for m in lead):
            hoisted = [x for m in lead if (x := _leaf(m, audience, sentence, base, factor))]
            pieces = [_Piece(first.start, first.end, rest, first.connector, first.cue), *others]
    for piece in pieces:
        leaves = [x for m in piece.mentions if (x := _leaf(m, audience, sentence, base, factor * 0.95))]
        if len(leaves) == 1:
            singles.append(leaves[0])
        elif leaves:
            children.append(Group("all", list(leaves)))
    merged: list[Leaf] = []
    by_key: dict[tuple[str, str], Leaf] = {}
    for leaf in singles:
        key = _merge_key(leaf.condition)
        if key and key in by_key:
            target = by_key[key]
            target.condition = _union([target.condition, leaf.condition])[0]
            target.start, target.end = min(target.start, leaf.start), max(target.end, leaf.end)
            target.confidence = min(target.confidence, leaf.confidence)
            continue
        if key:
            leaf.condition = {**leaf.condition, "value": list(leaf.condition["value"])}
            by_key[key] = leaf
        merged.append(leaf)
    children = [*merged, *children]
    if not children:
        return None
    node: Node = children[0] if len(children) == 1 else Group("any", children)
    return Group("all", [*hoisted, node]) if hoisted else node


def read_clause(
    sentence: Sentence,
    audience: str,
    gazetteer: Gazetteer,
    setting: Setting,
    industries: Any,
    *,
    factor: float,
    negate: bool = False,
) -> _ClauseResult:
    """The conditions one sentence states, as a node, and what it states that cannot be held."""
    clause = _clean(sentence.text)
    mentions = find_mentions(clause, audience, gazetteer, setting, industries)
    unsupported: list[str] = []
    exclusion = _EXCLUSION.search(clause)
    if exclusion and not negate:
        subject_end = exclusion.start()
        subject = [m for m in mentions if m.end <= subject_end]
        residue = clause[:subject_end]
        for m in subject:
            residue = residue.replace(clause[m.start : m.end], " ")
        residue = _FILLER.sub("", residue)
        if subject and len(residue) <= 4:
            mentions = [_negated(m) for m in subject]
        else:
            text = sentence.text.strip()
            if not _BOILERPLATE.search(text):
                unsupported.append(text)
            return _ClauseResult(None, unsupported)
    elif negate:
        mentions = [_negated(m) for m in mentions]
    if any(_implausible(m) for m in mentions):
        # most likely a 不 lost in a scan or a copy ("纳税信用等级(不)为C级或D级"): shown to staff, never suggested
        mentions = [m for m in mentions if not _implausible(m)]
        unsupported.append(sentence.text.strip())
    if not mentions:
        said = sentence.text.strip()
        if _CUE.search(clause) and not _BOILERPLATE.search(clause) and said not in unsupported:
            unsupported.append(said)
        return _ClauseResult(None, unsupported)

    covered = [False] * len(clause)
    for m in mentions:
        for i in range(m.start, m.end):
            covered[i] = True
    # segments at 的, commas, 且 …; a comma followed by 或 / 以及 joins instead
    joins = {m.start() for m in _positions(_COMMA_CONNECT, clause, covered)}
    cuts = [m for m in _positions(_BREAK, clause, covered) if m.start() not in joins]
    bounds = [0, *[c.start() for c in cuts], len(clause)]
    seg_nodes: list[Node] = []
    seg_spans: list[tuple[int, int, set[str]]] = []
    for s, e in itertools.pairwise(bounds):
        before_count = len(seg_nodes)
        if s < len(clause) and clause[s] in ",;:的且并同":
            s += 1
        pieces = _pieces(clause, mentions, s, e, covered)
        # runs of alternatives
        runs: list[list[_Piece]] = []
        explicit_or: list[bool] = []
        last: _Piece | None = None
        for piece in pieces:
            if not piece.mentions and not piece.cue:
                continue
            is_or = piece.connector.strip(", ") in _OR_WORDS
            listed = piece.connector.strip(", ") in _STRONG_OR or not (piece.predicate or (last is not None and last.predicate))
            if last is not None and (is_or or (piece.connector and listed and _compatible(last.mentions, piece.mentions))):
                runs[-1].append(piece)
                explicit_or[-1] = explicit_or[-1] or is_or
            else:
                runs.append([piece])
                explicit_or.append(is_or)
            last = piece
        for run, said_or in zip(runs, explicit_or, strict=True):
            with_mentions = [p for p in run if p.mentions]
            if any(p.cue for p in run):
                if said_or or (len(with_mentions) < len(run) and len(run) > 1 and said_or):
                    unsupported.append(clause[run[0].start : run[-1].end].strip())
                    continue
                unsupported.append(" ".join(clause[p.start : p.end].strip() for p in run if p.cue))
            if not with_mentions:
                continue
            if len(with_mentions) == 1:
                piece = with_mentions[0]
                for m in piece.mentions:
                    leaf = _leaf(m, audience, sentence, sentence.start, factor)
                    if leaf:
                        seg_nodes.append(leaf)
                    implied = _implied(m, audience, sentence, sentence.start, factor)
                    if implied:
                        seg_nodes.append(implied)
            else:
                node = _or_node(with_mentions, audience, sentence, sentence.start, factor)
                if node is not None:
                    seg_nodes.append(node)
        inside = [m for m in mentions if s <= m.start < e]
        if len(seg_nodes) == before_count + 1 and inside:
            seg_spans.append((inside[0].start, inside[-1].end, {x.field for x in inside}))
        else:
            seg_spans.append((-1, -1, set()))
        if len(seg_nodes) - before_count not in (0, 1):
            seg_spans.extend([(-1, -1, set())] * (len(seg_nodes) - before_count - 1))
        elif len(seg_nodes) == before_count:
            seg_spans.pop()
    seg_nodes = _join_alternatives(clause, seg_nodes, seg_spans, covered)
    if not seg_nodes:
        return _ClauseResult(None, unsupported)
    node: Node = seg_nodes[0] if len(seg_nodes) == 1 else Group("all", seg_nodes)
    return _ClauseResult(node, unsupported)


def _join_alternatives(
    clause: str, nodes: list[Node], spans: list[tuple[int, int, set[str]]], covered: list[bool]
) -> list[Node]:
    """Segments naming the same kind of thing with 或 between them are alternatives."""
    if len(nodes) != len(spans):
        return nodes
    out: list[Node] = []
    out_spans: list[tuple[int, int, set[str]]] = []
    for node, span in zip(nodes, spans, strict=True):
        if out and span[0] >= 0 and out_spans[-1][0] >= 0:
            gap = "".join(c for c, cov in zip(clause[out_spans[-1][1] : span[0]], covered[out_spans[-1][1] : span[0]], strict=False) if not cov)
            same = span[2] == out_spans[-1][2] and {_CLASS.get(f, "figure") for f in span[2]} == {"type"}
            if same and re.search(r"或者?", gap) and not re.search(r"[;。]", gap):
                previous = out[-1]
                merged = [*previous.children, node] if isinstance(previous, Group) and previous.logic == "any" else [previous, node]
                out[-1] = Group("any", merged)
                out_spans[-1] = (out_spans[-1][0], span[1], span[2])
                continue
        out.append(node)
        out_spans.append(span)
    return out


def _negated(m: Mention) -> Mention:
    m = Mention(**{f: getattr(m, f) for f in m.__dataclass_fields__})
    m.negated = not m.negated
    return m


def field_class(field_name: str) -> str:
    """"place", "type" (a kind of person or enterprise) or "figure" (a number) for a criteria field."""
    return _CLASS.get(field_name, "figure")


#: exclusion words: the public name of the pattern for the document-level reading
EXCLUSION = _EXCLUSION
