"""OpenAPI 3.1 document built from the routes table and the pydantic models: every route,
parameter and body described here is the one the router serves and the views validate."""

from __future__ import annotations

import copy
import json
import re
from importlib import metadata
from typing import Any

from pydantic.json_schema import models_json_schema

from policy_push.domain._types import ID_PATTERN
from policy_push.domain.criteria import criteria_json_schema

from .routes import API_PREFIX, ROUTES, Route, shadowed_words
from .schemas import SCHEMA_MODELS
from .views.callbacks import CALLBACK_SCHEMAS
from .views.me import DECISIONS

__all__ = ["build_openapi"]

_REF = "#/components/schemas/{model}"

#: schemas that are not pydantic models: an NDJSON body is text, one record per line
_EXTRA_SCHEMAS: dict[str, dict[str, Any]] = {
    "NdjsonBody": {
        "type": "string",
        "contentMediaType": "application/x-ndjson",
        "description": "JSON lines; each line is one record of the kind named in the path.",
        "x-line-schema": {
            "oneOf": [{"$ref": _REF.format(model=m)} for m in ("Policy", "EnterpriseProfile", "ResidentProfile")]
        },
    },
}

_EXTRA_SCHEMAS.update(CALLBACK_SCHEMAS)
_EXTRA_SCHEMAS["HtmlPage"] = {"type": "string", "contentMediaType": "text/html", "description": "An HTML page."}

_ERROR_TEXT = {
    303: "A page for staff without a login: redirect to /staff/login.",
    400: "The request cannot be read: a header or the URL is not UTF-8 text, a form body is malformed, or a provider push is not one. "
    "A request line or a header longer than 8190 bytes (or one the HTTP parser cannot read at all) is refused by the HTTP "
    "server itself, before the service sees the request: that answer is plain text.",
    401: "No bearer token (`WWW-Authenticate: Bearer`) and no staff session.",
    403: "Wrong, expired or revoked token; a role below the one the route needs; or a form without its CSRF token.",
    404: "No such record.",
    405: "Method not allowed (for a path parameter: the value is the word of another route, e.g. `suggest`).",
    408: "The body was sent too slowly (POLICY_PUSH_REQUEST_BODY_TIMEOUT_S).",
    409: "Conflict: the record already exists, or a concurrent write won.",
    413: "The body is larger than POLICY_PUSH_MAX_BODY_BYTES.",
    415: "Wrong Content-Type.",
    422: "Invalid input: each error names the location (`loc`), the field and the reason.",
    429: "Too many requests (logins or link look-ups from one address, sign-in codes for one phone): wait the seconds of `Retry-After` (also `retry_after_s` in the error).",
    500: "Internal error; the body carries a request id.",
    503: "The service cannot do this now. The database is busy with another write (retry after the seconds of "
    "`Retry-After`); or, for matching, the match index failed or a shard holding some of the policy's regions did "
    "not answer (`shard` in the error names it; a partial list is never given).",
}

_PARAM_RE = re.compile(r"\{(\w+)\}")


def _package_version() -> str:
    try:
        return metadata.version("policy_push")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def _components() -> dict[str, Any]:
    """Every model's JSON schema, with nested definitions lifted into components."""
    _, top = models_json_schema(
        [(model, "validation") for model in SCHEMA_MODELS.values()], ref_template=_REF
    )
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    # a copy: the document is built once per app, and _no_nul writes into the schemas it is given
    schemas.update(copy.deepcopy(_EXTRA_SCHEMAS))
    schemas[_FREE_VALUE] = copy.deepcopy(_FREE_VALUE_SCHEMA)
    # the model holds criteria as a free object (policy_push.domain.parse_policy checks the tree against the
    # audience's fields); the document states that grammar, per audience
    audiences = {"enterprise": "EnterpriseCriteria", "resident": "ResidentCriteria"}
    for audience, name in audiences.items():
        schemas[name] = criteria_json_schema(audience, _REF.format(model=name))
    policy = schemas["Policy"]
    policy["properties"]["criteria"] = {
        "description": "Who qualifies: a criteria tree of the policy's audience (null: everyone of it).",
        "anyOf": [*(_ref(name) for name in audiences.values()), {"type": "null"}],
    }
    policy["allOf"] = [
        {"if": {"properties": {"audience": {"const": audience}}},
         "then": {"properties": {"criteria": {"anyOf": [_ref(name), {"type": "null"}]}}}}
        for audience, name in audiences.items()
    ]  # fmt: skip
    return schemas


