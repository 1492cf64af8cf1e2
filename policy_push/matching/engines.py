"""What the service and the offline CLI share: the reference hierarchies, one jieba tokenizer per
process (with a count of the texts cut), and the engine record of a profile."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from matchers import Hierarchy, MatchEngine, Tokenizer
from policy_push.domain import EnterpriseProfile, Policy, ResidentProfile, matcher_record
from policy_push.refdata import ReferenceData

__all__ = [
    "AUDIENCES",
    "Audience",
    "CountingTokenizer",
    "Hierarchies",
    "audience_of",
    "engine_record",
    "new_engine",
    "policy_source",
    "shared_tokenizer",
]

Audience = Literal["enterprise", "resident"]
AUDIENCES: tuple[Audience, ...] = ("enterprise", "resident")


@functools.cache
def shared_tokenizer() -> Tokenizer:
    """The process's jieba tokenizer: loading its dictionary takes about a second, so it is
    loaded once and shared, like the reference tables."""
    return Tokenizer()


class CountingTokenizer:
    """A ``Tokenizer`` stand-in that loads jieba only when there is text to cut, and counts the
    texts it cuts: ``texts_cut`` staying 0 over a restart is the proof that none was re-cut."""

    def __init__(self, inner: Tokenizer | None = None) -> None:
        self._inner = inner
        self._count_lock = threading.Lock()
        self.texts_cut = 0

    @property
    def inner(self) -> Tokenizer:
        if self._inner is None:
            self._inner = shared_tokenizer()
        return self._inner

    def _count(self, n: int) -> None:
        with self._count_lock:
            self.texts_cut += n

    def tokens(self, text: str | None) -> list[str]:
        # blank text has no tokens; not asking jieba keeps it unloaded (``MatchEngine.load``
        # compiles each saved policy with empty title, summary and text)
        if not text or text.isspace():
            return []
        self._count(1)
        return self.inner.tokens(text)

    def tokenize_many(self, texts: Sequence[str], n_jobs: int = 1, chunk_size: int = 20_000) -> list[list[str]]:
        if not texts:
            return []
        self._count(sum(1 for t in texts if t))
        return self.inner.tokenize_many(texts, n_jobs=n_jobs, chunk_size=chunk_size)

    def as_tokenizer(self) -> Tokenizer:
        # the engine only calls tokens() and tokenize_many(); it takes any object that has them
        return cast(Tokenizer, self)


@dataclass(frozen=True, slots=True)
class Hierarchies:
    """The engine's view of the reference tables (``within`` and names in reasons)."""

    regions: Hierarchy
    industries: Hierarchy

    @classmethod
    def from_ref(cls, ref: ReferenceData) -> Hierarchies:
        return cls(Hierarchy.from_pairs(ref.regions.triples()), Hierarchy.from_pairs(ref.industries.triples()))


def new_engine(audience: Audience, hier: Hierarchies, tokenizer: CountingTokenizer, *, n_jobs: int = 1) -> MatchEngine:
    return MatchEngine(audience, hier.regions, hier.industries, tokenizer.as_tokenizer(), n_jobs=n_jobs)


def audience_of(profile: EnterpriseProfile | ResidentProfile) -> Audience:
    return "enterprise" if isinstance(profile, EnterpriseProfile) else "resident"


def engine_record(profile: EnterpriseProfile | ResidentProfile, ref: ReferenceData) -> dict[str, Any]:
    """The plain record the engine indexes (derived size, birth date, hukou region resolved)."""
    return matcher_record(profile, ref.industries)


def policy_source(policy: Policy) -> dict[str, Any]:
    """The formats.md dict ``MatchEngine.compile_policy`` takes."""
    return policy.to_json()
