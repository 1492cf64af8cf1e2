"""Validation of criteria trees (formats.md, "Criteria expression").

The walk is iterative with an explicit depth count, so a tree nested thousands of levels deep
gets a depth error instead of a RecursionError.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from matchers import FIELDS as _FIELDS
from matchers import OPERATORS, FieldKind, FieldSpec, field_spec
from matchers import Audience as _Audience
from policy_push.errors import FieldError
from policy_push.refdata import ReferenceData

__all__ = ["CODE_FORMATS", "MAX_TAG_CHARS", "criteria_json_schema", "validate_criteria"]

MAX_TAG_CHARS = 32
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOGIC_KEYS = ("all", "any", "not")
Loc = tuple[str | int, ...]


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _scalar_error(spec: FieldSpec, value: Any, ref: ReferenceData, *, check_known: bool) -> str | None:
    """Why ``value`` cannot be compared with ``spec``'s field, or None when it can."""
    kind = spec.kind
    if kind is FieldKind.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"wrong value type for {spec.name}: expected a number, got {_type_name(value)} {value!r}"
        return None
    if not isinstance(value, str):
        return f"wrong value type for {spec.name}: expected a string, got {_type_name(value)} {value!r}"
    if kind is FieldKind.DATE:
        if not _DATE_RE.match(value):
            return f"wrong value for {spec.name}: expected a date YYYY-MM-DD, got {value!r}"
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return f"wrong value for {spec.name}: {value!r} is not a real date"
        return None
    if kind is FieldKind.ENUM:
        if value not in spec.choices:
            return f"wrong value for {spec.name}: {value!r} is not one of {', '.join(spec.choices)}"
        return None
    if kind is FieldKind.CODE:
        if not value:
            return f"wrong value for {spec.name}: empty code"
        table = ref.regions if spec.hierarchy == "region" else ref.industries
        if check_known and value not in table:
            what = "region" if spec.hierarchy == "region" else "industry (GB/T 4754-2017)"
            return f"unknown {what} code {value!r}"
        return None
    if kind is FieldKind.TAGS:
        if not value.strip():
            return f"empty tag in {spec.name}"
        if len(value) > MAX_TAG_CHARS:
            return f"tag {value[:40]!r}… in {spec.name} is longer than {MAX_TAG_CHARS} characters"
        return None
    return None  # pragma: no cover - every kind is handled above


def _condition_errors(node: dict[str, Any], audience: str, loc: Loc, ref: ReferenceData) -> list[FieldError]:
    extra = set(node) - {"field", "op", "value"}
    if extra:
        return [FieldError(loc, f"unexpected key(s) {sorted(extra)} in a condition; a condition has field, op and value")]
    field = node.get("field")
    op = node.get("op")
    if not isinstance(field, str):
        return [FieldError((*loc, "field"), "a condition needs a field name (a string)")]
    spec = field_spec(audience, field)
    if spec is None:
        known = ", ".join(sorted(_FIELDS[_Audience(audience)]))
        return [FieldError((*loc, "field"), f"unknown field {field!r} for {audience} policies; known fields: {known}")]
    if not isinstance(op, str) or op not in OPERATORS:
        return [FieldError((*loc, "op"), f"unknown operator {op!r} on field {field!r}; operators: {', '.join(OPERATORS)}")]
    if op not in spec.operators:
        return [
            FieldError(
                (*loc, "op"),
                f"operator {op!r} does not fit field {field!r} ({spec.kind.value}); use one of {', '.join(sorted(spec.operators))}",
            )
        ]
    if "value" not in node:
        return [FieldError((*loc, "value"), f"condition on {field!r} with {op!r} needs a value")]
    value = node["value"]
    vloc = (*loc, "value")
    shape = OPERATORS[op]
    if shape == "bool":
        if not isinstance(value, bool):
            return [FieldError(vloc, f"wrong value type: {op!r} takes true or false, got {_type_name(value)} {value!r}")]
        return []
    if shape == "scalar":
        err = _scalar_error(spec, value, ref, check_known=op in ("eq", "ne"))
        return [FieldError(vloc, err)] if err else []
    if shape == "range":
        if not isinstance(value, list) or len(value) != 2:
            return [FieldError(vloc, f"wrong value type: 'between' takes [min, max], got {_type_name(value)} {value!r}")]
        if value[0] is None and value[1] is None:
            return [FieldError(vloc, "'between' needs at least one end; both are null")]
        errs = [
            FieldError((*vloc, i), err)
            for i, v in enumerate(value)
            if v is not None and (err := _scalar_error(spec, v, ref, check_known=False))
        ]
        if not errs and value[0] is not None and value[1] is not None and value[0] > value[1]:
            errs.append(FieldError(vloc, f"'between' min {value[0]!r} is greater than max {value[1]!r}"))
        return errs
    # list-shaped operators
    if not isinstance(value, list):
        return [FieldError(vloc, f"wrong value type: {op!r} takes a list, got {_type_name(value)} {value!r}")]
    if not value:
        return [FieldError(vloc, f"{op!r} needs at least one value")]
    errs = []
    for i, v in enumerate(value):
        if op == "prefix":
            if not isinstance(v, str) or not v:
                errs.append(FieldError((*vloc, i), f"wrong value type: a prefix is a non-empty string, got {v!r}"))
            continue
        err = _scalar_error(spec, v, ref, check_known=op in ("in", "not_in", "within"))
        if err:
            errs.append(FieldError((*vloc, i), err))
    return errs


