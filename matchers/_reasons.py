"""Readable Chinese reasons: the branch that made the decision, and nothing else.

Both directions (policy -> profiles, profile -> policies) compute the truth of every condition
vectorised.  This module only turns the few returned records into text:

* **Eligible:** the conditions that hold along the deciding branches.  An ``all`` gives every
  child; an ``any`` gives its first satisfied branch only; a ``not`` gives the requirement the
  policy really makes ("纳税信用等级 B 符合（不为 C、D）").  A failed branch of an ``any`` never
  appears.
* **May qualify (unknown):** what is missing and what to add ("缺少：企业规模，请补充从业人员和营业收入").
* **Ineligible:** the conditions that fail.

Lines name the profile's own value with names for codes ("注册地 兴隆台区 属于 盘锦市"); a code the
table does not know says so.  There are no tautologies ("注册地 兴隆台区 符合", never "兴隆台区 属于
兴隆台区") and no duplicates.  Each line is a ``Reason`` with its state, condition path, advice,
and a ``sensitive`` flag when it names a sensitive fact (低保, 特困, 残疾, health).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import cache, lru_cache
from typing import Any, NamedTuple

from ._criteria import FALSE, TRUE, UNKNOWN, Condition, Criteria, Node
from ._fields import FieldKind
from ._hierarchy import Hierarchy
from ._records import Reason
from ._text import shipped_path

__all__ = ["ENUM_NAMES", "Explainer", "explain", "is_sensitive", "missing_fields", "node_value", "reason", "text_reason"]

#: Chinese for enum values shown in reasons
ENUM_NAMES = {"large": "大型", "medium": "中型", "small": "小型", "micro": "微型", "male": "男", "female": "女"}

_NUM_OPS = {"gte": "≥", "gt": ">", "lte": "≤", "lt": "<", "eq": "=", "ne": "≠"}
_DATE_OPS = {"gte": "不早于 ", "gt": "晚于 ", "lte": "不晚于 ", "lt": "早于 ", "eq": "为 ", "ne": "不为 "}
_COMPLEMENT = {"gte": "lt", "gt": "lte", "lte": "gt", "lt": "gte", "eq": "ne", "ne": "eq", "in": "not_in",
               "not_in": "in", "has_any": "has_none", "has_none": "has_any"}
#: what an SME size is derived from (2011 standard), in the order advice names them
SIZE_FIGURES = {"employees": "从业人员", "annual_revenue_wan": "营业收入", "total_assets_wan": "资产总额"}
_ADVICE = {
    "age": "请补充出生日期（或身份证号）",
    "gender": "请补充性别（或身份证号）",
    "hukou_region": "请补充户籍地（或身份证号）",
    "established_years": "请补充成立日期",
}


@cache
def _sensitive_words() -> tuple[str, ...]:
    with open(shipped_path("sensitive_terms.txt"), encoding="utf-8") as f:
        return tuple(s for s in (line.strip() for line in f) if s and not s.startswith("#"))


@lru_cache(maxsize=1 << 16)  # called for every reason line and shared term of a batch's records
def is_sensitive(word: str) -> bool:
    """Does a tag or term name a sensitive fact (低保, 特困, 残疾, health; ``sensitive_terms.txt``)."""
    return any(w in word for w in _sensitive_words())


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.4f}".rstrip("0").rstrip(".")


def _date(ymd: int) -> str:
    return f"{ymd // 10000:04d}-{ymd // 100 % 100:02d}-{ymd % 100:02d}"


def _code_name(h: Hierarchy, code: str) -> str:
    return h.name(code) if code in h else f"{code}（代码表中无此代码）"


def _show(cond: Condition, x: Any, hierarchies: Mapping[str, Hierarchy]) -> str:
    """One value of the condition's field (the profile's, or one from the policy) as text."""
    spec = cond.spec
    if spec.kind is FieldKind.CODE and spec.hierarchy:
        return _code_name(hierarchies[spec.hierarchy], x)
    if spec.kind is FieldKind.ENUM:
        return ENUM_NAMES.get(x, x)
    if spec.kind is FieldKind.DATE:
        return _date(x)
    if spec.kind is FieldKind.NUMBER:
        return f"{_num(x)} {spec.unit}".rstrip()
    return str(x)


def _requirement(cond: Condition, op: str, negate: bool, hierarchies: Mapping[str, Hierarchy]) -> str:
    """The numeric/date requirement as text, e.g. "≥80 岁", "不早于 2021-01-01"."""
    is_date = cond.spec.kind is FieldKind.DATE
    unit = "" if is_date or not cond.spec.unit else f" {cond.spec.unit}"

    def one(o: str, v: Any) -> str:
        return (_DATE_OPS[o] + _date(v)) if is_date else f"{_NUM_OPS[o]}{_num(v)}{unit}"

    if op == "between":
        lo, hi = cond.value
        if lo is not None and hi is not None:
            text = f"{_date(lo)} 至 {_date(hi)}" if is_date else f"{_num(lo)}–{_num(hi)}{unit}"
            return f"不在 {text} 之间" if negate else text
        if lo is None and hi is None:
            return "无限制" if not negate else "不可能满足"
        o, v = ("gte", lo) if lo is not None else ("lte", hi)
        return one(_COMPLEMENT[o] if negate else o, v)
    if op in ("in", "not_in"):
        listed = "、".join(_show(cond, v, hierarchies) for v in cond.value)
        return f"{'不为' if (op == 'not_in') != negate else '为'} {listed}"
    return one(_COMPLEMENT[op] if negate else op, cond.value if op not in ("eq", "ne") else cond.value[0])


def _set_op(op: str) -> str:
    return "in" if op in ("eq", "in") else "not_in"


def advice_for(cond: Condition, values: Mapping[str, Any], audience_label: str | None = None) -> str:
    """What a profile must add for ``cond`` to be decided."""
    name = cond.field
    if name == "size":
        lacking = [label for f, label in SIZE_FIGURES.items() if values.get(f) is None]
        if not lacking:
            return "请补充细到行业大类的所属行业，或直接填写企业规模"
        listed = lacking[0] if len(lacking) == 1 else "、".join(lacking[:-1]) + "和" + lacking[-1]
        return f"请补充{listed}" + ("（或直接填写企业规模）" if len(lacking) == len(SIZE_FIGURES) else "")
    return _ADVICE.get(name, f"请补充{cond.spec.label}")


def reason(cond: Condition, value: Any, truth: int, hierarchies: Mapping[str, Hierarchy],
           values: Mapping[str, Any] | None = None) -> Reason:
    """The line for ``cond`` given the profile's ``value`` and the condition's Kleene ``truth``."""
    spec, label = cond.spec, cond.spec.label
    path, fname = cond.path, cond.field
    if cond.op == "exists":
        has = value is not None
        ok = (truth == TRUE) != cond.flipped
        return Reason(f"{label} {'已填写' if has else '未填写'}，{'符合' if ok else '不符合'}",
                      "holds" if ok else "fails", fname, path, telling=False)
    if truth == UNKNOWN and value is not None and cond.op == "within":
        # a code the table does not know: its place in the hierarchy cannot be told (formats.md)
        listed = "、".join(_show(cond, v, hierarchies) for v in cond.value)
        kind = "区划代码" if spec.hierarchy == "region" else "行业代码"
        return Reason(f"{label} {value} 不在{kind}表中，无法判断是否属于 {listed}", "missing", fname, path,
                      advice=f"请核对{label}的{kind}")
    if truth == UNKNOWN or value is None:
        advice = advice_for(cond, values or {})
        more = "" if advice == f"请补充{label}" else f"，{advice}"  # never "缺少：X，请补充X"
        return Reason(f"缺少：{label}{more}", "missing", fname, path, advice=advice)
    # ``ok`` is whether the policy's real (un-negated) requirement holds for this profile.
    ok = (truth == TRUE) != cond.flipped
    state = "holds" if ok else "fails"
    op = cond.op
    if spec.kind is FieldKind.TAGS:
        have = set(value)
        listed = "、".join(cond.value)
        matched = [t for t in cond.value if t in have]
        if op == "has_all":
            lacking = [t for t in cond.value if t not in have]
            verdict = "符合" if ok else "不符合"
            text = f"{label} {listed} 均具备，{verdict}" if not lacking else f"{label} 缺 {'、'.join(lacking)}，{verdict}"
            named = lacking or list(cond.value)
        elif matched:
            text = f"{label} {'、'.join(matched)} {'符合' if ok else '不符合'}"
            named = matched
        else:
            text = f"{label} 不含 {listed}，{'符合' if ok else '不符合'}"
            named = list(cond.value)
        return Reason(text, state, fname, path, sensitive=any(is_sensitive(t) for t in named))
    shown = _show(cond, value, hierarchies)
    if op == "within":
        h = hierarchies[spec.hierarchy or "region"]
        if ok and value in cond.value:
            return Reason(f"{label} {shown} 符合", state, fname, path)  # no "X 属于 X"
        hit = truth == TRUE
        if hit:
            # name the listed code that contains it: the nearest ancestor in the list
            inside = next((c for c in h.chain(value) if c in cond.value), cond.value[0])
            return Reason(f"{label} {shown} 属于 {_code_name(h, inside)}", state, fname, path)
        listed = "、".join(_show(cond, v, hierarchies) for v in cond.value)
        return Reason(f"{label} {shown} 不属于 {listed}", state, fname, path)
    if op == "prefix":
        hit = truth == TRUE
        listed = "、".join(cond.value)
        return Reason(f"{label} {shown}（{value}）{'以' if hit else '不以'} {listed} 开头", state, fname, path)
    if spec.kind in (FieldKind.CODE, FieldKind.ENUM):
        if ok:
            plain = op in ("eq", "in") and not cond.flipped
            extra = "" if plain else f"（{_requirement(cond, _set_op(op), cond.flipped, hierarchies)}）"
            return Reason(f"{label} {shown} 符合{extra}", state, fname, path)
        return Reason(f"{label} {shown} 不符合（要求{_requirement(cond, _set_op(op), cond.flipped, hierarchies)}）",
                      state, fname, path)
    req = _requirement(cond, op, cond.flipped, hierarchies)
    return Reason(f"{label} {shown}，{'满足' if ok else '不满足'} {req}", state, fname, path)


def node_value(node: Node, leaf_values: Sequence[int]) -> int:
    """Kleene value of ``node`` from its conditions' values (FALSE < UNKNOWN < TRUE)."""
    if node.kind == "leaf":
        assert node.condition is not None
        return leaf_values[node.condition.index]
    if node.kind == "const":
        return TRUE if node.constant else FALSE
    if node.kind == "not":
        return TRUE + FALSE - node_value(node.children[0], leaf_values)
    vals = [node_value(c, leaf_values) for c in node.children]
    return min(vals) if node.kind == "all" else max(vals)


