"""Statuses, event sources, waiting reasons and codes live in ``policy_push/statuses.py`` only.

Everywhere else in ``policy_push`` (migrations excepted: they are frozen history) code names them
through the enums. A bare ``"sent"`` compared with a status column, passed as one, or stored as one is
a second home for the vocabulary, and a typo there is a silent bug; the database's CHECK constraints
would refuse it only at run time.
"""

from __future__ import annotations

import ast
import enum
from collections.abc import Iterator
from pathlib import Path

from policy_push import statuses

ROOT = Path(__file__).resolve().parents[2] / "policy_push"
#: columns and fields that hold a value of the vocabulary
STATUS_FIELDS = frozenset({
    "status", "state", "from_status", "to_status", "waiting_for", "skip_reason", "purpose", "source", "code", "op",
    "kind", "to", "why",
})  # fmt: skip


def vocabulary() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in statuses.__all__:
        obj = getattr(statuses, name)
        if isinstance(obj, type) and issubclass(obj, enum.Enum):
            for member in obj:
                out.setdefault(str(member.value), []).append(f"{name}.{member.name}")
    return out


VOCABULARY = vocabulary()
#: values nothing but a status can mean (``created``, ``done`` … are also plain words elsewhere)
EXCLUSIVE = frozenset(
    {s.value for s in statuses.DeliveryStatus if s is not statuses.DeliveryStatus.CREATED}
    | {s.value for s in statuses.Waiting}
    | {s.value for s in statuses.Code}
)


def _field(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def _strings(node: ast.AST) -> Iterator[ast.Constant]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node
    elif isinstance(node, ast.List | ast.Tuple | ast.Set):
        for elt in node.elts:
            yield from _strings(elt)


def violations(source: str, name: str) -> list[str]:
    tree = ast.parse(source)
    found: list[str] = []
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }  # fmt: skip
    keys = {id(k) for node in ast.walk(tree) if isinstance(node, ast.Dict) for k in node.keys if k is not None}

    def flag(const: ast.Constant, why: str) -> None:
        if const.value in VOCABULARY:
            found.append(f"{name}:{const.lineno}: {const.value!r} ({why}); use {VOCABULARY[const.value][0]}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):  # d.status == "sent", state in ("draft", ...)
            sides = [node.left, *node.comparators]
            if any(_field(s) in STATUS_FIELDS for s in sides):
                for side in sides:
                    for const in _strings(side):
                        flag(const, "compared with a status field")
        elif isinstance(node, ast.keyword) and node.arg in STATUS_FIELDS:  # .values(status="sent")
            for const in _strings(node.value):
                flag(const, f"passed as {node.arg}=")
        elif isinstance(node, ast.Dict):  # {"status": "sending"}
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value in STATUS_FIELDS:
                    for const in _strings(value):
                        flag(const, f"stored as {key.value!r}")
        elif isinstance(node, ast.Call) and _field(node.func) == "in_" and _field(node.func.value) in STATUS_FIELDS:  # type: ignore[attr-defined]
            for arg in node.args:
                for const in _strings(arg):
                    flag(const, "in a status IN (...) list")
        elif (isinstance(node, ast.Constant) and node.value in EXCLUSIVE and id(node) not in docstrings
              and id(node) not in keys):  # fmt: skip
            found.append(f"{name}:{node.lineno}: {node.value!r}; use {VOCABULARY[node.value][0]}")
    return sorted(set(found))


def test_no_status_literal_outside_statuses_py() -> None:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        if path.name == "statuses.py" or "migrations" in path.parts:
            continue
        found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT.parent)))
    assert found == []


def test_the_check_sees_each_kind_of_use() -> None:
    probe = '''
d.status == "sent"
row.state in ("draft", "approved")
stmt.values(status="sending", waiting_for="retry")
event = {"to_status": "delivered", "source": "settle"}
deliveries.c.status.in_(["created", "sending"])
code = "UNKNOWN_OUTCOME"
plain = {"delivered": True}  # a column name, not a status
result.outcome == "created"  # an upsert's outcome, another vocabulary
'''
    flagged = {int(f.split(":")[1]) for f in violations(probe, "probe.py")}
    assert flagged == {2, 3, 4, 5, 6, 7}