#: text the service stores has no NUL (policy_push.domain.text): every free string and key says so
_NO_NUL = "^[^\\x00]*$"

#: what an object's undeclared properties may hold: any JSON value whose strings and keys have no NUL, at
#: any depth (the server refuses a NUL anywhere in a body, in a property it then ignores too)
_FREE_VALUE = "FreeJsonValue"
_FREE_VALUE_SCHEMA: dict[str, Any] = {
    "description": "Any JSON value without a NUL character (U+0000) in its strings or keys.",
    "anyOf": [
        {"type": ["null", "boolean", "number"]},
        {"type": "string", "pattern": _NO_NUL},
        {"type": "array", "items": {"$ref": _REF.format(model=_FREE_VALUE)}},
        {"type": "object", "propertyNames": {"pattern": _NO_NUL},
         "additionalProperties": {"$ref": _REF.format(model=_FREE_VALUE)}},
    ],
}  # fmt: skip


def _no_nul(schema: Any) -> None:
    """Add "no NUL" to every string of ``schema`` whose values are not already fixed (enum, const, format or
    an anchored pattern of its own), and to every object's property names; iterative."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if node.get("type") == "string" and not {"enum", "const", "format"} & node.keys():
            pattern = node.get("pattern")
            if pattern is None:
                node["pattern"] = _NO_NUL
            elif not (pattern.startswith("^") and pattern.endswith("$")):  # a search, not a whole-value rule
                node.setdefault("allOf", []).append({"pattern": _NO_NUL})
        if node.get("type") == "object" or "properties" in node or "additionalProperties" in node:
            node.setdefault("propertyNames", {"pattern": _NO_NUL})
            if node.get("additionalProperties", True) is True:
                node["additionalProperties"] = {"$ref": _REF.format(model=_FREE_VALUE)}
        stack.extend(v for k, v in node.items() if isinstance(v, dict | list) and k != "propertyNames")


def _request_schemas(components: dict[str, Any]) -> set[str]:
    """The components a request body uses, with every component they refer to."""
    names = {route.body.schema for route in ROUTES if route.body is not None}
    todo = list(names)
    while todo:
        for ref in re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(components[todo.pop()])):
            if ref not in names:
                names.add(ref)
                todo.append(ref)
    return names


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(model=name)}


#: records a PUT writes under the id of its path
_PUT_RECORDS = ("Policy", "EnterpriseProfile", "ResidentProfile")


def _put_variant(schema: dict[str, Any]) -> dict[str, Any]:
    """A record's schema for ``PUT …/{id}``: the path names the record, so the body's ``id`` is optional and,
    when sent, must repeat the path's (a rule between two parameters that JSON Schema cannot state):
    ``readOnly`` says the server owns it."""
    out = dict(schema)
    out["properties"] = {**schema["properties"], "id": {**schema["properties"]["id"], "readOnly": True}}
    out["required"] = [name for name in schema.get("required", []) if name != "id"]
    return out


def _path_schema(path: str, name: str, components: dict[str, Any]) -> dict[str, Any]:
    """What the route's views accept for a path parameter (anything else is a 404, or a 422 naming it)."""
    if name == "decision":
        return {"type": "string", "enum": list(DECISIONS)}
    if name == "kind" and path.startswith(f"{API_PREFIX}/import/"):
        return {"type": "string", "enum": ["policies", "enterprises", "residents"]}
    if path.startswith((f"{API_PREFIX}/subscriber-links/", f"{API_PREFIX}/me/contacts/")):
        return {"type": "string", "pattern": "^[0-9]{1,18}$"}
    if path.startswith(f"{API_PREFIX}/enterprises/"):
        return _string_of(components["EnterpriseProfile"]["properties"]["id"])
    if path.startswith((f"{API_PREFIX}/policies/", "/staff/policies/")) or name == "policy_id":
        return _string_of(components["Policy"]["properties"]["id"])
    if path.startswith((f"{API_PREFIX}/residents/", f"{API_PREFIX}/profiles/")):
        return {"type": "string", "pattern": ID_PATTERN}
    if path.startswith((f"{API_PREFIX}/campaigns/", f"{API_PREFIX}/review/")):
        return {"type": "string", "format": "uuid"}
    return {"type": "string", "minLength": 1}


