"""From the sentences that say who may apply to a criteria tree in the documented language.

Each sentence is read as a clause (``clauses``: segments, pieces, alternatives, exclusions); this
module joins what the sentences of a document say:

- Numbered items under "下列情形之一" (or a 对象 heading listing kinds of applicant) are
  alternatives; items under 条件 are all required; each item of an exclusion list is negated on its own.
- A 支持范围 that lists project types rather than applicants is skipped.
- A condition no field holds is reported as unsupported with its sentence.
- What is read from damaged text is never offered as confident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .clauses import EXCLUSION, Group, Leaf, Node, field_class, read_clause
from .places import Gazetteer, Setting
from .text import Kind, Sentence

__all__ = ["Extraction", "Group", "Leaf", "Node", "Unsupported", "extract_criteria"]


@dataclass(slots=True)
class Unsupported:
    text: str
    sentence: Sentence
    reason: str
    confidence: float


# -- the whole document ---------------------------------------------------------------------------
_KIND_FACTOR = {Kind.WHO: 1.0, Kind.EXCLUDE: 0.95, Kind.SCOPE: 0.8}
_ANY_LEAD = re.compile(r"之一|任一|其中一|下列(?:人员|对象|老年人|企业|单位|群体|家庭)|以下(?:人员|对象|群体)")
_ALL_LEAD = re.compile(r"同时|全部|均|以下条件|下列条件|应当具备|须具备|须满足")
_SUBJECT_TITLE = re.compile(r"对象|主体")


_DAMAGED_CAP = 0.75


def _cap(node: Node, limit: float) -> None:
    if isinstance(node, Leaf):
        node.confidence = min(node.confidence, limit)
        return
    for child in node.children:
        _cap(child, limit)


#: an applicant's own age bound below this is not something policies say (a child's age is read
#: as someone else's); it is what a two-digit age becomes when a copy drops one of its digits
_LEAST_AGE = 16


def _cap_implausible(node: Node) -> None:
    if isinstance(node, Leaf):
        value = node.condition.get("value")
        if node.condition.get("field") == "age" and isinstance(value, int | float) and value < _LEAST_AGE:
            node.confidence = min(node.confidence, _DAMAGED_CAP)
        return
    for child in node.children:
        _cap_implausible(child)


def _items_logic(title: str, lead: str, kind: Kind, nodes: list[Node]) -> str:
    if kind is Kind.EXCLUDE:
        return "all"  # each excluded case is negated on its own: not(a or b) = not a and not b
    if _ALL_LEAD.search(lead):
        return "all"
    if _ANY_LEAD.search(lead):
        return "any"
    if _SUBJECT_TITLE.search(title) and not re.search(r"条件|要求", title) and len(nodes) > 1:
        # each item names a kind of applicant when it names a tag, qualification or industry
        return "any" if all(_names_type(n) for n in nodes) else "all"
    return "all"


def _names_type(node: Node) -> bool:
    if isinstance(node, Leaf):
        return field_class(node.condition.get("field", "")) == "type" or "not" in node.condition
    return any(_names_type(c) for c in node.children)


@dataclass(slots=True)
class Extraction:
    tree: Node | None
    unsupported: list[Unsupported]


def extract_criteria(
    sentences: list[Sentence],
    audience: str,
    gazetteer: Gazetteer,
    setting: Setting,
    industries: Any,
    quality: dict[int, float] | None = None,
) -> Extraction:
    """The criteria the who-sentences of a policy state, and what they state that cannot be held.

    ``quality``: per sentence start offset, a factor in (0, 1] by which damaged text lowers the
    confidence of what is read from it."""
    quality = quality or {}
    top: list[Node] = []
    unsupported: list[Unsupported] = []
    lists: dict[tuple[str, str, int], list[Node]] = {}
    list_meta: dict[tuple[str, str, int], tuple[str, str, Kind]] = {}
    items_seen: dict[tuple[str, str, int], set[int]] = {}
    incomplete: set[tuple[str, str, int]] = set()
    applicant_scopes = {
        s.section for s in sentences
        if s.kind is Kind.SCOPE and re.search(r"注册|登记|居住|户籍|成立|年满|周岁", s.text)
    }
    for index, sentence in enumerate(sentences):
        if sentence.kind not in _KIND_FACTOR:
            continue
        lead_excludes = bool(EXCLUSION.search(sentence.lead))
        if sentence.kind is Kind.EXCLUDE and not sentence.item and not EXCLUSION.search(sentence.text):
            continue  # the lead-in of an exclusion list itself ("有下列情形之一的，不予支持：")
        if sentence.kind is Kind.SCOPE and sentence.section not in applicant_scopes:
            continue  # a 支持范围 listing project types, not applicants
        q = quality.get(sentence.start, 1.0)
        factor = _KIND_FACTOR[sentence.kind] * q
        negate = sentence.kind is Kind.EXCLUDE and bool(sentence.item) and lead_excludes
        result = read_clause(sentence, audience, gazetteer, setting, industries, factor=factor, negate=negate)
        if result.node is not None:
            _cap_implausible(result.node)
        if q < 1.0 and result.node is not None:
            # a sentence that looks damaged may have lost an alternative or a negation: nothing
            # read from it is offered as confident
            _cap(result.node, _DAMAGED_CAP)
        unsupported.extend(
            Unsupported(text, sentence, "no field of the criteria language holds this condition", round(0.7 * factor, 3))
            for text in result.unsupported
            if text
        )
        if sentence.item and sentence.lead:
            key = (sentence.section, sentence.lead, index - sentence.item)
        elif sentence.item and sentence.kind in (Kind.WHO, Kind.EXCLUDE):
            key = (sentence.section, "", -1)
        else:
            if result.node is not None:
                top.append(result.node)
            continue
        key = next((k for k in lists if k[:2] == key[:2] and (k[2] == key[2] or key[2] == -1 or k[2] == -1)), key)
        lists.setdefault(key, [])
        items_seen.setdefault(key, set()).add(sentence.item)
        if result.node is None or result.unsupported or q < 1.0:
            incomplete.add(key)  # an item read as nothing, only in part, or from damaged words
        if result.node is None:
            continue
        if len(lists[key]) < sentence.item:
            lists[key].append(result.node)
        else:  # a second sentence of the same item: both hold
            last = lists[key][-1]
            lists[key][-1] = Group("all", [last, result.node])
        list_meta[key] = (sentence.section, sentence.lead, sentence.kind)
    for key, nodes in lists.items():
        if not nodes:
            continue
        title, lead, kind = list_meta[key]
        logic = _items_logic(title, lead, kind, nodes)
        skipped = items_seen[key] != set(range(1, max(items_seen[key]) + 1))
        if logic == "any" and (key in incomplete or skipped):
            # alternatives with one missing or misread (or its number skipped): who the others
            # admit is too few.  (In an "all" list a missing item leaves the others true.)
            for node in nodes:
                _cap(node, _DAMAGED_CAP)
        top.append(nodes[0] if len(nodes) == 1 else Group(logic, nodes))
    if not top:
        return Extraction(None, unsupported)
    return Extraction(top[0] if len(top) == 1 else Group("all", top), unsupported)
