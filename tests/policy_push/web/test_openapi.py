"""The OpenAPI document and the router agree, and the documented schemas fit real data."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from policy_push.web.routes import ROUTES

from .conftest import AUTH, SAMPLE, Client, sample_enterprise, sample_policy, sample_records, sample_resident

jsonschema = pytest.importorskip("jsonschema")

BODY_SAMPLES = {"Policy": "policies.jsonl", "EnterpriseProfile": "enterprises.jsonl", "ResidentProfile": "residents.jsonl"}


def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    root = {**schema, "components": doc["components"]}
    jsonschema.Draft202012Validator.check_schema(root)
    return jsonschema.Draft202012Validator(root)


@pytest.fixture
async def doc(client: Client) -> dict[str, Any]:
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    return await resp.json()


async def test_document_and_router_list_the_same_routes(client: Client, doc: dict[str, Any]) -> None:
    served = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert served == documented
    assert len(documented) == len(ROUTES)


def test_document_is_openapi_31_with_unique_operation_ids(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    ops = [op for ops in doc["paths"].values() for op in ops.values()]
    ids = [op["operationId"] for op in ops]
    assert len(ids) == len(set(ids))
    for path, path_ops in doc["paths"].items():
        for op in path_ops.values():
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert names == set(re.findall(r"\{(\w+)\}", path))
            assert "500" in op["responses"]


def test_guarded_routes_document_401_and_403(doc: dict[str, Any]) -> None:
    for route in ROUTES:
        op = doc["paths"][route.path][route.method.lower()]
        assert ("security" in op) == (route.auth or route.subscriber)
        if route.auth:
            assert {"401", "403"} <= set(op["responses"])
        if route.subscriber:
            assert op["security"] == [{"subscriberToken": []}] and "401" in op["responses"]


def test_every_schema_reference_resolves(doc: dict[str, Any]) -> None:
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(doc)))
    assert refs <= set(doc["components"]["schemas"])


def test_request_bodies_accept_the_sample_records(doc: dict[str, Any]) -> None:
    seen = set()
    for path_ops in doc["paths"].values():
        for op in path_ops.values():
            body = op.get("requestBody")
            if body is None:
                continue
            for content_type, media in body["content"].items():
                name = media["schema"]["$ref"].rsplit("/", 1)[1]
                schema = doc["components"]["schemas"][name]
                if content_type == "application/x-ndjson":
                    validator = _validator(doc, schema["x-line-schema"])
                    files = BODY_SAMPLES.values()
                elif name in BODY_SAMPLES:
                    validator = _validator(doc, media["schema"])
                    files = [BODY_SAMPLES[name]]
                else:  # small bodies of other routes (campaigns …) are checked beside their routes
                    continue
                for file in files:
                    for line in (SAMPLE / file).read_text(encoding="utf-8").splitlines()[:20]:
                        validator.validate(json.loads(line))
                seen.add(name)
    assert {"Policy", "EnterpriseProfile", "ResidentProfile", "NdjsonBody"} <= seen


def test_body_schemas_reject_what_the_api_rejects(doc: dict[str, Any]) -> None:
    validator = _validator(doc, {"$ref": "#/components/schemas/Policy"})
    assert not validator.is_valid({**sample_policy(), "unknown_field": 1})
    assert not validator.is_valid({k: v for k, v in sample_policy().items() if k != "title"})
    assert not validator.is_valid({**sample_policy(), "audience": "everyone"})


_REFUSED = [  # (schema, collection, change to a valid sample, why the service refuses it)
    ("Policy", "policies", {"title": "   "}, "a blank title"),
    ("Policy", "policies", {"id": "pf-x\n"}, "an id with a trailing newline"),
    ("Policy", "policies", {"id": "suggest"}, "an id that is a route word"),
    ("Policy", "policies", {"url": "ftp://example.org/p"}, "a url that is not http(s)"),
    ("Policy", "policies", {"categories": [" "]}, "a blank category"),
    ("Policy", "policies", {"criteria": {"foo": 1}}, "a criteria node of no known kind"),
    ("Policy", "policies", {"criteria": {"field": "industry", "op": "eq", "value": "C"}}, "an enterprise field on a resident policy"),
    ("Policy", "policies", {"criteria": {"field": "age", "op": "between", "value": [None, None]}}, "between without ends"),
    ("Policy", "policies", {"criteria": {"all": []}}, "an empty all"),
    ("Policy", "policies", {"urgent": 1}, "urgent as a number"),
    ("Policy", "policies", {"benefit_max_yuan": True}, "a benefit of true"),
    ("Policy", "policies", {"benefit_max_yuan": "5000"}, "a benefit as a string"),
    ("ResidentProfile", "residents", {"name": ""}, "an empty name"),
    ("ResidentProfile", "residents", {"consent": "true"}, "consent as a string"),
    ("EnterpriseProfile", "enterprises", {"employees": "5"}, "employees as a string"),
    ("ResidentProfile", "residents", {"region": "12345"}, "a region code of 5 digits"),
    ("ResidentProfile", "residents", {"contact": {"phone": "12800000000"}}, "a phone that is not a mobile number"),
    ("ResidentProfile", "residents", {"channels": ["sms", "sms"]}, "a channel twice"),
    ("EnterpriseProfile", "enterprises", {"id": "91210000I11111111X"}, "a credit code with an I"),
    ("EnterpriseProfile", "enterprises", {"industry": "Z"}, "an industry section that does not exist"),
    # lengths beside the formats: schemathesis' coverage phase sent "" and its fuzzing fed other records' ids
    ("ResidentProfile", "residents", {"id_number": ""}, "an empty ID number"),
    ("ResidentProfile", "residents", {"id_number": "2111041946"}, "an ID number of 10 characters"),
    ("EnterpriseProfile", "enterprises", {"id": ""}, "an empty credit code"),
    ("EnterpriseProfile", "enterprises", {"id": "pf-1"}, "a policy's id as a credit code"),
    ("EnterpriseProfile", "enterprises", {"employees": 10_000_001}, "more employees than the bound"),
    ("EnterpriseProfile", "enterprises", {"established_on": "2024-1-1"}, "an establishment date of 8 characters"),
    ("EnterpriseProfile", "enterprises", {"established_on": "0000-00-00"}, "an establishment date that is no day"),
]


@pytest.mark.parametrize(("schema", "collection", "change", "why"), _REFUSED, ids=[c[3] for c in _REFUSED])
async def test_the_document_refuses_what_the_service_refuses(
    client: Client, doc: dict[str, Any], schema: str, collection: str, change: dict[str, Any], why: str
) -> None:
    """The body schemas state the validators' rules (schemathesis takes every schema-valid body as a promise)."""
    base = {"Policy": sample_resident_policy, "ResidentProfile": sample_resident, "EnterpriseProfile": sample_enterprise}
    record = {**base[schema](), **change}
    resp = await client.post(f"/api/v1/{collection}", json=record, headers=AUTH)
    assert resp.status == 422, (why, await resp.text())
    if any("\n" in str(v) for v in change.values()):
        return  # the document's `$` is ECMA 262's (end of text); Python's jsonschema reads it as re.search does
    if why in _BY_FORMAT:  # a code of a table or with a check character: the document names its format
        field = next(iter(change))
        assert _BY_FORMAT[why] in json.dumps(doc["components"]["schemas"][schema]["properties"][field]), why
        return
    assert not _validator(doc, {"$ref": f"#/components/schemas/{schema}"}).is_valid(record), why