def _string_of(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in ("title", "description")}


def _operation(route: Route, components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary, "tags": [route.tag]}
    if route.description:
        op["description"] = route.description
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "description": route.path_params.get(name, ""),
         "schema": _path_schema(route.path, name, components)}
        for name in _PARAM_RE.findall(route.path)
    ]
    params.extend(p.openapi() for p in route.query)
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "description": route.body.description,
            "content": {route.body.content_type: {"schema": _ref(_body_schema(route))}},
        }
    responses: dict[str, Any] = {}
    for reply in route.replies:
        entry: dict[str, Any] = {"description": reply.description}
        if reply.schema is not None:
            entry["content"] = {reply.content_type: {"schema": _ref(reply.schema)}}
        responses[str(reply.status)] = entry
    # any write can meet a database held past its busy timeout (503 with Retry-After)
    statuses = set(route.errors) | {400, 500, 503}
    if shadowed_words(route.path):  # the parameter is one of those words: that is the other route's path
        statuses.add(405)
    if route.auth:
        statuses |= {401, 403}
        op["security"] = [{"bearerToken": []}, {"staffSession": []}]
        op["x-role"] = route.needs.value if route.needs is not None else None
    if route.subscriber:
        statuses |= {401}
        op["security"] = [{"subscriberToken": []}]
    # a provider callback answers in the provider's own shape (its first reply's), and refuses what it
    # cannot authenticate with 403
    provider = route.replies[0] if route.tag == "callbacks" else None
    html_page = any(r.content_type == "text/html" for r in route.replies) or route.path.startswith("/staff/")
    if provider is not None:
        statuses |= {403}
    for status in sorted(statuses):
        if str(status) in responses:
            continue
        # (WeChat's answers are plain text; its refusals are our JSON error body)
        if provider is not None and provider.schema is not None and provider.content_type == "application/json":
            content = {provider.content_type: {"schema": _ref(provider.schema)}}
        else:
            content = {"application/json": {"schema": _ref("ErrorBody")}}
            if html_page:  # a form page answers a refused form with the page and its message
                content["text/html"] = {"schema": _ref("HtmlPage")}
        responses[str(status)] = {"description": _ERROR_TEXT[status], "content": content}
    # aiohttp's parser answers an over-long request line or header (LineTooLong) with text/plain before any
    # handler or middleware runs, on every path
    responses["400"].setdefault("content", {}).setdefault("text/plain", {"schema": _ref("PlainText")})
    op["responses"] = responses
    return op


def _body_schema(route: Route) -> str:
    assert route.body is not None
    if route.method == "PUT" and route.body.schema in _PUT_RECORDS and route.path.endswith("/{id}"):
        return f"{route.body.schema}Put"
    return route.body.schema


def build_openapi() -> dict[str, Any]:
    components = _components()
    # request schemas only: an error body quotes what was sent, NUL included
    _no_nul([components[name] for name in _request_schemas(components)])
    for name in _PUT_RECORDS:
        components[f"{name}Put"] = _put_variant(components[name])
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "policy_push API",
            "version": _package_version(),
            "description": "政策找人: policies, enterprise and resident profiles, bulk import. Writes and every read "
            "of personal data need a staff role: `Authorization: Bearer <personal API token>` (see `policy-push staff "
            "token create`) or a staff login session. `x-role` names the least role of each operation (viewer < editor "
            "< approver < admin). Errors are JSON: "
            '`{"errors": [{"loc": [...], "msg": "..."}]}` (only a request line or header over 8190 bytes, refused by the '
            "HTTP server before the service reads it, is a plain-text 400). Times are ISO 8601 in Asia/Shanghai.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerToken": {"type": "http", "scheme": "bearer", "description": "A personal API token (ppt_…)."},
                "staffSession": {"type": "apiKey", "in": "cookie", "name": "pp_staff",
                                 "description": "A staff login (forms also carry a CSRF token)."},
                "subscriberToken": {"type": "http", "scheme": "bearer",
                                    "description": "A person's session token from POST /api/v1/me/sessions."},
            },
        },
    }
