"""The suggester's dictionaries, shipped as data files in ``policy_push/intake/data`` and read once.

A city extends them by editing the files (or replacing the package data): vocabulary.tsv (tags
and qualifications with their patterns), industries.tsv (everyday industry names), places.tsv
(other names of places), cues.tsv (the words that mark a date, an amount or an audience),
categories.tsv and departments.txt.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

from policy_push.refdata import CodeTable

__all__ = ["Term", "categories", "cue", "departments", "industry_names", "read_rows", "vocabulary"]


def _read(name: str) -> str:
    return (resources.files("policy_push.intake") / "data" / name).read_text(encoding="utf-8")


@functools.cache
def read_rows(name: str) -> tuple[tuple[str, ...], ...]:
    """The tab-separated rows of a data file, comments and blank lines left out."""
    rows = []
    for line in _read(name).splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        rows.append(tuple(cell.strip() for cell in line.split("\t")))
    return tuple(rows)


@dataclass(frozen=True, slots=True)
class Term:
    kind: str  #: "tag" or "qualification"
    term: str
    implies: str | None
    pattern: re.Pattern[str]


@functools.cache
def vocabulary() -> tuple[Term, ...]:
    terms = []
    for row in read_rows("vocabulary.tsv"):
        kind, term, implies, pattern = row
        terms.append(Term(kind, term, implies or None, re.compile(pattern)))
    return tuple(terms)


@functools.cache
def categories() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((row[0], re.compile(row[1])) for row in read_rows("categories.tsv"))


@functools.cache
def cue(name: str) -> re.Pattern[str]:
    """The words of the list ``name`` in cues.tsv as one pattern that finds any of them."""
    words = dict(read_rows("cues.tsv"))[name].split("|")
    return re.compile("|".join(re.escape(w) for w in words))


@functools.cache
def departments() -> tuple[str, ...]:
    names = [line.strip() for line in _read("departments.txt").splitlines() if line.strip() and not line.startswith("#")]
    return tuple(sorted(names, key=len, reverse=True))


_BUILT: dict[tuple[str, int], dict[str, tuple[str, ...]]] = {}


def industry_names(industries: CodeTable) -> dict[str, tuple[str, ...]]:
    """Name → industry codes: the table's section, division and group names, each also without a
    trailing 业, plus the everyday names of industries.tsv (which also names the classes worth
    naming).  Names beginning with 其他 are left out: they only make sense in their list."""
    key = (industries.source, len(industries))
    if key in _BUILT:
        return _BUILT[key]
    out: dict[str, set[str]] = {}
    for code, name in industries.names.items():
        level = industries.levels.get(code, "")
        if name.startswith("其他") or level == "class":
            continue  # class names ("失业保险", "稻谷加工") are too close to everyday words; see industries.tsv
        variants = {name, re.sub(r"[、，]", "", name)}
        for v in list(variants):
            if v.endswith("业") and len(v) >= 4:
                variants.add(v[:-1])
        for v in variants:
            out.setdefault(v, set()).add(code)
    for row in read_rows("industries.tsv"):
        codes = tuple(c for c in row[0].split("|") if c in industries)
        for name in row[1].split("|"):
            if codes:
                out[name] = set(codes)  # the curated meaning wins over a table name
    _BUILT[key] = {k: tuple(sorted(v)) for k, v in out.items()}
    return _BUILT[key]
