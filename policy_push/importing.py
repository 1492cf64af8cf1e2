"""Streaming JSONL import shared by ``policy-push import`` and ``POST /api/v1/import/{kind}``.

Input arrives as byte chunks of any size; lines are cut here with a bounded buffer, so a
5 MB line is skipped as "too large" without ever being held whole, and memory stays flat
whatever the file size (only the ids seen so far are kept, to refuse a second line with the
same id).  Valid records are written in batches, one transaction per batch; a batch that hits
a conflict (the same ID number on two residents, say) is retried record by record, so only
the offending lines are rejected and nothing half-written is left behind.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.domain import ValidationContext, parse_record
from policy_push.domain.text import first_text_problem
from policy_push.errors import FieldError, InvalidInput, RecordConflict, RecordInvalid
from policy_push.security import PiiCipher
from policy_push.storage import PolicyRepository, profile_repository

__all__ = [
    "KINDS",
    "ImportReport",
    "RawLine",
    "RejectedLine",
    "import_lines",
    "normalise_kind",
    "phone_source_name",
    "split_lines",
]

#: command-line / URL names of the record kinds and their singular record kind
KINDS = {"policies": "policy", "enterprises": "enterprise", "residents": "resident"}

ProgressFn = Callable[[int, int], None]  # (bytes consumed, lines done)


def normalise_kind(kind: str) -> str:
    """'policies' or 'policy' -> 'policy', etc.; ValueError for anything else."""
    if kind in KINDS:
        return KINDS[kind]
    if kind in KINDS.values():
        return kind
    raise ValueError(f"unknown record kind {kind!r}; use one of {', '.join(KINDS)}")


#: longest register name kept (``phone_source`` column)
PHONE_SOURCE_MAX = 200
_CONTROL = r"\x00-\x1f\x7f-\x9f"
# every character Python's str.strip() removes that is not a control character (the same in JSON Schema's
# ECMA-262 regex, so the OpenAPI document states exactly this rule)
_SPACE = r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
#: a register name: no control characters, and something besides spaces
PHONE_SOURCE_PATTERN = rf"^[^{_CONTROL}]*[^{_CONTROL}{_SPACE}][^{_CONTROL}]*$"


def phone_source_name(value: str | None, kind: str) -> str | None:
    """The official register an import's phones came from, as staff named it (``policy_push.reach``);
    None when none was named. :class:`InvalidInput` for a blank, over-long or control-character name,
    or a name given with policies (which hold no phones)."""
    if value is None:
        return None
    if len(value) > PHONE_SOURCE_MAX or not re.fullmatch(PHONE_SOURCE_PATTERN, value):
        raise InvalidInput(
            f"phone_source must name the official register the phones come from, 1 to {PHONE_SOURCE_MAX} "
            "characters without control characters", loc=["query", "phone_source"],
        )  # fmt: skip
    if normalise_kind(kind) == "policy":
        raise InvalidInput("phone_source applies to enterprises and residents; policies hold no phones", loc=["query", "phone_source"])
    return value.strip()


@dataclass(frozen=True, slots=True)
class RawLine:
    number: int
    #: the line's bytes without its newline; None when it was longer than the limit
    data: bytes | None
    size: int


@dataclass(slots=True)
class RejectedLine:
    line_no: int
    record_id: str | None
    errors: list[FieldError]

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line_no, "id": self.record_id, "errors": [e.as_dict() for e in self.errors]}


@dataclass(slots=True)
class ImportReport:
    kind: str
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RejectedLine] = field(default_factory=list)
    #: the register the import vouched its phones came from; None: its phones are unproven
    phone_source: str | None = None

    @property
    def accepted(self) -> int:
        return self.created + self.updated + self.unchanged

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "total": self.total,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(self.rejected),
            "phone_source": self.phone_source,
            "errors": [r.as_dict() for r in self.rejected],
        }

    def summary(self) -> str:
        return (
            f"{self.total} lines: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {len(self.rejected)} rejected"
        )


class _LineSplitter:
    def __init__(self, max_line_bytes: int) -> None:
        self.max = max_line_bytes
        self.buf = bytearray()
        self.number = 0
        self.discarding = 0  # bytes of an over-long line skipped so far (0: not skipping)

    def feed(self, chunk: bytes) -> list[RawLine]:
        out: list[RawLine] = []
        start = 0
        n = len(chunk)
        while start < n:
            nl = chunk.find(b"\n", start)
            end = n if nl < 0 else nl
            piece = chunk[start:end]
            if self.discarding:
                self.discarding += len(piece)
            else:
                self.buf += piece
                if len(self.buf) > self.max:
                    self.discarding = len(self.buf)
                    self.buf = bytearray()
            if nl < 0:
                break
            out.extend(self._end_line())
            start = nl + 1
        return out

    def _end_line(self) -> list[RawLine]:
        self.number += 1
        if self.discarding:
            line = RawLine(self.number, None, self.discarding)
            self.discarding = 0
            return [line]
        data = bytes(self.buf).rstrip(b"\r")
        self.buf = bytearray()
        if not data.strip():
            return []
        return [RawLine(self.number, data, len(data))]

    def close(self) -> list[RawLine]:
        if self.buf or self.discarding:
            return self._end_line()
        return []


async def split_lines(
    chunks: AsyncIterable[bytes] | Iterable[bytes], max_line_bytes: int
) -> AsyncIterator[RawLine]:
    """Cut byte chunks into numbered lines; blank lines are skipped but keep their number."""
    splitter = _LineSplitter(max_line_bytes)
    if isinstance(chunks, AsyncIterable):
        async for chunk in chunks:
            for line in splitter.feed(chunk):
                yield line
    else:
        for chunk in chunks:
            for line in splitter.feed(chunk):
                yield line
    for line in splitter.close():
        yield line


# a \u escape, a surrogate's UTF-8 lead byte, or a NUL byte (json.loads also reads UTF-16 and UTF-32,
# whose escapes this byte pattern would not see; their ASCII characters all hold a NUL byte)
_BAD_TEXT_MARKERS = re.compile(rb"\\u|[\xed\x00]")


def _may_hold_bad_text(data: bytes) -> bool:
    """Whether a JSON line could decode to a lone surrogate or a NUL (see ``_decode``)."""
    return _BAD_TEXT_MARKERS.search(data) is not None


def _decode(line: RawLine, max_line_bytes: int) -> Any:
    if line.data is None:
        raise RecordInvalid(
            [FieldError(("(record)",), f"record too large: the line has {line.size:,}+ bytes, the limit is {max_line_bytes:,}")]
        )
    try:
        doc = json.loads(line.data)
    except UnicodeDecodeError as exc:
        raise RecordInvalid([FieldError(("(line)",), f"not UTF-8 text: {exc.reason} at byte {exc.start}")]) from None
    except json.JSONDecodeError as exc:
        raise RecordInvalid([FieldError(("(line)",), f"invalid JSON: {exc.msg} at column {exc.colno}")]) from None
    except RecursionError:
        raise RecordInvalid([FieldError(("(line)",), "invalid JSON: nested too deeply")]) from None
    # a lone surrogate or a NUL in a string failed the whole batch's write on PostgreSQL (a 500).
    # Either can only come from a \\u escape or from the UTF-8 bytes of a surrogate (lead byte 0xED,
    # which json.loads lets through; see _BAD_TEXT_MARKERS): a line with neither holds none, and walking every string of
    # every record cost more than the JSON parse itself (an import's profile, bench/RESULTS.md)
    found = first_text_problem(doc, []) if _may_hold_bad_text(line.data) else None
    if found is not None:
        raise RecordInvalid([FieldError(tuple(found[0]) or ("(line)",), found[1])])
    return doc


async def _upsert(kind: str, session: AsyncSession, cipher: PiiCipher, records: list[Any], actor: str, phone_source: str | None) -> list[Any]:
    if kind == "policy":
        return await PolicyRepository(session).upsert_many(records, actor=actor)
    return await profile_repository(kind, session, cipher).upsert_many(records, actor=actor, phone_source=phone_source)


async def _write_batch(
    kind: str,
    batch: list[tuple[int, Any]],
    report: ImportReport,
    session_factory: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    actor: str,
) -> None:
    records = [r for _, r in batch]
    source = report.phone_source
    try:
        async with session_factory() as session, session.begin():
            results = await _upsert(kind, session, cipher, records, actor, source)
    except RecordConflict:
        # find the offending record(s): one transaction each, so the others still land
        results = []
        for line_no, record in batch:
            try:
                async with session_factory() as session, session.begin():
                    results += await _upsert(kind, session, cipher, [record], actor, source)
            except RecordConflict as exc:
                report.rejected.append(RejectedLine(line_no, record.id, [FieldError((exc.field,), str(exc))]))
    for result in results:
        if result.outcome == "created":
            report.created += 1
        elif result.outcome == "updated":
            report.updated += 1
        else:
            report.unchanged += 1


#: the collector's first threshold while an import runs (CPython's default is 700)
IMPORT_GC_THRESHOLD = 20_000
_gc_raised = 0  # imports running in this process that hold the raised threshold
_gc_saved: list[tuple[int, ...]] = []  # the thresholds to put back when the last of them ends


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less often while an import runs.

    Every line leaves container objects (JSON, models, rows) that live until their batch is written;
    at CPython's default threshold the collector ran every 700 of them. Timed on 20,000 profiles into
    PostgreSQL, validation took 26 µs a line at the default and 11 µs with the collector off
    (bench/RESULTS.md, import profile). A higher first threshold keeps collections, only fewer of
    them; the previous thresholds come back when the last running import ends."""
    global _gc_raised
    before = gc.get_threshold()
    if _gc_raised == 0 and before[0] < IMPORT_GC_THRESHOLD:
        gc.set_threshold(IMPORT_GC_THRESHOLD, *before[1:])
        _gc_saved.append(before)
    _gc_raised += 1
    try:
        yield
    finally:
        _gc_raised -= 1
        if _gc_raised == 0 and _gc_saved:
            gc.set_threshold(*_gc_saved.pop())