_BY_FORMAT = {"a region code of 5 digits": "gb2260-region", "a credit code with an I": "gb32100-uscc",
              "an industry section that does not exist": "gb4754-industry", "an establishment date that is no day": "past-date"}


def sample_resident_policy() -> dict[str, Any]:
    return next(r for r in sample_records("policies.jsonl") if r["audience"] == "resident")


async def test_responses_match_their_documented_schemas(client: Client, doc: dict[str, Any]) -> None:
    policy, enterprise, resident = sample_policy(), sample_enterprise(), sample_resident()
    calls = [
        ("POST", "/api/v1/policies", "/api/v1/policies", policy),
        ("PUT", "/api/v1/policies/{id}", f"/api/v1/policies/{policy['id']}", {**policy, "summary": "改"}),
        ("GET", "/api/v1/policies/{id}", f"/api/v1/policies/{policy['id']}", None),
        ("GET", "/api/v1/policies", "/api/v1/policies", None),
        ("GET", "/api/v1/policies/{id}/versions", f"/api/v1/policies/{policy['id']}/versions", None),
        ("POST", "/api/v1/enterprises", "/api/v1/enterprises", enterprise),
        ("GET", "/api/v1/enterprises/{id}", f"/api/v1/enterprises/{enterprise['id']}", None),
        ("GET", "/api/v1/enterprises", "/api/v1/enterprises", None),
        ("POST", "/api/v1/residents", "/api/v1/residents", resident),
        ("PUT", "/api/v1/residents/{id}", f"/api/v1/residents/{resident['id']}", resident),
        ("GET", "/api/v1/residents/{id}", f"/api/v1/residents/{resident['id']}", None),
        ("GET", "/api/v1/residents", "/api/v1/residents", None),
        ("GET", "/api/v1/policies/{id}", "/api/v1/policies/nope", None),
        ("GET", "/api/v1/policies", "/api/v1/policies?limit=0", None),
        ("POST", "/api/v1/policies", "/api/v1/policies", {**policy, "title": ""}),
        ("DELETE", "/api/v1/residents/{id}", f"/api/v1/residents/{resident['id']}", None),
        ("GET", "/healthz", "/healthz", None),
        ("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", None),
    ]
    for method, template, url, body in calls:
        resp = await client.request(method, url, json=body, headers=AUTH)
        responses = doc["paths"][template][method.lower()]["responses"]
        assert str(resp.status) in responses, (method, url, resp.status)
        content = responses[str(resp.status)].get("content")
        if content is None:
            assert resp.status == 204
            continue
        _validator(doc, content["application/json"]["schema"]).validate(await resp.json())

    report_resp = await client.post(
        "/api/v1/import/residents",
        data=b'{"id": "r-1", "name": ""}\nnot json\n',
        headers={**AUTH, "Content-Type": "application/x-ndjson"},
    )
    schema = doc["paths"]["/api/v1/import/{kind}"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    _validator(doc, schema).validate(await report_resp.json())


async def test_an_over_long_request_line_is_a_documented_plain_text_400(client: Client, doc: dict[str, Any]) -> None:
    """aiohttp's parser refuses a request line over 8190 bytes itself (no handler or middleware runs) with a
    plain-text 400; every operation documents it (schemathesis, seed 5: a 9 KB query on PUT /residents/{id})."""
    resp = await client.put(f"/api/v1/residents/r-1?phone_source={'%C3%A9' * 1500}", json={"name": "x"}, headers=AUTH)
    assert resp.status == 400 and resp.content_type == "text/plain"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "text/plain" in op["responses"]["400"]["content"], (method, path)


def test_an_enterprise_path_holds_a_credit_code_length(doc: dict[str, Any]) -> None:
    """The enterprise path parameter is a credit code by length too: ids of other records (a policy's ``pf-1``)
    that schemathesis feeds into it are not schema-valid, so their 422 is no broken promise."""
    for path in ("/api/v1/enterprises/{id}",):
        for op in doc["paths"][path].values():
            [param] = [p for p in op["parameters"] if p["name"] == "id"]
            validator = jsonschema.Draft202012Validator(param["schema"])
            assert not validator.is_valid("pf-1") and not validator.is_valid("")
            assert validator.is_valid("91211100MA0XXXXXXX")  # the length; the check character is the format's
