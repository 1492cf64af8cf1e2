"""Typed, growable numpy columns: one per profile field.

Every column holds one value per row (rows only ever get appended; a removed or replaced
profile is masked out by the table's ``alive`` column until the next compaction) and answers
one question for the evaluator: ``hit(condition, ...) -> (hit, known)`` as ``bool[n_rows]``.
``hit`` is never true where the value is missing, so the caller derives Kleene truth as
``true = hit`` (or ``known & ~hit`` for negated ops) and ``false = known & ~true``.

Storage (per row): codes int32 indexes into a per-column vocabulary (-1 missing), enums uint8
(255 missing), numbers float64 (NaN missing), dates int32 ``yyyymmdd`` (0 missing), tags as a
row-major CSR of int32 tag ids plus, per tag, a posting list of rows (term-major, so ``has_any``
touches only the rows that carry the tag).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._criteria import Condition
from ._hierarchy import Hierarchy

__all__ = ["CodeColumn", "DateColumn", "EnumColumn", "Grow", "NumberColumn", "TagColumn"]

_ENUM_MISSING = 255
#: a code condition whose accepted codes form at most this many runs of sorted codes is read
#: by comparing ranks (two passes over a small column per run) instead of a per-row look-up
_MAX_RUNS = 3


class Grow:
    """An append-only 1-D array with amortised O(1) appends (capacity doubles)."""

    def __init__(self, dtype: Any, data: np.ndarray | None = None) -> None:
        self._buf = np.asarray(data if data is not None else np.empty(0, dtype), dtype=dtype).copy()
        self.n = len(self._buf)

    @property
    def a(self) -> np.ndarray:
        return self._buf[: self.n]

    def _reserve(self, extra: int) -> None:
        need = self.n + extra
        if need > len(self._buf):
            buf = np.empty(max(need, 2 * len(self._buf), 16), dtype=self._buf.dtype)
            buf[: self.n] = self._buf[: self.n]
            self._buf = buf

    def append(self, value: Any) -> None:
        self._reserve(1)
        self._buf[self.n] = value
        self.n += 1

    def extend(self, values: Any) -> None:
        values = np.asarray(values, dtype=self._buf.dtype)
        self._reserve(len(values))
        self._buf[self.n : self.n + len(values)] = values
        self.n += len(values)


class _Column:
    missing: Any

    def __init__(self, dtype: Any, missing: Any, data: np.ndarray | None = None) -> None:
        self.v = Grow(dtype, data)
        self.missing = missing
        self._known: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.v.n

    def known(self) -> np.ndarray:
        # Cached because several conditions on one field share it; keyed by length since rows
        # are append-only.
        if self._known is None or self._known[0] != self.v.n:
            self._known = (self.v.n, self._known_now())
        return self._known[1]

    def _known_now(self) -> np.ndarray:
        return self.v.a != self.missing


class CodeColumn(_Column):
    """Hierarchical codes (region, industry) as int32 ids into ``vocab``."""

    def __init__(self, hierarchy: Hierarchy, data: np.ndarray | None = None, vocab: list[str] | None = None):
        super().__init__(np.int32, -1, data)
        self.hierarchy = hierarchy
        self.vocab: list[str] = list(vocab or [])
        self.index = {c: i for i, c in enumerate(self.vocab)}
        self._luts: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
        self._sorted: np.ndarray | None = None
        self._ranks: Grow | None = None

    def encode(self, code: str | None) -> int:
        if code is None:
            return -1
        i = self.index.get(code)
        if i is None:
            i = self.index[code] = len(self.vocab)
            self.vocab.append(code)
        return i

    def append(self, code: str | None) -> None:
        self.v.append(self.encode(code))

    def extend(self, codes: Sequence[str | None]) -> None:
        self.v.extend(np.fromiter((self.encode(c) for c in codes), np.int32, len(codes)))

    def get(self, row: int) -> str | None:
        i = int(self.v.a[row])
        return None if i < 0 else self.vocab[i]

    def _test(self, op: str, values: tuple[str, ...], code: str) -> bool:
        if op == "within":
            return not set(values).isdisjoint(self.hierarchy.chain(code))
        if op == "prefix":
            return code.startswith(values)
        return code in values

    def lut(self, op: str, values: tuple[str, ...]) -> np.ndarray:
        """bool[len(vocab) + 1]: does each vocabulary code satisfy the positive op; the last
        slot (indexed by -1, a missing value) is False.  Extended, not rebuilt, as codes arrive."""
        key = ("in" if op in ("eq", "ne", "in", "not_in") else op, values)
        old = self._luts.get(key)
        done = 0 if old is None else len(old) - 1
        if done == len(self.vocab) and old is not None:
            return old
        new = np.fromiter((self._test(key[0], values, c) for c in self.vocab[done:]), bool)
        lut = np.concatenate([old[:-1] if old is not None else np.zeros(0, bool), new, [False]])
        self._luts[key] = lut
        return lut

    def hit(self, cond: Condition) -> np.ndarray:
        lut = self.lut(cond.op, cond.value)
        runs = self._runs(lut)
        if runs is None:
            # np.take is about twice as fast as fancy indexing here; "wrap" sends -1 to the last slot
            return np.take(lut, self.v.a, mode="wrap")
        rank = self._rank()
        one = rank.dtype.type
        out: np.ndarray | None = None
        for lo, hi in runs:
            # rank in [lo, hi) as one unsigned comparison: below lo wraps round to a large number
            got = (rank - one(lo)) < one(hi - lo)
            out = got if out is None else np.logical_or(out, got, out=out)
        return np.zeros(len(self), bool) if out is None else out

    def _order(self) -> np.ndarray:
        """int64[len(vocab) + 1]: the rank of each vocabulary code in the sorted vocabulary, from
        1; the last slot (a missing value) ranks 0.  Sorted codes put a region or an industry
        right before its children (their codes extend it), so the codes a condition accepts
        are mostly one run of ranks."""
        if self._sorted is None or len(self._sorted) != len(self.vocab) + 1:
            order = sorted(range(len(self.vocab)), key=self.vocab.__getitem__)
            ranks = np.zeros(len(self.vocab) + 1, np.int64)
            ranks[order] = np.arange(1, len(self.vocab) + 1)
            self._sorted = ranks
            self._ranks = None
        return self._sorted

    def _rank(self) -> np.ndarray:
        """Each row's code's rank (``_order``), kept beside the codes: one ``np.take`` per new
        row instead of one per condition.  Rows are only appended, so it grows at the end."""
        order = self._order()
        dtype = np.uint16 if len(order) <= 1 << 16 else np.uint32
        if self._ranks is None or self._ranks.a.dtype != dtype:
            self._ranks = Grow(dtype, np.take(order, self.v.a, mode="wrap").astype(dtype))
        elif self._ranks.n < self.v.n:
            self._ranks.extend(np.take(order, self.v.a[self._ranks.n :], mode="wrap").astype(dtype))
        return self._ranks.a

    def _runs(self, lut: np.ndarray) -> list[tuple[int, int]] | None:
        """The runs ``[lo, hi)`` of ranks whose codes ``lut`` accepts, or None when there are
        more than ``_MAX_RUNS`` (then a table look-up per row is cheaper)."""
        in_rank = np.zeros(len(lut), np.int8)
        in_rank[self._order()] = lut  # the missing slot ranks 0 and is never accepted
        edges = np.flatnonzero(np.diff(in_rank, prepend=np.int8(0), append=np.int8(0)))
        if len(edges) > 2 * _MAX_RUNS:
            return None
        return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))

    def known_for(self, cond: Condition) -> np.ndarray:
        """Rows where ``cond`` can be decided.  For ``within``, a code the hierarchy does not know
        is decided only when it is itself listed; otherwise its place cannot be told and the
        condition is unknown (formats.md).  Other operators: every stored code."""
        if cond.op != "within":
            return self.known()
        key = ("known", cond.value)
        old = self._luts.get(key)
        done = 0 if old is None else len(old) - 1
        if old is None or done != len(self.vocab):
            listed = set(cond.value)
            new = np.fromiter((c in self.hierarchy or c in listed for c in self.vocab[done:]), bool)
            old = np.concatenate([old[:-1] if old is not None else np.zeros(0, bool), new, [False]])
            self._luts[key] = old
        if old[:-1].all():  # the usual case: every stored code is in the table
            return self.known()
        return np.take(old, self.v.a, mode="wrap")


class EnumColumn(_Column):
    """A closed set of strings (size, tax_credit_rating, gender) as uint8 positions."""

    def __init__(self, choices: tuple[str, ...], data: np.ndarray | None = None) -> None:
        super().__init__(np.uint8, _ENUM_MISSING, data)
        self.choices = choices
        self.index = {c: i for i, c in enumerate(choices)}

    def append(self, value: str | None) -> None:
        self.v.append(_ENUM_MISSING if value is None else self.index[value])

    def extend(self, values: Sequence[str | None]) -> None:
        index = self.index
        self.v.extend(np.fromiter((_ENUM_MISSING if x is None else index[x] for x in values), np.uint8, len(values)))

    def get(self, row: int) -> str | None:
        i = int(self.v.a[row])
        return None if i == _ENUM_MISSING else self.choices[i]

    def hit(self, cond: Condition) -> np.ndarray:
        # a few comparisons of uint8 beat a table look-up by an order of magnitude; neighbouring
        # choices (small, medium, large) are one unsigned range comparison, not one each
        v, out = self.v.a, None
        for lo, hi in _runs(sorted({self.index[x] for x in cond.value})):
            got = v == np.uint8(lo) if hi == lo + 1 else (v - np.uint8(lo)) < np.uint8(hi - lo)
            out = got if out is None else np.logical_or(out, got, out=out)
        return np.zeros(len(self), bool) if out is None else out


class NumberColumn(_Column):
    """Numbers as float64 (NaN missing): exact for every integer and decimal the app stores."""

    def __init__(self, data: np.ndarray | None = None) -> None:
        super().__init__(np.float64, math.nan, data)

    def _known_now(self) -> np.ndarray:
        return ~np.isnan(self.v.a)

    def append(self, value: float | None) -> None:
        self.v.append(math.nan if value is None else value)

    def extend(self, values: Sequence[float | None]) -> None:
        self.v.extend(np.fromiter((math.nan if x is None else x for x in values), np.float64, len(values)))

    def get(self, row: int) -> float | None:
        x = float(self.v.a[row])
        return None if math.isnan(x) else x

    def hit(self, cond: Condition) -> np.ndarray:
        return _in_intervals(self.v.a, self.known(), *cond.intervals())


class DateColumn(_Column):
    """Dates as int32 ``yyyymmdd`` (0 missing); also the source of derived whole-year fields."""

    def __init__(self, data: np.ndarray | None = None) -> None:
        super().__init__(np.int32, 0, data)

    def append(self, ymd: int | None) -> None:
        self.v.append(0 if ymd is None else ymd)

    def extend(self, values: Sequence[int | None]) -> None:
        self.v.extend(np.fromiter((0 if x is None else x for x in values), np.int32, len(values)))

    def get(self, row: int) -> int | None:
        x = int(self.v.a[row])
        return None if x == 0 else x

    def hit(self, cond: Condition) -> np.ndarray:
        intervals, negate = cond.intervals()
        return self._in_ranges([_whole(*i) for i in intervals], negate)

    def years_hit(self, cond: Condition, on_ymd: int) -> np.ndarray:
        """``hit`` for a whole-years field (age, established_years) derived at ``on_ymd``.

        Full years between ``yyyymmdd`` ints are ``(on - born) // 10000``, monotone in ``born``,
        so a condition on years becomes a range of dates and no years column is ever computed.
        (A 29 February birthday then falls on 1 March in common years.)
        """
        intervals, negate = cond.intervals()
        ranges = []
        for first, last in (_whole(*i) for i in intervals):
            # ``first`` years or more: born on or before on - first years; ``last`` or fewer: after
            # on - (last + 1) years
            ranges.append((None if last is None else on_ymd - (last + 1) * 10000 + 1,
                           None if first is None else on_ymd - first * 10000))
        return self._in_ranges(ranges, negate)

    def _in_ranges(self, ranges: list[tuple[int | None, int | None]], negate: bool) -> np.ndarray:
        """Known rows whose date lies in one of ``ranges`` (``lo``..``hi`` inclusive, None open),
        or outside all of them (``negate``)."""
        v = self.v.a.view(np.uint32)  # stored dates are positive and 0 is missing
        out: np.ndarray | None = None
        for lo, hi in ranges:
            lo = 1 if lo is None else max(lo, 1)
            hi = _DATE_MAX if hi is None else min(hi, _DATE_MAX)
            if lo > hi:
                continue
            # lo <= v <= hi as one unsigned comparison; a missing 0 wraps round above any range
            got = (v - np.uint32(lo)) <= np.uint32(hi - lo)
            out = got if out is None else np.logical_or(out, got, out=out)
        if out is None:
            out = np.zeros(len(self), bool)
        return np.greater(self.known(), out) if negate else out


def _runs(positions: list[int]) -> list[tuple[int, int]]:
    """Sorted distinct ``positions`` as runs ``[lo, hi)`` of consecutive ones."""
    out: list[tuple[int, int]] = []
    for x in positions:
        if out and out[-1][1] == x:
            out[-1] = (out[-1][0], x + 1)
        else:
            out.append((x, x + 1))
    return out


#: the largest ``yyyymmdd`` a date column holds (int32)
_DATE_MAX = 2**31 - 1


def _whole(lo: float, lo_closed: bool, hi: float, hi_closed: bool) -> tuple[int | None, int | None]:
    """An interval of ``Condition.intervals`` as its first and last whole number (None: open)."""
    first = None if lo == -math.inf else (math.ceil(lo) if lo_closed else math.floor(lo) + 1)
    last = None if hi == math.inf else (math.floor(hi) if hi_closed else math.ceil(hi) - 1)
    return first, last


def _in_intervals(x: np.ndarray, known: np.ndarray, intervals: list, negate: bool) -> np.ndarray:
    out = np.zeros(len(x), bool)
    for lo, lo_closed, hi, hi_closed in intervals:
        m = known.copy() if lo == -math.inf else (x >= lo if lo_closed else x > lo)
        if hi != math.inf:
            m &= x <= hi if hi_closed else x < hi
        out |= m
    # The missing markers (NaN, 0) may satisfy an open-ended range, so restrict to known rows.
    return known & ~out if negate else known & out


class TagColumn:
    """Open-vocabulary tag sets: row-major CSR (for reasons, compaction) + per-tag postings."""

    def __init__(self) -> None:
        self.known_v = Grow(bool)
        self.indptr = Grow(np.int64, np.zeros(1, np.int64))
        self.ids = Grow(np.int32)
        self.vocab: list[str] = []
        self.index: dict[str, int] = {}
        self.postings: list[Grow] = []

    def __len__(self) -> int:
        return self.known_v.n

    def known(self) -> np.ndarray:
        return self.known_v.a

    def append(self, tags: tuple[str, ...] | None) -> None:
        row = self.known_v.n
        self.known_v.append(tags is not None)
        for t in dict.fromkeys(tags or ()):
            i = self.index.get(t)
            if i is None:
                i = self.index[t] = len(self.vocab)
                self.vocab.append(t)
                self.postings.append(Grow(np.int32))
            self.ids.append(i)
            self.postings[i].append(row)
        self.indptr.append(self.ids.n)

    def extend(self, values: Sequence[tuple[str, ...] | None]) -> None:
        for tags in values:
            self.append(tags)

    def get(self, row: int) -> tuple[str, ...] | None:
        if not self.known_v.a[row]:
            return None
        ip = self.indptr.a
        return tuple(self.vocab[i] for i in self.ids.a[ip[row] : ip[row + 1]])

    def get_rows(self, rows: np.ndarray) -> list[tuple[str, ...] | None]:
        """``get(r)`` for each of ``rows``, with one gather of their tag ids instead of a slice per row."""
        ip = self.indptr.a
        starts = ip[rows]
        lens = ip[rows + 1] - starts
        pos = np.arange(int(lens.sum())) + np.repeat(starts - (np.cumsum(lens) - lens), lens)
        vocab = self.vocab
        names = [vocab[i] for i in self.ids.a[pos].tolist()]
        out: list[tuple[str, ...] | None] = []
        at = 0
        for known, n in zip(self.known_v.a[rows].tolist(), lens.tolist(), strict=True):
            out.append(tuple(names[at : at + n]) if known else None)
            at += n
        return out

    def hit(self, cond: Condition) -> np.ndarray:
        n = len(self)
        if cond.op == "has_all":
            out = self.known().copy()
            for t in cond.value:
                i = self.index.get(t)
                if i is None:
                    return np.zeros(n, bool)
                sub = np.zeros(n, bool)
                sub[self.postings[i].a] = True
                out &= sub
            return out
        out = np.zeros(n, bool)
        for t in cond.value:
            i = self.index.get(t)
            if i is not None:
                out[self.postings[i].a] = True
        return out  # has_any; has_none is its negation (Condition.negated)

    def take(self, rows: np.ndarray) -> TagColumn:
        """The tags of ``rows`` only, as a new column (compaction)."""
        ip = self.indptr.a
        starts, lens = ip[rows], ip[np.asarray(rows) + 1] - ip[rows]
        indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        gather = np.repeat(starts - indptr[:-1], lens) + np.arange(indptr[-1])
        arrays = {"known": self.known_v.a[rows], "indptr": indptr, "ids": self.ids.a[gather]}
        return TagColumn.from_state(arrays, self.vocab)

    def state(self) -> tuple[dict[str, np.ndarray], list[str]]:
        return {"known": self.known_v.a, "indptr": self.indptr.a, "ids": self.ids.a}, self.vocab

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], vocab: list[str]) -> TagColumn:
        col = cls()
        col.known_v = Grow(bool, arrays["known"])
        col.indptr = Grow(np.int64, arrays["indptr"])
        col.ids = Grow(np.int32, arrays["ids"])
        col.vocab = list(vocab)
        col.index = {t: i for i, t in enumerate(col.vocab)}
        rows = np.repeat(np.arange(len(col.known_v.a), dtype=np.int32), np.diff(col.indptr.a))
        order = np.argsort(col.ids.a, kind="stable")
        bounds = np.searchsorted(col.ids.a[order], np.arange(len(vocab) + 1))
        col.postings = [Grow(np.int32, rows[order[bounds[i] : bounds[i + 1]]]) for i in range(len(vocab))]
        return col
