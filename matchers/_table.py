"""The columnar profile table and the vectorised criteria evaluator (policy -> profiles).

``ProfileTable`` stores one audience's profiles as typed numpy columns (see ``_columns``).
``ProfileTable.evaluate(criteria, on_ymd)`` returns an ``Evaluation``: Kleene truth for every
row as two ``bool[n_rows]`` masks (``true``, ``false``; unknown is neither), plus the masks of
each condition so that reasons for the few rows returned are read off, not recomputed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._columns import CodeColumn, DateColumn, EnumColumn, Grow, NumberColumn, TagColumn
from ._criteria import FALSE, TRUE, UNKNOWN, Condition, Criteria, Node, to_ymd
from ._fields import FIELDS, Audience, FieldKind
from ._hierarchy import Hierarchy

__all__ = ["DERIVED_YEARS", "Evaluation", "ProfileTable", "normalise_profile", "storage_fields"]

#: criteria fields computed at evaluation time as full years since a stored date
DERIVED_YEARS = {"age": "birth_date", "established_years": "established_on"}

Column = CodeColumn | EnumColumn | NumberColumn | DateColumn | TagColumn


def storage_fields(audience: Audience) -> dict[str, FieldKind]:
    """The stored columns of an audience: its criteria fields with derived ones replaced by dates."""
    out: dict[str, FieldKind] = {}
    for name, spec in FIELDS[audience].items():
        if name in DERIVED_YEARS:
            out[DERIVED_YEARS[name]] = FieldKind.DATE
        else:
            out[name] = spec.kind
    return out


def normalise_profile(record: Mapping[str, Any], audience: Audience) -> dict[str, Any]:
    """Profile record (formats.md keys, validated by the app) -> stored values.

    Codes and enums stay str, numbers become float, dates ``yyyymmdd`` ints (``date`` objects or
    ISO strings are accepted), tag lists tuples; a missing key or None is None (unknown).
    Raises ValueError for a value of the wrong type, naming the field.
    """
    out: dict[str, Any] = {}
    specs = FIELDS[audience]
    for name, kind in storage_fields(audience).items():
        v = record.get(name)
        if v is None:
            out[name] = None
            continue
        try:
            if kind is FieldKind.DATE:
                out[name] = to_ymd(v)
            elif kind is FieldKind.NUMBER:
                if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(v):
                    raise TypeError("not a number")
                out[name] = float(v)
            elif kind is FieldKind.TAGS:
                if isinstance(v, str) or not all(isinstance(t, str) for t in v):
                    raise TypeError("not a list of strings")
                out[name] = tuple(dict.fromkeys(v))
            else:
                if not isinstance(v, str):
                    raise TypeError("not a string")
                if kind is FieldKind.ENUM and v not in specs[name].choices:
                    raise ValueError(f"not one of {specs[name].choices}")
                out[name] = v
        except (TypeError, ValueError) as exc:
            raise ValueError(f"profile {record.get('id')!r}: field {name!r}: {exc}") from None
    return out


@dataclass(slots=True)
class Evaluation:
    """Kleene result over all rows: ``true``/``false`` are ``bool[n_rows]``; ``leaves[i]`` is the
    (true, false) pair of condition ``i``.  Dead rows (removed/replaced profiles) are false."""

    true: np.ndarray
    false: np.ndarray
    leaves: list[tuple[np.ndarray, np.ndarray]]

    @property
    def unknown(self) -> np.ndarray:
        # never both true and false: unknown is where they agree (one pass, not two)
        return np.equal(self.true, self.false)

    def leaf_value(self, i: int, row: int) -> int:
        t, f = self.leaves[i]
        return TRUE if t[row] else FALSE if f[row] else UNKNOWN

    def leaf_values(self, rows: np.ndarray) -> list[tuple[int, ...]]:
        """Each condition's Kleene value for each of ``rows``: one tuple per row."""
        if not self.leaves:
            return [() for _ in range(len(rows))]
        m = np.stack([np.where(t[rows], TRUE, np.where(f[rows], FALSE, UNKNOWN)) for t, f in self.leaves], axis=1)
        return [tuple(x) for x in m.tolist()]


