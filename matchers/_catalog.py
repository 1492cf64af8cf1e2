"""Many policies' criteria against one profile, vectorised across policies (profile -> policies).

``PolicyCatalog.build(criteria_list)`` flattens every policy's conditions into per-field
groups of numpy arrays (one row per (condition, listed value) pair) and every tree into
levels of nodes.  ``evaluate(values)`` then costs a few array operations per field and per
tree level, whatever the number of policies: each condition is decided by looking the
profile's value (its hierarchy chain, its prefixes, its tags) up in the group's pair table,
and ``all``/``any``/``not`` are ``minimum``/``maximum``.``reduceat`` and ``2 - x`` over Kleene
values ``FALSE=0 < UNKNOWN=1 < TRUE=2``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._criteria import FALSE, TRUE, UNKNOWN, Condition, Criteria, Node
from ._fields import FieldKind
from ._hierarchy import Hierarchy

__all__ = ["PolicyCatalog"]


@dataclass
class _Group:
    """Conditions of one field and one evaluation mode, as (condition, value) pair arrays."""

    mode: str  # "in", "within", "prefix", "range", "tags", "exists"
    leaves: list[int] = field(default_factory=list)  # global condition index of each member
    negate: list[bool] = field(default_factory=list)
    pair_leaf: list[int] = field(default_factory=list)  # member position of each pair
    keys: dict[Any, int] = field(default_factory=dict)
    pair_key: list[int] = field(default_factory=list)
    ranges: list[tuple[float, bool, float, bool]] = field(default_factory=list)
    need: list[int] = field(default_factory=list)  # tags: values listed; exists: wanted (1/0)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, cond: Condition, gidx: int) -> None:
        pos = len(self.leaves)
        self.leaves.append(gidx)
        if self.mode == "exists":
            self.negate.append(False)
            self.need.append(int(cond.value))
            return
        if self.mode == "range":
            intervals, negate = cond.intervals()
            self.negate.append(negate)
            for iv in intervals:
                self.pair_leaf.append(pos)
                self.ranges.append(iv)
            return
        self.negate.append(cond.negated)
        values = cond.value
        if self.mode == "tags":
            self.need.append(len(values) if cond.op == "has_all" else -1)
        for v in values:
            self.pair_leaf.append(pos)
            self.pair_key.append(self.keys.setdefault(v, len(self.keys)))

    def freeze(self) -> None:
        a = self.arrays
        a["leaves"] = np.asarray(self.leaves, np.int64)
        a["negate"] = np.asarray(self.negate, bool)
        a["pair_leaf"] = np.asarray(self.pair_leaf, np.int64)
        a["pair_key"] = np.asarray(self.pair_key, np.int64)
        a["need"] = np.asarray(self.need, np.int64)
        r = np.asarray(self.ranges, np.float64).reshape(-1, 4)
        a["lo"], a["lo_closed"], a["hi"], a["hi_closed"] = r[:, 0], r[:, 1] > 0, r[:, 2], r[:, 3] > 0

    def truth(self, value: Any, probe: Sequence[Any]) -> np.ndarray:
        """Kleene value (int8) of each member condition for the profile's ``value``."""
        a = self.arrays
        n = len(self.leaves)
        if self.mode == "exists":
            return np.where(a["need"] == int(value is not None), TRUE, FALSE).astype(np.int8)
        if value is None:
            return np.full(n, UNKNOWN, np.int8)
        if self.mode == "range":
            x = value
            hit = ((x > a["lo"]) | (a["lo_closed"] & (x == a["lo"]))) & ((x < a["hi"]) | (a["hi_closed"] & (x == a["hi"])))
        else:
            present = np.zeros(len(self.keys) + 1, bool)
            present[[self.keys[k] for k in probe if k in self.keys]] = True
            hit = present[a["pair_key"]]
        count = np.bincount(a["pair_leaf"][hit], minlength=n)
        if self.mode == "tags":
            need = a["need"]
            ok = np.where(need >= 0, count == need, count > 0)
        else:
            ok = count > 0
        return np.where(ok ^ a["negate"], TRUE, FALSE).astype(np.int8)


