"""What text ranks a (policy, profile) pair, and how each part of it is weighed.

docs/ranking.md gives the method, the measurements behind every choice and what each parameter
does.  In short:

* A profile is indexed by its business scope (cleaned of registration boilerplate), interests,
  qualifications and tags, and declared policy categories. Each field has a weight
  (``Ranking.profile_fields``).  A policy is queried by its title, summary, text and categories
  (``Ranking.policy_fields``).
* Profile side: saturated term frequency (BM25's ``tf (k1 + 1) / (tf + K)`` with length
  normalisation ``b``) times the idf of the term among profiles, L2-normalised.
* Policy side: term frequency times the idf of the term among policies (the catalogue the engine
  holds) times its idf in a general Chinese corpus (jieba's shipped ``idf.txt``), L2-normalised.
  Words every policy says (企业, 申报, 补贴) weigh little even when few profiles use them.
* The score is the dot product of the two unit vectors: a cosine in 0..1.

The field texts are cut as one text (one tokenizer call per profile), with a marker word between
fields that the tokenizer keeps and this module then splits on.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Ranking", "background_idf", "clean_scope", "joined_fields", "split_fields"]

#: between two fields of one text; cut by jieba as one English word, and never a real one
_MARK = "policypushfieldbreak"
_MARK_SEP = f"\n{_MARK}\n"

# Registration boilerplate of a business scope.  A parenthesis that mentions approval, licences or
# the business licence is not the firm's business.  "（不含危险化学品）" names what the firm does
# NOT do, and would otherwise match a policy on exactly that.
_SCOPE_PAREN = re.compile(r"[（(][^（）()]*?(?:依法|批准|许可证|营业执照|不含|除外|除依法|仅限|不得|凭)[^（）()]*[）)]")
_SCOPE_LABEL = re.compile(r"(?:许可项目|一般项目|许可经营项目|一般经营项目|经营范围)\s*[:：]")


def clean_scope(text: str | None) -> str:
    """A business scope without its registration boilerplate: the 许可项目/一般项目 labels and
    parentheses about approvals, licences and exclusions ("（不含许可类化工产品）")."""
    if not text:
        return ""
    return _SCOPE_LABEL.sub(" ", _SCOPE_PAREN.sub(" ", text))


@dataclass(frozen=True)
class Ranking:
    """How text is weighed; every default is chosen by measurement (docs/ranking.md).

    Parameters
    ----------
    profile_fields : mapping
        Weight of each profile field: ``business_scope``, ``interests``, ``tags`` (qualifications
        and resident tags) and ``categories``.  A weight multiplies the field's term counts.
    policy_fields : mapping
        Weight of each policy field: ``title``, ``summary``, ``text``, ``categories``.
    k1, b : float
        BM25 term-frequency saturation and length normalisation on the profile side.
    query_idf : str
        Policy-side term weight: ``"policies*background"`` (default), ``"policies"``,
        ``"background"`` or ``"none"``.
    clean_scope : bool
        Drop registration boilerplate from business scopes before cutting them.
    max_query_terms : int
        Only the heaviest terms of a policy are looked up (the rest weigh little and would each
        read a long posting list); the norm still counts every term.
    max_df, min_df_skip : float, int
        A policy term found in more than ``max_df`` of the profiles, and in at least
        ``min_df_skip`` of them, is not looked up: such a term (服务, 技术, 企业 ...) says little
        about who fits, and reading its long posting list is most of the cost of a query.  It
        still counts in the policy vector's norm.  Small indexes (every list short) skip nothing.
    """

    profile_fields: Mapping[str, float] = field(default_factory=lambda: {
        "business_scope": 1.0, "interests": 2.0, "tags": 2.0, "categories": 1.0})
    policy_fields: Mapping[str, float] = field(default_factory=lambda: {
        "title": 1.0, "summary": 1.0, "text": 1.0, "categories": 1.0})
    k1: float = 1.2
    b: float = 0.75
    query_idf: str = "policies*background"
    clean_scope: bool = True
    max_query_terms: int = 128
    max_df: float = 0.2
    min_df_skip: int = 10_000

    def __post_init__(self) -> None:
        if self.query_idf not in ("policies*background", "policies", "background", "none"):
            raise ValueError(f"query_idf {self.query_idf!r} is not one of policies*background, policies, background, none")
        bad = set(self.profile_fields) - set(PROFILE_FIELDS) | set(self.policy_fields) - set(POLICY_FIELDS)
        if bad:
            raise ValueError(f"unknown text field(s): {', '.join(sorted(bad))}")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["profile_fields"], out["policy_fields"] = dict(self.profile_fields), dict(self.policy_fields)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Ranking:
        return cls(**data)

    # -- the texts ---------------------------------------------------------------------------

    def profile_texts(self, record: Mapping[str, Any]) -> list[str]:
        """The text of each profile field, in ``PROFILE_FIELDS`` order ("" when empty)."""
        scope = record.get("business_scope") or ""
        tags = [*(record.get("qualifications") or ()), *(record.get("tags") or ())]
        return [
            clean_scope(scope) if self.clean_scope else scope,
            record.get("interests") or "",
            " ".join(tags),
            " ".join(record.get("categories") or ()),
        ]

    def policy_texts(self, policy: Mapping[str, Any]) -> list[str]:
        """The text of each policy field, in ``POLICY_FIELDS`` order."""
        return [str(policy.get("title") or ""), str(policy.get("summary") or ""), str(policy.get("text") or ""),
                " ".join(policy.get("categories") or ())]

    def profile_weights(self) -> list[float]:
        return [float(self.profile_fields.get(f, 0.0)) for f in PROFILE_FIELDS]

    def policy_weights(self) -> list[float]:
        return [float(self.policy_fields.get(f, 0.0)) for f in POLICY_FIELDS]


#: profile fields in the order ``Ranking.profile_texts`` gives them
PROFILE_FIELDS = ("business_scope", "interests", "tags", "categories")
#: policy fields in the order ``Ranking.policy_texts`` gives them
POLICY_FIELDS = ("title", "summary", "text", "categories")


def joined_fields(texts: Sequence[str]) -> str:
    """Field texts as one text for one tokenizer call (``split_fields`` undoes it)."""
    return _MARK_SEP.join(texts)


def split_fields(tokens: Sequence[str], n_fields: int) -> list[list[str]]:
    """The tokens of ``joined_fields`` output, back per field."""
    out: list[list[str]] = [[]]
    for t in tokens:
        if t == _MARK:
            out.append([])
        else:
            out[-1].append(t)
    if len(out) != n_fields:  # the marker was in someone's text: keep the tokens, lose the split
        return [[t for part in out for t in part]] + [[] for _ in range(n_fields - 1)]
    return out


def weighted_terms(token_fields: Iterable[Sequence[str]], weights: Sequence[float]) -> dict[str, float]:
    """term -> sum over fields of (count in the field x the field's weight)."""
    out: dict[str, float] = {}
    for toks, w in zip(token_fields, weights, strict=True):
        if w:
            for t in toks:
                out[t] = out.get(t, 0.0) + w
    return out


@functools.cache
def background_idf() -> tuple[dict[str, float], float]:
    """(term -> idf, median idf) of a general Chinese corpus: the ``idf.txt`` that ships with
    jieba (its keyword extractor's).  Read once per process; terms it lacks get the median."""
    import jieba

    path = os.path.join(os.path.dirname(jieba.__file__), "analyse", "idf.txt")
    idf: dict[str, float] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            word, _, value = line.strip().partition(" ")
            if value:
                idf[word] = float(value)
    values = sorted(idf.values())
    median = values[len(values) // 2] if values else 1.0
    return idf, median


def policy_idf(df: int, n: int) -> float:
    """Smooth idf of a term found in ``df`` of ``n`` policies."""
    return math.log((1 + n) / (1 + df)) + 1
