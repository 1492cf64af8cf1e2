"""Schemathesis hooks (loaded through ``SCHEMATHESIS_HOOKS``): how to generate the string formats the
OpenAPI document names beyond JSON Schema's own.

Each format is a rule the document states and JSON Schema cannot (a code of a reference table, a check
character): without a generator schemathesis would send random digits that the document itself calls
invalid, and the positive-data check would blame the server for refusing them.  The generators draw from
the same reference tables the service validates against and compute the check characters by the
standards (GB 32100-2015, GB 11643-1999) independently of the service's own code.

One ``filter_failure`` hook drops a "schema-valid request rejected" failure whose request is not schema-valid
by the document, the check-character formats included:

- a path parameter that breaks its own schema (the stateful phase feeds a record's id through a link, e.g. a
  resident's ``Apfgi`` into ``PUT /enterprises/{id}`` whose id is an 18-character credit code, and labels the
  request valid without checking the value against the path's schema);
- a JSON body that breaks its schema (the generator loses a string's format where a conditional ``if``/``then``
  names the same property, as ResidentProfile does for ``id_number``, and sends 18 random characters as an ID
  number).

Every other failure stays.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import jsonschema
import schemathesis
from hypothesis import strategies as st
from schemathesis.openapi.checks import RejectedPositiveData

from policy_push.refdata import load_reference_data

_REF = load_reference_data()
_REGIONS = sorted(_REF.regions.names)
_COUNTIES = [code for code in _REGIONS if len(code) == 6 and not code.endswith("00")]
_INDUSTRIES = sorted(_REF.industries.names)

_USCC = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _uscc(body: str) -> str:
    total = sum(_USCC.index(c) * w for c, w in zip(body, _USCC_WEIGHTS, strict=True))
    return body + _USCC[(31 - total % 31) % 31]


def _id_number(parts: tuple[str, dt.date, int]) -> str:
    county, born, serial = parts
    body = f"{county}{born:%Y%m%d}{serial:03d}"
    total = sum(int(c) * w for c, w in zip(body, _ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


_PAST = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date.today() - dt.timedelta(days=1))

schemathesis.openapi.format("gb2260-region", st.sampled_from(_REGIONS))
schemathesis.openapi.format("gb4754-industry", st.sampled_from(_INDUSTRIES))
schemathesis.openapi.format("gb32100-uscc", st.text(_USCC, min_size=17, max_size=17).map(_uscc))
schemathesis.openapi.format(
    "gb11643-id-number",
    st.tuples(st.sampled_from(_COUNTIES), _PAST, st.integers(0, 999)).map(_id_number),
)
schemathesis.openapi.format("past-date", _PAST.map(dt.date.isoformat))
schemathesis.openapi.format(
    "future-date-time",
    st.integers(3600, 90 * 86400).map(
        lambda s: (dt.datetime.now(dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(seconds=s)).isoformat()
    ),
)


def _is_uscc(value: object) -> bool:
    return isinstance(value, str) and len(value) == 18 and all(c in _USCC for c in value) and _uscc(value[:17]) == value


def _is_id_number(value: object) -> bool:
    if not (isinstance(value, str) and len(value) == 18 and value[:17].isdigit() and value[:17].isascii()):
        return False
    total = sum(int(c) * w for c, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return value[17] == "10X98765432"[total % 11]


# the check-character formats, by the same standards as the generators above: a credit code or ID number with a
# wrong character is no value of its format whatever its length (the stateful phase fed a resident's random
# 18-character id into PUT /enterprises/{id}); formats without a rule here are not asserted
_FORMATS = jsonschema.FormatChecker(formats=())
_FORMATS.checks("gb32100-uscc")(_is_uscc)
_FORMATS.checks("gb11643-id-number")(_is_id_number)


def path_parameters_breaking_their_schema(operation: dict[str, Any], values: dict[str, Any]) -> list[str]:
    """The path parameters of ``operation`` (its OpenAPI object) whose value breaks the parameter's schema: its
    type, lengths and pattern, and the check-character formats of _FORMATS."""
    broken = []
    for param in operation.get("parameters", []):
        name = param.get("name")
        if param.get("in") != "path" or name not in values:
            continue
        if not jsonschema.Draft202012Validator(param["schema"], format_checker=_FORMATS).is_valid(values[name]):
            broken.append(name)
    return broken


def body_breaking_its_schema(document: dict[str, Any], operation: dict[str, Any], body: Any) -> bool:
    """Whether ``body`` breaks the JSON request-body schema of ``operation`` in ``document`` (its references
    resolved against the document's components), the check-character formats of _FORMATS included."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None or body is None:
        return False
    # "#/components/..." resolves against the root schema, so the components ride along beside the body's schema
    schema = {**content["schema"], "components": document.get("components", {})}
    return not jsonschema.Draft202012Validator(schema, format_checker=_FORMATS).is_valid(body)


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if not isinstance(failure, RejectedPositiveData):
        return True
    operation, document = case.operation.definition.raw, case.operation.schema.raw_schema
    if not isinstance(operation, dict):
        return True
    values = case.path_parameters or {}
    shown: dict[str, Any] = {name: values[name] for name in path_parameters_breaking_their_schema(operation, values)}
    if isinstance(document, dict) and body_breaking_its_schema(document, operation, case.body):
        shown["body"] = case.body
    if shown:  # said in the run's report (stderr), so a dropped failure can be looked at
        print(f"schemathesis_hooks: not a schema-valid request, dropped: {case.operation.label} {shown}", file=sys.stderr)
    return not shown
