"""Tidying a suggested criteria tree, and turning it into the documented JSON with a path per leaf.

The tidying only rewrites a tree into an equivalent one: nested groups of one logic are
flattened, repeated conditions dropped, a region implied by a narrower one in the same ``all``
dropped, single tags required together written as one ``has_all``, and conditions shared by
every alternative of an ``any`` moved out of it.
"""

from __future__ import annotations

import json
from typing import Any

from policy_push.refdata import ReferenceData

from .conditions import Group, Leaf, Node

__all__ = ["criteria_json", "leaf_key", "tidy"]

Path = tuple[str | int, ...]


def leaf_key(leaf: Leaf) -> str:
    return json.dumps(leaf.condition, sort_keys=True, ensure_ascii=False)


def _node_key(node: Node) -> str:
    if isinstance(node, Leaf):
        return leaf_key(node)
    return node.logic + "(" + ",".join(sorted(_node_key(c) for c in node.children)) + ")"


def _flatten(node: Node) -> Node | None:
    if isinstance(node, Leaf):
        return node
    children: list[Node] = []
    for child in node.children:
        tidy_child = _flatten(child)
        if tidy_child is None:
            continue
        if isinstance(tidy_child, Group) and tidy_child.logic == node.logic:
            children.extend(tidy_child.children)
        else:
            children.append(tidy_child)
    seen: dict[str, Node] = {}
    for child in children:
        key = _node_key(child)
        if key in seen:
            kept = seen[key]
            if isinstance(kept, Leaf) and isinstance(child, Leaf):
                kept.confidence = max(kept.confidence, child.confidence)
            continue
        seen[key] = child
    children = list(seen.values())
    if not children:
        return None
    if len(children) == 1:
        return children[0]
    return Group(node.logic, children)


def _within_codes(leaf: Leaf) -> tuple[str, list[str]] | None:
    c = leaf.condition
    if c.get("op") == "within":
        return c["field"], list(c["value"])
    return None


def _drop_implied_within(children: list[Node], ref: ReferenceData) -> list[Node]:
    """In an ``all``, ``region within [211100]`` adds nothing beside ``region within [211104]``."""
    out = list(children)
    for a in children:
        if not isinstance(a, Leaf) or (wa := _within_codes(a)) is None:
            continue
        table = ref.industries if wa[0] == "industry" else ref.regions
        for b in children:
            if b is a or not isinstance(b, Leaf) or (wb := _within_codes(b)) is None or wb[0] != wa[0]:
                continue
            narrower = all(any(table.is_within(code, other) for other in wb[1]) for code in wa[1])
            if narrower and set(wa[1]) != set(wb[1]) and b in out:
                out.remove(b)
    return out


def _merge_all_tags(children: list[Node]) -> list[Node]:
    """Single tags required side by side become one ``has_all``."""
    singles: dict[str, list[Leaf]] = {}
    for c in children:
        if isinstance(c, Leaf) and c.condition.get("op") in ("has_any", "has_all") and len(c.condition["value"]) == 1:
            singles.setdefault(c.condition["field"], []).append(c)
    out = list(children)
    for fld, leaves in singles.items():
        if len(leaves) < 2:
            continue
        first = leaves[0]
        merged = Leaf(
            {"field": fld, "op": "has_all", "value": list(dict.fromkeys(v for x in leaves for v in x.condition["value"]))},
            min(x.confidence for x in leaves),
            first.sentence,
            min(x.start for x in leaves),
            max(x.end for x in leaves),
        )
        out = [c for c in out if not any(c is x for x in leaves)]
        out.insert(children.index(first), merged)
    return out


_SINGLE_VALUED = {"region", "hukou_region", "industry"}