async def import_lines(
    kind: str,
    lines: AsyncIterable[bytes] | Iterable[bytes],
    *,
    session_factory: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    ctx: ValidationContext,
    actor: str,
    max_line_bytes: int,
    batch_size: int = 500,
    progress: ProgressFn | None = None,
    phone_source: str | None = None,
) -> ImportReport:
    """Validate and store every good line of a JSONL stream; report the others.

    ``lines`` may be any byte chunks (whole lines, or 64 KiB reads of a file or request body).
    Running the same input twice changes nothing the second time. ``phone_source``: the official
    register the importing staff vouch the phones came from (:func:`phone_source_name`); without one
    the imported phones are never pushed to (``policy_push.reach``).
    """
    record_kind = normalise_kind(kind)
    report = ImportReport(kind=record_kind, phone_source=phone_source_name(phone_source, record_kind))
    with _fewer_collections():
        return await _import(record_kind, lines, report, session_factory, cipher, ctx, actor, max_line_bytes, batch_size, progress)


async def _import(
    record_kind: str,
    lines: AsyncIterable[bytes] | Iterable[bytes],
    report: ImportReport,
    session_factory: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    ctx: ValidationContext,
    actor: str,
    max_line_bytes: int,
    batch_size: int,
    progress: ProgressFn | None,
) -> ImportReport:
    seen: dict[str, int] = {}
    batch: list[tuple[int, Any]] = []
    consumed = 0
    async for line in split_lines(lines, max_line_bytes):
        report.total += 1
        consumed += line.size + 1
        record_id: str | None = None
        try:
            data = _decode(line, max_line_bytes)
            if isinstance(data, dict) and isinstance(data.get("id"), str):
                record_id = data["id"][:64]
            record = parse_record(record_kind, data, ctx)  # type: ignore[arg-type]
            first = seen.get(record.id)  # type: ignore[attr-defined]
            if first is not None:
                raise RecordInvalid(
                    [FieldError(("id",), f"duplicate id {record.id!r}: already on line {first} of this import; send an update separately")]  # type: ignore[attr-defined]
                )
        except RecordInvalid as exc:
            report.rejected.append(RejectedLine(line.number, record_id, exc.errors))
        else:
            seen[record.id] = line.number  # type: ignore[attr-defined]
            batch.append((line.number, record))
            if len(batch) >= batch_size:
                await _write_batch(record_kind, batch, report, session_factory, cipher, actor)
                batch = []
        if progress is not None:
            progress(consumed, report.total)
    if batch:
        await _write_batch(record_kind, batch, report, session_factory, cipher, actor)
    return report
