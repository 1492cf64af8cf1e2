"""Streaming build of an engine from a JSONL file: what ``policy-push match`` runs at scale.

The file is read in chunks of lines.  Each chunk is parsed, validated, normalised and tokenised in
a worker process (``n_jobs`` of them; forked, so they share the loaded jieba dictionary and
reference tables), and comes back as a compact ``RowChunk`` (flat arrays of term ids and counts).
The main process indexes the chunks in file order and keeps nothing else: no parsed records, no
token lists.  At most ``2 * n_jobs`` chunks are in flight, so memory stays bounded whatever the
file's size.  Rejected lines (bad JSON, invalid record, an id seen on an earlier line) are
reported with their line numbers exactly as ``read_jsonl`` reports them.
"""

from __future__ import annotations

import array
import collections
import datetime as dt
import itertools
import multiprocessing as mp
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from matchers import CriteriaError, EngineBuilder, MatchEngine, RowChunk, encode_rows
from policy_push.domain import Policy, RecordKind, ValidationContext
from policy_push.errors import FieldError

from .engines import Audience, CountingTokenizer, Hierarchies, engine_record, new_engine
from .offline import RejectedLine, compiled_policies, parse_lines

__all__ = ["CHUNK_LINES", "build_engine", "match_lines"]

#: lines a worker handles at a time: large enough that the hand-over costs little, small enough
#: that the chunks in flight (2 per worker) hold a few MB
CHUNK_LINES = 10_000

# What a worker needs, set before the pool forks (a forked worker inherits it, no pickling).
_JOB: dict[str, Any] = {}

Bad = tuple[int, str | None, list[FieldError]]


def _encode(start: int, lines: list[bytes]) -> tuple[RowChunk, list[int], list[Bad]]:
    """Parse and encode one chunk: (encoded rows, line number of each row, rejected lines)."""
    kind: RecordKind = _JOB["kind"]
    ctx: ValidationContext = _JOB["ctx"]
    engine: MatchEngine = _JOB["engine"]
    tokenizer: CountingTokenizer = _JOB["tokenizer"]
    records, line_nos, bad = [], [], []
    for line_no, record, record_id, errors in parse_lines(lines, start, kind, ctx):
        if record is None:
            bad.append((line_no, record_id, errors))
            continue
        records.append(engine_record(record, ctx.ref))
        line_nos.append(line_no)
    chunk = encode_rows(records, engine.audience, engine.ranking, tokenizer.inner)
    return chunk, line_nos, bad


def _chunks(path: Path, size: int) -> Iterator[tuple[int, list[bytes]]]:
    with path.open("rb") as fh:
        start = 1
        while True:
            lines = list(itertools.islice(fh, size))
            if not lines:
                return
            yield start, lines
            start += len(lines)


def _encoded(path: Path, n_jobs: int, chunk_lines: int) -> Iterator[tuple[RowChunk, list[int], list[Bad]]]:
    """Encoded chunks in file order, from ``n_jobs`` worker processes (in-process when 1)."""
    chunks = _chunks(path, chunk_lines)
    first = next(chunks, None)
    if first is None:
        return
    if n_jobs <= 1 or len(first[1]) < chunk_lines:  # one chunk or one process: no pool to start
        for start, lines in itertools.chain([first], chunks):
            yield _encode(start, lines)
        return
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(n_jobs) as pool:
        pending: collections.deque[Any] = collections.deque()
        for start, lines in itertools.chain([first], chunks):
            pending.append(pool.apply_async(_encode, (start, lines)))
            if len(pending) >= 2 * n_jobs:  # bounded: never read the file faster than it is indexed
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def build_engine(path: Path, audience: Audience, ctx: ValidationContext, hier: Hierarchies,
                 tokenizer: CountingTokenizer, *, n_jobs: int = 1, chunk_lines: int = CHUNK_LINES,
                 progress: Callable[[str], None] | None = None) -> tuple[MatchEngine, list[RejectedLine]]:
    """An engine of the valid profiles of ``path`` and its rejected lines.  An id seen on an
    earlier line is rejected, as ``policy-push import`` does."""
    engine = new_engine(audience, hier, tokenizer, n_jobs=n_jobs)
    tokenizer.inner  # noqa: B018 - load jieba before forking, so each worker inherits it
    _JOB.update(kind=audience, ctx=ctx, engine=engine, tokenizer=tokenizer)
    builder = EngineBuilder(engine)
    line_of_row = array.array("l")  # the line of each indexed row, for naming a duplicate's first line
    rejected: list[RejectedLine] = []
    t0 = last = time.monotonic()
    try:
        for chunk, line_nos, bad in _encoded(path, n_jobs, chunk_lines):
            rejected += [RejectedLine(path, n, rid, errs) for n, rid, errs in bad]
            refused = builder.add(chunk)
            out = {i for i, _ in refused}
            line_of_row.extend(n for i, n in enumerate(line_nos) if i not in out)
            for i, first in refused:
                msg = f"duplicate id: already on line {line_of_row[first]} of this file"
                rejected.append(RejectedLine(path, line_nos[i], chunk.ids[i][:64], [FieldError(("id",), msg)]))
            if progress and time.monotonic() - last > 5:
                last = time.monotonic()
                progress(f"read {len(builder)} {audience} profiles ({len(builder) / (last - t0):,.0f}/s)")
    finally:
        _JOB.clear()
    rejected.sort(key=lambda r: r.line_no)
    tokenizer._count(len(builder))
    read_s = time.monotonic() - t0
    engine = builder.finish()
    if progress:
        progress(f"indexed {len(builder)} {audience} profiles in {time.monotonic() - t0:.1f} s "
                 f"(read, validated and tokenised in {read_s:.1f} s)")
    return engine, rejected


def match_lines(policies: Sequence[Policy], engines: Mapping[str, MatchEngine], *, on: dt.date,
                top_k: int | None = None, min_score: float = 0.0, progress: Callable[[str], None] | None = None,
                on_error: Callable[[Policy, CriteriaError], None] | None = None) -> Iterator[str]:
    """The match records of each policy (in the order given) as JSON lines, produced a batch at
    a time: eligible best first, then those that may qualify; ``top_k`` cuts each list.  A
    policy whose audience has no engine produces nothing; one the engine refuses goes to
    ``on_error`` (raised when None)."""
    for policy, engine, compiled in compiled_policies(policies, engines, on_error):
        if top_k is not None:
            found = engine.match_policy(compiled, on=on, top_k=top_k)
            n_e, n_u = found.n_eligible, found.n_unknown
            # min_score against the score as printed (4 places), as the API does
            recs: Iterator[Any] = iter([*(r for r in found.eligible if round(r.score, 4) >= min_score),
                                        *found.unknown])
        else:
            # a threshold below the score as printed must keep it: compare on 4 places after the cut
            stream = engine.stream_policy(compiled, on=on, min_score=max(min_score - 5e-5, 0.0))
            n_e, n_u = stream.n_eligible, stream.n_unknown
            recs = (r for r in stream.records() if not r.eligible or round(r.score, 4) >= min_score)
        dumps = orjson.dumps  # ≈ 10× json.dumps a record; millions of records are written
        for rec in recs:
            yield dumps(rec.to_dict()).decode() + "\n"
        if progress:
            progress(f"matched {policy.id}: {n_e} eligible, {n_u} may qualify")