def missing_fields(criteria: Criteria, leaf_values: Sequence[int]) -> list[str]:
    """Fields whose emptiness makes the result unknown (only along unknown branches), sorted."""
    out: set[str] = set()

    def walk(node: Node) -> None:
        if node_value(node, leaf_values) != UNKNOWN:
            return
        if node.kind == "leaf":
            assert node.condition is not None
            out.add(node.condition.field)
        for child in node.children:
            walk(child)

    if criteria.root is not None:
        walk(criteria.root)
    return sorted(out)


def deciding_conditions(criteria: Criteria, leaf_values: Sequence[int]) -> list[Condition]:
    """The conditions that decided the result, in tree order (see the module notes)."""
    out: list[Condition] = []

    def walk(node: Node) -> None:
        v = node_value(node, leaf_values)
        if node.kind == "leaf":
            assert node.condition is not None
            out.append(node.condition)
        elif node.kind == "not":
            walk(node.children[0])
        elif node.kind in ("all", "any"):
            kids = [(c, node_value(c, leaf_values)) for c in node.children]
            if node.kind == "any" and v == TRUE:
                walk(next(c for c, cv in kids if cv == TRUE))  # the satisfied branch only
            else:
                # all TRUE: every child; all FALSE: the failing ones; any FALSE: all of them;
                # UNKNOWN either way: the unknown children (what to add)
                for c, cv in kids:
                    if cv == v:
                        walk(c)

    if criteria.root is not None:
        walk(criteria.root)
    return out


