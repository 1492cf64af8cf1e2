"""Region codes for the list filters.

Administrative codes nest by their digits: 21 0000 (province) > 21 11 00 (city) > 211103
(county) > 211103 001 (township).  So "inside X" is a ``LIKE`` on X's significant prefix, and
"covering X" is a short list of codes computed here, which keeps the SQL portable and indexable.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from policy_push.refdata import load_reference_data

__all__ = ["area_prefix", "codes_covering", "policy_region_codes"]

# operators whose values name regions the policy is for (ne / not_in name regions it is not for)
_POSITIVE_OPS = frozenset({"eq", "in", "within", "prefix"})


def area_prefix(code: str) -> str:
    """The digits every code inside ``code`` starts with: 210000 -> 21, 211100 -> 2111."""
    if len(code) == 6:
        if code.endswith("0000"):
            return code[:2]
        if code.endswith("00"):
            return code[:4]
    return code


def codes_covering(code: str) -> list[str]:
    """Codes a policy condition may name to include ``code``: the code, its ancestors (by the
    digits and by the reference table, which knows the irregular parents), and every leading
    substring (so a ``prefix`` condition matches too)."""
    out: set[str] = {code[:n] for n in range(1, len(code) + 1)}
    if len(code) >= 6:
        out |= {code[:6], code[:4] + "00", code[:2] + "0000"}
    out |= set(load_reference_data().regions.ancestors(code))
    return sorted(out)


def _walk(node: Any, negated: bool = False) -> Iterator[tuple[dict[str, Any], bool]]:
    stack: list[tuple[Any, bool]] = [(node, negated)]
    while stack:
        item, neg = stack.pop()
        if not isinstance(item, dict):
            continue
        if "not" in item:
            stack.append((item["not"], not neg))
        for key in ("all", "any"):
            children = item.get(key)
            if isinstance(children, list):
                stack.extend((c, neg) for c in children)
        if "field" in item:
            yield item, neg


def policy_region_codes(criteria: dict[str, Any] | None) -> set[str]:
    """The region codes named by the positive ``region`` conditions of a criteria tree."""
    codes: set[str] = set()
    for cond, negated in _walk(criteria):
        if negated or cond.get("field") != "region" or cond.get("op") not in _POSITIVE_OPS:
            continue
        value = cond.get("value")
        values = value if isinstance(value, list) else [value]
        codes.update(v for v in values if isinstance(v, str) and v)
    return codes
