"""Matching JSONL files in memory, no database: the engine of ``policy-push match``.

Records are validated exactly as ``policy-push import`` validates them; a bad line is reported
with its number and left out, the others are matched.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matchers import CompiledPolicy, CriteriaError, MatchEngine
from policy_push.domain import Policy, RecordKind, ValidationContext, parse_record
from policy_push.errors import FieldError, RecordInvalid

from .engines import AUDIENCES, CountingTokenizer, Hierarchies, engine_record, new_engine, policy_source

__all__ = ["RejectedLine", "compiled_policies", "match_records", "parse_lines", "read_jsonl"]


@dataclass(frozen=True, slots=True)
class RejectedLine:
    path: Path
    line_no: int
    record_id: str | None
    errors: list[FieldError]

    def __str__(self) -> str:
        who = f" ({self.record_id})" if self.record_id else ""
        reasons = "; ".join(f"{e.field}: {e.msg}" for e in self.errors)
        return f"{self.path}:{self.line_no}{who}: {reasons}"


def parse_lines(
    lines: Iterable[bytes], start: int, kind: RecordKind, ctx: ValidationContext
) -> Iterator[tuple[int, Any, str | None, list[FieldError]]]:
    """Each non-blank line numbered from ``start``, validated as ``policy-push import`` validates it:
    (line number, the record or None, the id it gave if any, why it was rejected)."""
    for line_no, raw in enumerate(lines, start=start):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            yield line_no, None, None, [FieldError(("(line)",), f"invalid JSON: {exc}")]
            continue
        record_id = data["id"][:64] if isinstance(data, dict) and isinstance(data.get("id"), str) else None
        try:
            yield line_no, parse_record(kind, data, ctx), record_id, []
        except RecordInvalid as exc:
            yield line_no, None, record_id, exc.errors


def read_jsonl(path: Path, kind: RecordKind, ctx: ValidationContext) -> tuple[list[Any], list[RejectedLine]]:
    """The valid records of a JSONL file, in file order, and the rejected lines.  The same id on
    a later line is rejected, as ``policy-push import`` does."""
    good: list[Any] = []
    bad: list[RejectedLine] = []
    seen: dict[str, int] = {}
    with path.open("rb") as fh:
        for line_no, record, record_id, errors in parse_lines(fh, 1, kind, ctx):
            if record is None:
                bad.append(RejectedLine(path, line_no, record_id, errors))
                continue
            first = seen.get(record.id)
            if first is not None:
                msg = f"duplicate id: already on line {first} of this file"
                bad.append(RejectedLine(path, line_no, record_id, [FieldError(("id",), msg)]))
                continue
            seen[record.id] = line_no
            good.append(record)
    return good, bad


def compiled_policies(
    policies: Iterable[Policy],
    engines: Mapping[str, MatchEngine],
    on_error: Callable[[Policy, CriteriaError], None] | None,
) -> Iterator[tuple[Policy, MatchEngine, CompiledPolicy]]:
    """Each policy (in the order given) with the engine of its audience and its compiled criteria. A
    policy whose audience has no engine is left out; one the engine refuses goes to ``on_error``
    (raised when None) and the others still follow."""
    for policy in policies:
        engine = engines.get(policy.audience)
        if engine is None:
            continue
        try:
            compiled = engine.compile_policy(policy_source(policy))
        except CriteriaError as exc:  # the engine refused what validation let through: say which
            if on_error is None:
                raise
            on_error(policy, exc)
            continue
        yield policy, engine, compiled


def match_records(
    policies: list[Policy],
    profiles: dict[str, list[Any]],
    *,
    on: dt.date,
    ctx: ValidationContext,
    top_k: int | None = None,
    min_score: float = 0.0,
    n_jobs: int = 1,
    progress: Callable[[str], None] | None = None,
    on_error: Callable[[Policy, CriteriaError], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Match records (formats.md) of every policy against the profiles of its audience: per
    policy, in the order given, the eligible by score (best first), then those that may qualify
    but lack data.  ``top_k`` cuts each of the two lists per policy.  Policies whose audience
    has no profiles given produce nothing.  A policy the engine cannot compile goes to
    ``on_error`` (raised when None) and the others are still matched."""
    hier = Hierarchies.from_ref(ctx.ref)
    tokenizer = CountingTokenizer()
    engines: dict[str, MatchEngine] = {}
    for audience in AUDIENCES:
        if audience in profiles:
            if progress:
                progress(f"indexing {len(profiles[audience])} {audience} profiles")
            records = [engine_record(p, ctx.ref) for p in profiles[audience]]
            engines[audience] = new_engine(audience, hier, tokenizer, n_jobs=n_jobs).fit(records)
    for policy, engine, compiled in compiled_policies(policies, engines, on_error):
        found = engine.match_policy(compiled, on=on, top_k=top_k)
        if progress:
            progress(f"matched {policy.id}: {found.n_eligible} eligible, {found.n_unknown} may qualify")
        # min_score against the score as printed (4 places), as the API does; the eligible are
        # best first, so cutting after top_k keeps the same records as cutting before it
        eligible = [r for r in found.eligible if round(r.score, 4) >= min_score]
        for rec in (*eligible, *found.unknown):
            yield rec.to_dict()