def explain(criteria: Criteria, values: Mapping[str, Any], leaf_values: Sequence[int],
            hierarchies: Mapping[str, Hierarchy]) -> tuple[list[Reason], list[str]]:
    """(reasons, missing) for one profile: ``values`` maps field -> the profile's value (criteria
    fields, and the SME size figures when ``size`` is used)."""
    return Explainer(criteria, hierarchies)(values, leaf_values)


_CACHE_MAX = 4096


class Explained(NamedTuple):
    details: tuple[Reason, ...]
    texts: tuple[str, ...]
    missing: tuple[str, ...]


class Explainer:
    """``explain`` for many profiles of one policy, remembering what repeats between them: the
    deciding conditions of each pattern of condition values, and the line of each (condition,
    value, truth).  Rows of a ranked list mostly share their region, size and tags, so a page of
    reasons costs a few distinct lines, not one per row and condition."""

    def __init__(self, criteria: Criteria, hierarchies: Mapping[str, Hierarchy], *, cache_max: int = _CACHE_MAX) -> None:
        self.criteria = criteria
        self.cache_max = cache_max
        self.hierarchies = hierarchies
        #: leaf values -> (deciding conditions, missing fields, the fields the lines read, the
        #: fields whose presence only they read)
        self._patterns: dict[tuple[int, ...], tuple[list[Condition], list[str], tuple[str, ...], tuple[str, ...]]] = {}
        self._lines: dict[tuple[int, Any, int, Any], Reason] = {}
        self._done: dict[tuple[Any, ...], Explained] = {}
        #: tag fields -> the tags the policy names: a line reads only which of those a profile has
        self._named_tags: dict[str, frozenset[str]] = {}
        for c in criteria.conditions:
            if c.spec.kind is FieldKind.TAGS and c.op != "exists":
                self._named_tags[c.field] = self._named_tags.get(c.field, frozenset()) | frozenset(c.value)

    def _pattern(self, key: tuple[int, ...]) -> tuple[list[Condition], list[str], tuple[str, ...], tuple[str, ...]]:
        got = self._patterns.get(key)
        if got is None:
            conds = deciding_conditions(self.criteria, key)
            fields = tuple(dict.fromkeys(c.field for c in conds))
            # the size advice reads whether each figure is there, never its value
            figures = tuple(f for f in SIZE_FIGURES if f not in fields) if "size" in fields else ()
            got = self._patterns[key] = (conds, missing_fields(self.criteria, key), fields, figures)
        return got

    def _key_value(self, field: str, value: Any) -> Any:
        """What of a profile's ``value`` the lines can read: for tags, only the ones the policy
        names (so that profiles differing in other tags share one explanation)."""
        named = self._named_tags.get(field)
        if named is None or value is None:
            return value
        return tuple(t for t in value if t in named)

    def __call__(self, values: Mapping[str, Any], leaf_values: Sequence[int]) -> tuple[list[Reason], list[str]]:
        done = self.columns({f: [v] for f, v in values.items()}, 0, tuple(leaf_values))
        return list(done.details), list(done.missing)

    def columns(self, columns: Mapping[str, Sequence[Any]], j: int, key: tuple[int, ...]) -> Explained:
        """The reasons of row ``j`` of ``columns`` (field -> values of the rows), whose conditions
        have the Kleene values ``key``."""
        conds, missing, fields, figures = self._pattern(key)
        values = {f: self._key_value(f, columns[f][j]) for f in fields}
        whole = (key, *values.values(), *(columns[f][j] is None for f in figures))
        done = self._done.get(whole)
        if done is None:
            if len(self._done) >= self.cache_max:  # a long-lived explainer (profile -> policies) stays small
                self._done.clear()
                self._lines.clear()
            values.update((f, columns[f][j]) for f in figures)
            details, _ = self._explain(conds, missing, values, key)
            done = self._done[whole] = Explained(tuple(details), tuple(d.text for d in details), tuple(missing))
        return done

    def rows(self, columns: Mapping[str, Sequence[Any]], keys: Sequence[tuple[int, ...]]) -> list[Explained]:
        """``columns(columns, j, keys[j])`` for every row ``j``, built a pattern at a time: the rows
        sharing their conditions' values share the fields to read, so each field is read for all of
        them in one pass and the cache keys are zipped together in C, not assembled row by row."""
        out: list[Explained | None] = [None] * len(keys)
        groups: dict[tuple[int, ...], list[int]] = {}
        for j, key in enumerate(keys):
            got = groups.get(key)
            if got is None:
                groups[key] = [j]
            else:
                got.append(j)
        for key, js in groups.items():
            conds, missing, fields, figures = self._pattern(key)
            parts = [self._key_values(f, columns[f], js) for f in fields]
            parts += [[columns[f][j] is None for j in js] for f in figures]
            for j, whole in zip(js, zip([key] * len(js), *parts, strict=True), strict=True):
                done = self._done.get(whole)
                if done is None:
                    if len(self._done) >= self.cache_max:
                        self._done.clear()
                        self._lines.clear()
                    values = dict(zip(fields, whole[1 : 1 + len(fields)], strict=True))
                    values.update((f, columns[f][j]) for f in figures)
                    details, _ = self._explain(conds, missing, values, key)
                    done = self._done[whole] = Explained(tuple(details), tuple(d.text for d in details), tuple(missing))
                out[j] = done
        return out  # type: ignore[return-value]  # every row was filled in

    def _key_values(self, field: str, column: Sequence[Any], js: list[int]) -> list[Any]:
        """``_key_value(field, column[j])`` for each of ``js``; a tag set repeats across rows, so its
        filtered form is worked out once per distinct set."""
        named = self._named_tags.get(field)
        if named is None:
            return [column[j] for j in js]
        seen: dict[Any, Any] = {}
        out = []
        for j in js:
            v = column[j]
            got = seen.get(v, seen)
            if got is seen:
                got = seen[v] = None if v is None else tuple(t for t in v if t in named)
            out.append(got)
        return out

    def _explain(self, conds: list[Condition], missing: list[str], values: Mapping[str, Any],
                 key: tuple[int, ...]) -> tuple[list[Reason], list[str]]:
        seen: dict[str, int] = {}
        out: list[Reason] = []
        for c in conds:
            value = values.get(c.field)
            extra = tuple(values.get(f) is None for f in SIZE_FIGURES) if c.field == "size" else None
            lk = (c.index, value, key[c.index], extra)
            r = self._lines.get(lk)
            if r is None:
                r = reason(c, value, key[c.index], self.hierarchies, values)
                r = self._lines[lk] = Reason(r.text, r.state, r.field, r.path, r.sensitive, r.advice, (c.path,), r.telling)
            at = seen.get(r.text)
            if at is None:
                seen[r.text] = len(out)
                out.append(r)
            else:  # the same fact twice: one line standing for both conditions
                out[at] = replace(out[at], paths=(*out[at].paths, c.path))
        return out, missing


def text_reason(shared: Sequence[str], audience: str, sensitive: Callable[[str], bool] = is_sensitive) -> Reason | None:
    """The line for a policy without criteria: the words policy and profile share, heaviest first."""
    if not shared:
        return None
    shown: list[str] = []
    for t in shared:  # 稳岗返还 says what 稳岗 and 返还 would say again
        if not any(t in s or s in t for s in shown):
            shown.append(t)
        if len(shown) == 3:
            break
    who = "经营范围或关注事项" if audience == "enterprise" else "身份或关注事项"
    return Reason(f"{who}涉及：{'、'.join(shown)}", "text", None, None, sensitive=any(sensitive(t) for t in shown))