def _join_disjoint(children: list[Node], ref: ReferenceData) -> list[Node]:
    """In an ``all``, an enterprise cannot be in two unrelated industries (or places) at once:
    ``within [25, 26]`` beside ``within [3512]`` can only mean either."""
    out = list(children)
    leaves = [c for c in children if isinstance(c, Leaf) and c.condition.get("op") == "within"
              and c.condition.get("field") in _SINGLE_VALUED]
    for i, a in enumerate(leaves):
        for b in leaves[i + 1 :]:
            if a not in out or b not in out or a.condition["field"] != b.condition["field"]:
                continue
            table = ref.industries if a.condition["field"] == "industry" else ref.regions
            related = any(table.is_within(x, y) or table.is_within(y, x) for x in a.condition["value"] for y in b.condition["value"])
            if related:
                continue
            a.condition = {**a.condition, "value": list(dict.fromkeys([*a.condition["value"], *b.condition["value"]]))}
            a.confidence = min(a.confidence, b.confidence) * 0.9
            out.remove(b)
    return out


def _union_any(children: list[Node]) -> list[Node]:
    """Alternatives on one field are one condition: any(has_any [a], has_any [b]) → has_any [a, b]."""
    out: list[Node] = []
    index: dict[tuple[str, str], Leaf] = {}
    for c in children:
        if isinstance(c, Leaf) and c.condition.get("op") in ("has_any", "within", "in"):
            key = (c.condition["field"], c.condition["op"])
            if key in index:
                target = index[key]
                target.condition = {**target.condition,
                                    "value": list(dict.fromkeys([*target.condition["value"], *c.condition["value"]]))}
                target.confidence = min(target.confidence, c.confidence)
                continue
            c = Leaf(dict(c.condition), c.confidence, c.sentence, c.start, c.end)
            index[key] = c
        out.append(c)
    return out


def _factor_any(group: Group) -> Node:
    """any(all(X, Y), all(X, Z)) → all(X, any(Y, Z)); any(X, all(X, Z)) → X."""
    def parts(child: Node) -> list[Node]:
        return list(child.children) if isinstance(child, Group) and child.logic == "all" else [child]

    child_parts = [parts(c) for c in group.children]
    common_keys = set.intersection(*({_node_key(p) for p in ps} for ps in child_parts))
    if not common_keys:
        return group
    common = [p for p in child_parts[0] if _node_key(p) in common_keys]
    rests: list[Node] = []
    for ps in child_parts:
        rest = [p for p in ps if _node_key(p) not in common_keys]
        if not rest:
            return common[0] if len(common) == 1 else Group("all", common)
        rests.append(rest[0] if len(rest) == 1 else Group("all", rest))
    return Group("all", [*common, Group("any", rests)])


def _tidy(node: Node, ref: ReferenceData) -> Node | None:
    flat = _flatten(node)
    if flat is None or isinstance(flat, Leaf):
        return flat
    children = [t for c in flat.children if (t := _tidy(c, ref)) is not None]
    group = Group(flat.logic, children)
    if group.logic == "all":
        group.children = _merge_all_tags(_join_disjoint(_drop_implied_within(group.children, ref), ref))
    else:
        group.children = _union_any(group.children)
    if group.logic == "any" and len(group.children) > 1:
        factored = _factor_any(group)
        if factored is not group:
            return _tidy(factored, ref)
    return _flatten(group)


def tidy(node: Node | None, ref: ReferenceData) -> Node | None:
    if node is None:
        return None
    before = None
    current: Node | None = node
    # a few passes reach a fixed point (each pass only shrinks the tree)
    for _ in range(4):
        if current is None:
            return None
        key = _node_key(current)
        if key == before:
            break
        before = key
        current = _tidy(current, ref)
    return current


def criteria_json(node: Node | None) -> tuple[dict[str, Any] | None, list[tuple[Path, Leaf]]]:
    """The documented criteria JSON of ``node`` and, for every leaf, its path in that JSON."""
    if node is None:
        return None, []
    paths: list[tuple[Path, Leaf]] = []

    def walk(n: Node, path: Path) -> dict[str, Any]:
        if isinstance(n, Leaf):
            paths.append((path, n))
            return json.loads(json.dumps(n.condition))
        return {n.logic: [walk(c, (*path, n.logic, i)) for i, c in enumerate(n.children)]}

    return walk(node, ()), paths