def validate_criteria(criteria: Any, audience: str, ref: ReferenceData, *, max_depth: int = 32) -> list[FieldError]:
    """Every problem in a criteria tree, each with its location under ``criteria``."""
    errors: list[FieldError] = []
    stack: list[tuple[Any, Loc, int]] = [(criteria, ("criteria",), 1)]
    while stack:
        node, loc, depth = stack.pop()
        if depth > max_depth:
            errors.append(FieldError(("criteria",), f"criteria nested deeper than {max_depth} levels"))
            # one message is enough; the rest of a runaway tree would only repeat it
            return errors
        if not isinstance(node, dict):
            errors.append(FieldError(loc, f"expected an object (a condition, all, any or not), got {_type_name(node)}"))
            continue
        logic = [k for k in _LOGIC_KEYS if k in node]
        if logic:
            if len(node) != 1:
                errors.append(FieldError(loc, f"{logic[0]!r} must be the only key of its object, found {sorted(node)}"))
                continue
            key = logic[0]
            child = node[key]
            if key == "not":
                stack.append((child, (*loc, "not"), depth + 1))
                continue
            if not isinstance(child, list) or not child:
                errors.append(FieldError((*loc, key), f"{key!r} takes a non-empty list of criteria"))
                continue
            for i in range(len(child) - 1, -1, -1):
                stack.append((child[i], (*loc, key, i), depth + 1))
            continue
        if "field" in node or "op" in node:
            errors.extend(_condition_errors(node, audience, loc, ref))
            continue
        errors.append(FieldError(loc, f"unknown criteria node with keys {sorted(node)}; expected all, any, not or a condition"))
    return errors


# -- the same grammar as JSON Schema, for the OpenAPI document ------------------------------------------
#: string formats naming a reference table (the OpenAPI document's own; its test teaches them to schemathesis)
CODE_FORMATS = {"region": "gb2260-region", "industry": "gb4754-industry"}


def _value_schema(spec: FieldSpec, *, known: bool) -> dict[str, Any]:
    """One value :func:`_scalar_error` accepts for ``spec`` (``known``: a code must be in its table)."""
    kind = spec.kind
    if kind is FieldKind.NUMBER:
        return {"type": "number"}
    if kind is FieldKind.DATE:
        return {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
    if kind is FieldKind.ENUM:
        return {"type": "string", "enum": list(spec.choices)}
    if kind is FieldKind.CODE:
        hierarchy = spec.hierarchy or "region"
        schema: dict[str, Any] = {"type": "string", "minLength": 1}
        if known:
            schema["format"] = CODE_FORMATS[hierarchy]
        return schema
    # tags: what _scalar_error checks (str.strip, hence the separators ECMA's \s lacks)
    return {"type": "string", "minLength": 1, "maxLength": MAX_TAG_CHARS, "pattern": r"[^\s\x1c-\x1f\x85]"}


def _condition_schemas(spec: FieldSpec) -> list[dict[str, Any]]:
    """One schema per group of ``spec``'s operators that take the same shape of value."""
    groups: dict[tuple[str, bool], list[str]] = {}
    for op in sorted(spec.operators):
        shape = OPERATORS[op]
        known = op in ("eq", "ne") if shape == "scalar" else op in ("in", "not_in", "within")
        groups.setdefault((shape if op != "prefix" else "prefix", known), []).append(op)
    out = []
    for (shape, known), ops in groups.items():
        if shape == "bool":
            value: dict[str, Any] = {"type": "boolean"}
        elif shape == "scalar":
            value = _value_schema(spec, known=known)
        elif shape == "range":
            # [min, max], either end null, not both (that min <= max is a rule between two values that JSON
            # Schema cannot state: the description says it)
            end = _value_schema(spec, known=False)
            value = {"type": "array", "minItems": 2, "maxItems": 2, "items": {"anyOf": [end, {"type": "null"}]},
                     "not": {"items": {"type": "null"}}, "description": "[min, max]: either may be null, not both; "
                     "min not above max."}
        elif shape == "prefix":
            value = {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}
        else:
            value = {"type": "array", "minItems": 1, "items": _value_schema(spec, known=known)}
        out.append({
            "type": "object", "additionalProperties": False, "required": ["field", "op", "value"],
            "properties": {"field": {"const": spec.name}, "op": {"enum": ops}, "value": value},
        })  # fmt: skip
    return out


def criteria_json_schema(audience: str, ref_template: str) -> dict[str, Any]:
    """The criteria tree of ``audience``'s policies; ``ref_template`` names this schema itself (its recursion).
    Deeper than ``max_depth`` levels is refused too, which JSON Schema cannot count."""
    me = {"$ref": ref_template}
    conditions = [s for spec in _FIELDS[_Audience(audience)].values() for s in _condition_schemas(spec)]
    logic = [
        {"type": "object", "additionalProperties": False, "required": [key],
         "properties": {key: {"type": "array", "minItems": 1, "items": me}}}
        for key in ("all", "any")
    ] + [{"type": "object", "additionalProperties": False, "required": ["not"], "properties": {"not": me}}]  # fmt: skip
    return {"description": f"A criteria tree of {audience} policies (formats.md): all / any / not, or a condition "
            "on one field.", "anyOf": logic + conditions}