class ProfileTable:
    """Columns of one audience's profiles; rows are append-only, ``alive`` masks dead ones.

    Attributes: ``columns`` (name -> column), ``alive`` (``bool[n_rows]``), ``n_rows``.
    """

    def __init__(self, audience: str | Audience, regions: Hierarchy, industries: Hierarchy) -> None:
        self.audience = Audience(audience)
        self.hierarchies = {"region": regions, "industry": industries}
        self.columns: dict[str, Column] = {}
        for name, kind in storage_fields(self.audience).items():
            self.columns[name] = self._new_column(name, kind)
        self.alive = Grow(bool)

    def _new_column(self, name: str, kind: FieldKind, data: np.ndarray | None = None,
                    vocab: list[str] | None = None) -> Column:
        spec = FIELDS[self.audience].get(name)
        if kind is FieldKind.CODE:
            assert spec is not None and spec.hierarchy is not None
            return CodeColumn(self.hierarchies[spec.hierarchy], data, vocab)
        if kind is FieldKind.ENUM:
            assert spec is not None
            return EnumColumn(spec.choices, data)
        if kind is FieldKind.NUMBER:
            return NumberColumn(data)
        if kind is FieldKind.DATE:
            return DateColumn(data)
        return TagColumn()

    @property
    def n_rows(self) -> int:
        return self.alive.n

    def append(self, values: Mapping[str, Any]) -> int:
        """Append one normalised profile (see ``normalise_profile``); returns its row."""
        for name, col in self.columns.items():
            col.append(values[name])
        self.alive.append(True)
        return self.alive.n - 1

    def extend(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append normalised profiles in bulk, a column at a time (as ``append`` each)."""
        for name, col in self.columns.items():
            col.extend([r[name] for r in rows])
        self.alive.extend(np.ones(len(rows), bool))

    def kill(self, row: int) -> None:
        self.alive.a[row] = False

    def row_values(self, row: int) -> dict[str, Any]:
        """The stored (normalised) values of ``row``."""
        return {name: col.get(row) for name, col in self.columns.items()}

    def value(self, name: str, row: int, on_ymd: int) -> Any:
        """Value of criteria field ``name`` at ``row``; derived years computed at ``on_ymd``."""
        if name in DERIVED_YEARS:
            born = self.columns[DERIVED_YEARS[name]].get(row)
            return None if born is None else (on_ymd - born) // 10000
        return self.columns[name].get(row)

    def values_of(self, names: Iterable[str], rows: np.ndarray, on_ymd: int) -> dict[str, list[Any]]:
        """``value`` of each field for each of ``rows``: field -> one value per row."""
        rows = np.asarray(rows, np.int64)
        per_field: dict[str, list[Any]] = {}
        for name in names:
            src = DERIVED_YEARS.get(name, name)
            col = self.columns[src]
            if isinstance(col, TagColumn):
                per_field[name] = col.get_rows(rows)
                continue
            raw = col.v.a[rows]
            if isinstance(col, CodeColumn):
                per_field[name] = [None if i < 0 else col.vocab[i] for i in raw.tolist()]
            elif isinstance(col, EnumColumn):
                per_field[name] = [None if i == col.missing else col.choices[i] for i in raw.tolist()]
            elif isinstance(col, NumberColumn):
                per_field[name] = [None if x != x else x for x in raw.tolist()]
            elif name in DERIVED_YEARS:
                per_field[name] = [None if x == 0 else (on_ymd - x) // 10000 for x in raw.tolist()]
            else:
                per_field[name] = [None if x == 0 else x for x in raw.tolist()]
        return per_field

    def _condition(self, cond: Condition, on_ymd: int) -> tuple[np.ndarray, np.ndarray]:
        if cond.field in DERIVED_YEARS:
            col = self.columns[DERIVED_YEARS[cond.field]]
            assert isinstance(col, DateColumn)
            known = col.known()
            if cond.op == "exists":
                t = known if cond.value else ~known
                return t, ~t
            t = col.years_hit(cond, on_ymd)
            return t, np.greater(known, t)
        col = self.columns[cond.field]
        known = col.known()
        if cond.op == "exists":
            t = known if cond.value else ~known
            return t, ~t
        if isinstance(col, CodeColumn):
            known = col.known_for(cond)
        hit = col.hit(cond)
        # ``known > hit`` is ``known & ~hit`` in one pass over the rows
        if isinstance(col, NumberColumn | DateColumn):
            return hit, np.greater(known, hit)  # intervals already applied the negation
        return (np.greater(known, hit), hit) if cond.negated else (hit, np.greater(known, hit))

    def evaluate(self, criteria: Criteria, on_ymd: int) -> Evaluation:
        """Kleene truth of ``criteria`` for every row at date ``on_ymd`` (``yyyymmdd``)."""
        alive = self.alive.a
        leaves = [self._condition(c, on_ymd) for c in criteria.conditions]
        if criteria.root is None:
            return Evaluation(alive.copy(), ~alive, leaves)
        t, f = _combine(criteria.root, leaves, self.n_rows)
        if alive.all():  # the usual case (no row removed since the last compaction): two passes fewer
            return Evaluation(t, f, leaves)
        return Evaluation(t & alive, f | ~alive, leaves)

    def take(self, rows: np.ndarray) -> ProfileTable:
        """A new table holding only ``rows`` (in that order), all alive: the compaction step."""
        out = ProfileTable(self.audience, self.hierarchies["region"], self.hierarchies["industry"])
        for name, col in self.columns.items():
            if isinstance(col, TagColumn):
                out.columns[name] = col.take(rows)
            elif isinstance(col, CodeColumn):
                out.columns[name] = CodeColumn(col.hierarchy, col.v.a[rows], col.vocab)
            else:
                col_out = out.columns[name]
                col_out.v = Grow(col.v.a.dtype, col.v.a[rows])  # type: ignore[union-attr]
        out.alive = Grow(bool, np.ones(len(rows), bool))
        return out

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
        """Arrays and vocabularies for persistence (``from_state`` restores them)."""
        arrays: dict[str, np.ndarray] = {"alive": self.alive.a}
        vocabs: dict[str, list[str]] = {}
        for name, col in self.columns.items():
            if isinstance(col, TagColumn):
                tag_arrays, vocabs[name] = col.state()
                arrays.update({f"{name}.{k}": v for k, v in tag_arrays.items()})
            else:
                arrays[name] = col.v.a
                if isinstance(col, CodeColumn):
                    vocabs[name] = col.vocab
        return arrays, vocabs

    @classmethod
    def from_state(cls, audience: str | Audience, regions: Hierarchy, industries: Hierarchy,
                   arrays: Mapping[str, np.ndarray], vocabs: Mapping[str, list[str]]) -> ProfileTable:
        table = cls(audience, regions, industries)
        for name, kind in storage_fields(table.audience).items():
            if kind is FieldKind.TAGS:
                sub = {k: arrays[f"{name}.{k}"] for k in ("known", "indptr", "ids")}
                table.columns[name] = TagColumn.from_state(sub, vocabs[name])
            else:
                table.columns[name] = table._new_column(name, kind, arrays[name], vocabs.get(name))
        table.alive = Grow(bool, arrays["alive"])
        return table


def _combine(node: Node, leaves: list[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    if node.kind == "leaf":
        assert node.condition is not None
        return leaves[node.condition.index]
    if node.kind == "const":
        yes = np.full(n, node.constant)
        return yes, ~yes
    if node.kind == "not":
        t, f = _combine(node.children[0], leaves, n)
        return f, t
    # folded in place: reduce() over a list would first stack the children into one 2-D array
    parts = [_combine(c, leaves, n) for c in node.children]
    if len(parts) == 1:
        return parts[0]
    # false if any child false, true only if all true ("all"); the other way round for "any"
    both, either = (np.logical_and, np.logical_or) if node.kind == "all" else (np.logical_or, np.logical_and)
    t, f = both(parts[0][0], parts[1][0]), either(parts[0][1], parts[1][1])
    for ct, cf in parts[2:]:
        both(t, ct, out=t)
        either(f, cf, out=f)
    return t, f
