"""Suggestions for a policy record from its title and text.

:func:`suggest_policy` reads the text and proposes the audience, categories, issuer, document
number, apply window, benefit maximum and a criteria tree; each proposal carries the sentence it
came from and a confidence.  Proposals at or above ``min_confidence`` are filled into the record
(fields the input already holds are kept; its criteria, if any, are ignored); the others are only
listed.  The filled record always passes :func:`policy_push.domain.parse_policy`: a proposal the
validators refuse is dropped, never forced in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from policy_push.domain import ValidationContext, parse_policy
from policy_push.domain.criteria import validate_criteria
from policy_push.errors import RecordInvalid
from policy_push.refdata import ReferenceData, load_reference_data

from .benefit import find_benefit
from .conditions import extract_criteria
from .dates import find_window
from .meta import find_audience, find_categories, find_doc_number, find_issuer
from .places import gazetteer
from .quality import damage_signs, document_share, sentence_quality
from .text import Sentence, read_sentences
from .tree import criteria_json, tidy

__all__ = ["DEFAULT_CITY", "SUGGESTED_FIELDS", "Suggestion", "SuggestionResult", "suggest_policy"]

#: Panjin, the service's default setting
DEFAULT_CITY = "211100"
SUGGESTED_FIELDS = (
    "audience", "categories", "issuer", "doc_number", "apply_from", "apply_until", "benefit_max_yuan", "criteria",
)


@dataclass(frozen=True, slots=True)
class Suggestion:
    id: str
    #: a policy field, "criteria" for one condition of the tree, or "unsupported" for a condition
    #: the criteria language cannot hold
    field: str
    value: Any
    sentence: str | None
    #: character offsets of the words it came from, in the record's ``text`` (None: from the title)
    span: tuple[int, int] | None
    confidence: float
    #: for a condition: where it sits in the record's criteria (None when left out of the tree)
    path: tuple[str | int, ...] | None = None
    #: whether the value is in the returned record
    applied: bool = False
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "field": self.field,
            "value": self.value,
            "sentence": self.sentence,
            "span": list(self.span) if self.span else None,
            "confidence": self.confidence,
            "applied": self.applied,
        }
        if self.field == "criteria":
            out["path"] = list(self.path) if self.path is not None else None
        if self.note:
            out["note"] = self.note
        return out


@dataclass(slots=True)
class SuggestionResult:
    record: dict[str, Any]
    suggestions: list[Suggestion] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**self.record, "suggestions": [s.to_json() for s in self.suggestions]}


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _draft_id(title: str, text: str) -> str:
    return "draft-" + hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()[:16]


def _sentence_of(sentences: list[Sentence], start: int) -> Sentence | None:
    for s in sentences:
        if s.start <= start < s.end:
            return s
    return None


def _raw(text: str, s: Sentence) -> str:
    return text[s.start : s.end].strip()


class _Builder:
    def __init__(self, text: str, min_confidence: float) -> None:
        self.text = text
        self.min_confidence = min_confidence
        self.items: list[Suggestion] = []

    def add(self, fld: str, value: Any, sentence: str | None, span: tuple[int, int] | None, confidence: float,
            *, path: tuple[str | int, ...] | None = None, note: str = "", applied: bool | None = None) -> Suggestion:
        confidence = round(max(0.0, min(1.0, confidence)), 2)
        if applied is None:
            applied = confidence >= self.min_confidence
        s = Suggestion(f"s{len(self.items) + 1}", fld, value, sentence, span, confidence, path, applied, note)
        self.items.append(s)
        return s


def suggest_policy(
    record: dict[str, Any],
    *,
    ref: ReferenceData | None = None,
    city: str = DEFAULT_CITY,
    min_confidence: float = 0.5,
    ctx: ValidationContext | None = None,
) -> SuggestionResult:
    """Suggestions for ``record`` (needs ``title``; ``text`` may be empty) read in ``city``.

    Raises :class:`RecordInvalid` when the record's own fields (those the suggester does not
    fill) are invalid, naming them."""
    ref = ref or (ctx.ref if ctx else load_reference_data())
    ctx = ctx or ValidationContext(ref=ref)
    title = record.get("title") if isinstance(record.get("title"), str) else ""
    text = record.get("text") if isinstance(record.get("text"), str) else ""
    published_on = _date(record.get("published_on"))
    sentences = read_sentences(text)
    gaz = gazetteer(ref.regions)
    setting = gaz.setting_for(str(record.get("issuer") or ""), title, text[:200], default_city=city)
    page = document_share(text)
    # a page that shows lost characters anywhere (a bracket without its pair, a skipped item
    # number, 年 without its month …) may have lost them where nothing shows: every sentence of it
    # counts as damaged, so nothing read from it is confident
    whole = 1.0 if not damage_signs(text) else _MARKED_PAGE
    quality = {s.start: min(sentence_quality(s.text, page), whole) for s in sentences}
    out = _Builder(text, min_confidence)

    # audience first: it decides which fields a condition may name
    audience_finding = find_audience(title, sentences)
    given_audience = record.get("audience") if record.get("audience") in ("enterprise", "resident") else None
    audience = given_audience or str(audience_finding.value)
    out.add("audience", audience_finding.value, audience_finding.sentence, None, audience_finding.confidence,
            applied=given_audience is None, note="" if given_audience is None else "the record names its audience")

    cats = find_categories(title, text)
    if cats:
        out.add("categories", cats.value, cats.sentence, None, cats.confidence)
    for fld, finding in (("issuer", find_issuer(title, text, sentences, setting, gaz)),
                         ("doc_number", find_doc_number(title, text, sentences))):
        if finding is None:
            continue
        if finding.start >= 0:
            where = _sentence_of(sentences, finding.start)
            sentence = _raw(text, where) if where else text[finding.start : finding.end]
            out.add(fld, finding.value, sentence, (finding.start, finding.end), finding.confidence)
        else:
            out.add(fld, finding.value, finding.sentence, None, finding.confidence)
    for finding in find_window(sentences, published_on):
        value = finding.value.isoformat() if finding.value else None
        conf = _damaged(finding.confidence, quality.get(finding.sentence.start, 1.0))
        applied = None if finding.value is not None or finding.note.startswith("no deadline") else False
        out.add(finding.field, value, _raw(text, finding.sentence), (finding.start, finding.end), conf,
                note=finding.note, applied=applied)
    benefit = find_benefit(sentences)
    if benefit:
        value: float | int = int(benefit.value) if float(benefit.value).is_integer() else round(benefit.value, 2)
        conf = _damaged(benefit.confidence, quality.get(benefit.sentence.start, 1.0))
        out.add(benefit.field, value, _raw(text, benefit.sentence), (benefit.start, benefit.end), conf, note=benefit.note)

    extraction = extract_criteria(sentences, audience, gaz, setting, ref.industries, quality)
    tree = tidy(extraction.tree, ref)
    _, leaves = criteria_json(tree)
    kept_leaves = []
    for path, leaf in leaves:
        problems = validate_criteria(leaf.condition, audience, ref)
        if problems:
            continue  # a condition the validators refuse is not suggested
        kept_leaves.append((path, leaf))
    # the tree filled into the record holds the confident conditions only
    confident = {id(leaf) for _, leaf in kept_leaves if leaf.confidence >= min_confidence}
    filled_tree = _prune(tree, confident)
    filled_json, filled_paths = criteria_json(filled_tree)
    path_of = {id(leaf): path for path, leaf in filled_paths}
    for _, leaf in kept_leaves:
        s = leaf.sentence
        out.add("criteria", leaf.condition, _raw(text, s), (leaf.start, leaf.end), leaf.confidence,
                path=path_of.get(id(leaf)), applied=id(leaf) in path_of,
                note="" if id(leaf) in path_of else "below the confidence threshold; not in the record's criteria")
    for u in extraction.unsupported:
        out.add("unsupported", u.text, _raw(text, u.sentence), (u.sentence.start, u.sentence.end), u.confidence,
                applied=False, note=u.reason)

    given = {f for f in SUGGESTED_FIELDS if f != "criteria" and record.get(f) not in (None, "", [])}
    out.items = [
        Suggestion(x.id, x.field, x.value, x.sentence, x.span, x.confidence, x.path, False, "the record gives this field")
        if x.field in given and x.applied else x
        for x in out.items
    ]
    filled = _fill(record, out.items, filled_json, title, text)
    filled = _validated(filled, out, ctx)
    return SuggestionResult(filled, out.items)


#: the quality of every sentence of a page with signs of lost characters
_MARKED_PAGE = 0.95


def _damaged(confidence: float, quality: float) -> float:
    """Confidence of a value read from a sentence of this quality: never confident (≥ 0.8)
    from a sentence that looks damaged, where a digit may be missing too."""
    return confidence * quality if quality >= 1.0 else min(confidence * quality, 0.75)


def _prune(node: Any, keep: set[int]) -> Any:
    from .conditions import Group, Leaf

    if node is None:
        return None
    if isinstance(node, Leaf):
        return node if id(node) in keep else None
    children = [c for c in (_prune(c, keep) for c in node.children) if c is not None]
    if not children:
        return None
    return children[0] if len(children) == 1 else Group(node.logic, children)


def _fill(record: dict[str, Any], items: list[Suggestion], criteria: dict[str, Any] | None, title: str, text: str) -> dict[str, Any]:
    filled = {k: v for k, v in record.items() if k != "criteria"}
    filled.setdefault("id", _draft_id(title, text))
    for s in items:
        if not s.applied or s.field in ("criteria", "unsupported"):
            continue
        if filled.get(s.field) in (None, [], ""):
            filled[s.field] = s.value
    if criteria is not None:
        filled["criteria"] = criteria
    for key in ("categories",):
        if filled.get(key) is None:
            filled.pop(key, None)
    return filled


def _validated(filled: dict[str, Any], out: _Builder, ctx: ValidationContext) -> dict[str, Any]:
    """Drop suggested values the validators refuse until the record passes; a refused field the
    input itself supplied is the caller's mistake and raises."""
    suggested = {s.field for s in out.items if s.applied}
    for _ in range(len(SUGGESTED_FIELDS) + 1):
        try:
            parse_policy(filled, ctx)
            return filled
        except RecordInvalid as exc:
            bad = {str(e.loc[0]) for e in exc.errors if e.loc}
            ours = bad & (suggested | {"criteria"})
            if not ours or bad - ours:
                raise
            for fld in ours:
                filled.pop(fld, None)
                for i, s in enumerate(out.items):
                    if s.field == fld and s.applied:
                        out.items[i] = Suggestion(s.id, s.field, s.value, s.sentence, s.span, s.confidence, None, False,
                                                  "refused by validation; not in the record")
    parse_policy(filled, ctx)
    return filled