class PolicyCatalog:
    """The criteria of many policies of one audience, compiled for one-profile evaluation.

    ``build([criteria, ...])`` -> self; ``evaluate(values)`` -> (int8[n_policies] Kleene result,
    int8[n_conditions] per-condition values); ``leaf_values(p, all_values)`` slices out policy
    ``p``'s conditions (in its ``Criteria.conditions`` order) for reasons.
    """

    def __init__(self, hierarchies: Mapping[str, Hierarchy]) -> None:
        self.hierarchies = hierarchies

    def build(self, criteria: Sequence[Criteria]) -> PolicyCatalog:
        self.criteria_ = list(criteria)
        self.offsets_ = np.zeros(len(criteria) + 1, np.int64)
        groups: dict[tuple[str, str], _Group] = {}
        kinds: list[int] = []  # per node: 0 leaf, 1 all, 2 any, 3 not, 4 const
        heights: list[int] = []
        node_leaf: list[int] = []
        const: list[int] = []
        children: list[list[int]] = []

        def add_node(node: Node, base: int) -> int:
            kids = [add_node(c, base) for c in node.children]
            kind = {"leaf": 0, "all": 1, "any": 2, "not": 3, "const": 4}[node.kind]
            kinds.append(kind)
            heights.append(1 + max((heights[k] for k in kids), default=-1))
            node_leaf.append(base + node.condition.index if node.condition is not None else -1)
            const.append(TRUE if node.constant else FALSE)
            children.append(kids)
            return len(kinds) - 1

        roots = []
        for p, crit in enumerate(criteria):
            base = int(self.offsets_[p])
            self.offsets_[p + 1] = base + len(crit.conditions)
            for cond in crit.conditions:
                mode = _mode(cond)
                groups.setdefault((cond.field, mode), _Group(mode)).add(cond, base + cond.index)
            roots.append(add_node(crit.root if crit.root is not None else Node("const"), base))
        for g in groups.values():
            g.freeze()
        self.groups_ = groups
        self.roots_ = np.asarray(roots, np.int64)
        k = np.asarray(kinds, np.int8)
        self.node_leaf_ = np.asarray(node_leaf, np.int64)
        self.leaf_nodes_ = np.flatnonzero(k == 0)
        self.const_nodes_ = np.flatnonzero(k == 4)
        self.const_values_ = np.asarray(const, np.int8)[self.const_nodes_]
        h = np.asarray(heights, np.int64)
        # per level: (op, parent nodes, flat children, segment starts) for reduceat
        self.levels_: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        for level in range(1, int(h.max(initial=0)) + 1):
            for op in (1, 2, 3):
                parents = np.flatnonzero((h == level) & (k == op))
                if len(parents):
                    flat = [c for p in parents for c in children[p]]
                    starts = np.cumsum([0] + [len(children[p]) for p in parents[:-1]])
                    self.levels_.append((op, parents, np.asarray(flat, np.int64), starts.astype(np.int64)))
        self.n_nodes_ = len(kinds)
        return self

    def _hierarchy(self, fname: str) -> Hierarchy:
        return self.hierarchies["industry" if fname == "industry" else "region"]

    def _probe(self, fname: str, mode: str, value: Any) -> Sequence[Any]:
        if value is None:
            return ()
        if mode == "within":
            return self._hierarchy(fname).chain(value)
        if mode == "prefix":
            return [value[:i] for i in range(1, len(value) + 1)]
        if mode == "tags":
            return value
        return (value,)

    def evaluate(self, values: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """``values``: criteria field -> the profile's value (derived years already computed)."""
        leaf = np.empty(int(self.offsets_[-1]), np.int8)
        for (fname, mode), g in self.groups_.items():
            v = values.get(fname)
            t = g.truth(v, self._probe(fname, mode, v))
            if mode == "within" and v is not None and v not in self._hierarchy(fname):
                # a code the table does not know: only "listed itself" decides (formats.md)
                t = np.where(t == TRUE, TRUE, UNKNOWN).astype(np.int8)
            leaf[g.arrays["leaves"]] = t
        val = np.empty(self.n_nodes_, np.int8)
        val[self.leaf_nodes_] = leaf[self.node_leaf_[self.leaf_nodes_]]
        val[self.const_nodes_] = self.const_values_
        for op, parents, flat, starts in self.levels_:
            if op == 1:
                val[parents] = np.minimum.reduceat(val[flat], starts)
            elif op == 2:
                val[parents] = np.maximum.reduceat(val[flat], starts)
            else:
                val[parents] = TRUE + FALSE - val[flat]
        return val[self.roots_], leaf

    def leaf_values(self, p: int, leaf: np.ndarray) -> list[int]:
        return leaf[self.offsets_[p] : self.offsets_[p + 1]].tolist()


def _mode(cond: Condition) -> str:
    if cond.op == "exists":
        return "exists"
    kind = cond.spec.kind
    if kind is FieldKind.TAGS:
        return "tags"
    if kind in (FieldKind.NUMBER, FieldKind.DATE):
        return "range"
    if cond.op in ("within", "prefix"):
        return cond.op
    return "in"


