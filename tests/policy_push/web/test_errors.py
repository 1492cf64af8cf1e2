"""Every error is JSON with a status that says what happened; never a bare 500 or HTML page."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
from typing import Any

import pytest
from aiohttp import web

from policy_push.config import Settings
from policy_push.storage import create_engine
from policy_push.web import create_app

from .conftest import AUTH, Client, sample_enterprise, sample_policy, snapshot


async def test_unknown_route_is_json_404(client: Client) -> None:
    resp = await client.get("/api/v1/nothing-here")
    assert resp.status == 404
    assert resp.content_type == "application/json"
    assert (await resp.json())["errors"][0]["loc"] == ["path"]


async def test_wrong_method_is_json_405_with_allow(client: Client) -> None:
    resp = await client.delete("/api/v1/policies", headers=AUTH)
    assert resp.status == 405
    assert resp.content_type == "application/json"
    assert "GET" in resp.headers["Allow"] and "POST" in resp.headers["Allow"]
    assert "DELETE" in (await resp.json())["errors"][0]["msg"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/api/v1/policies/suggest", "POST"),
        ("PUT", "/api/v1/policies/suggest", "POST"),
        ("DELETE", "/api/v1/policies/suggest", "POST"),
        ("DELETE", "/staff/policies/new", "GET,POST"),
        ("PUT", "/staff/policies/import", "GET,POST"),
    ],
)
async def test_a_literal_route_beside_a_parameter_route_allows_only_its_own_methods(
    client: Client, method: str, path: str, allow: str
) -> None:
    """``/policies/suggest`` is also a ``/policies/{id}``: the parameter route must neither answer for it
    (``GET`` reached get_policy, a 404) nor lend it its methods in the 405's ``Allow``."""
    resp = await client.request(method, path, headers=AUTH)
    assert resp.status == 405, await resp.text()
    assert sorted(resp.headers["Allow"].replace(" ", "").split(",")) == allow.split(",")


async def test_every_parameter_route_is_kept_off_its_literal_siblings_and_policy_ids_avoid_them() -> None:
    from policy_push.domain import RESERVED_POLICY_IDS
    from policy_push.web.routes import ROUTES, shadowed_words

    words = {w for route in ROUTES for ws in shadowed_words(route.path).values() for w in ws}
    assert words == {"suggest", "new", "import"}
    # a policy under a route word could never be read at its own address
    assert words <= RESERVED_POLICY_IDS


async def test_a_policy_id_that_is_a_route_word_is_refused(client: Client) -> None:
    resp = await client.post("/api/v1/policies", json=sample_policy(id="suggest"), headers=AUTH)
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["errors"][0]["loc"] == ["id"]


async def test_malformed_json_is_422_with_line_and_column(client: Client, engine) -> None:
    before = await snapshot(engine)
    resp = await client.post(
        "/api/v1/policies", data=b'{"id": "x",\n  "title": }', headers={**AUTH, "Content-Type": "application/json"}
    )
    assert resp.status == 422
    error = (await resp.json())["errors"][0]
    assert error["loc"] == ["body"]
    assert (error["line"], error["column"]) == (2, 12)
    assert "line 2, column 12" in error["msg"]
    assert await snapshot(engine) == before


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "required"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"id": NaN}', "NaN"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"[1, 2]", "expected a JSON object"),
    ],
    ids=["empty", "not-utf8", "nan", "100k-nested", "array"],
)
async def test_unreadable_bodies_are_422(client: Client, body: bytes, words: str) -> None:
    resp = await client.post("/api/v1/policies", data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 422
    assert words in (await resp.json())["errors"][0]["msg"]


async def test_wrong_content_type_is_415(client: Client) -> None:
    resp = await client.post("/api/v1/policies", data="<policy/>", headers={**AUTH, "Content-Type": "application/xml"})
    assert resp.status == 415
    assert (await resp.json())["errors"][0]["loc"] == ["header", "Content-Type"]


async def test_body_over_the_limit_is_json_413(make_client, engine) -> None:
    client = await make_client(max_body_bytes=4096)
    before = await snapshot(engine)
    record = sample_policy(text="政" * 5000)
    resp = await client.post("/api/v1/policies", json=record, headers=AUTH)
    assert resp.status == 413
    error = (await resp.json())["errors"][0]
    assert error["loc"] == ["body"] and "4,096" in error["msg"]
    assert await snapshot(engine) == before


async def test_chunked_body_over_the_limit_is_json_413(make_client) -> None:
    client = await make_client(max_body_bytes=4096)

    async def chunks():
        blob = json.dumps(sample_policy(text="政" * 5000), ensure_ascii=False).encode()
        for i in range(0, len(blob), 1000):
            yield blob[i : i + 1000]

    resp = await client.post("/api/v1/policies", data=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 413
    assert resp.content_type == "application/json"


async def test_validation_errors_name_record_field_and_reason(client: Client) -> None:
    record = sample_enterprise(region="211105")
    record["contact"] = {**record["contact"], "phone": "1390427123"}
    resp = await client.post("/api/v1/enterprises", json=record, headers=AUTH)
    assert resp.status == 422
    errors = (await resp.json())["errors"]
    fields = {e["field"]: e for e in errors}
    assert set(fields) == {"region", "contact.phone"}
    assert fields["contact.phone"]["loc"] == ["contact", "phone"]
    assert all(e["record"] == record["id"] for e in errors)
    assert "211105" in fields["region"]["msg"]


async def test_unexpected_error_is_logged_with_request_id_and_json_500(
    settings, engine, aiohttp_client, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "13800000000"

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError(f"driver said: phone {secret}")

    app = create_app(settings, engine=engine)
    app.router.add_get("/boom", boom)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR, logger="policy_push.web"):
        resp = await client.get("/boom")
    assert resp.status == 500
    body = await resp.json()
    request_id = body["errors"][0]["request_id"]
    assert body == {"errors": [{"loc": [], "msg": "internal error", "request_id": request_id}]}
    assert resp.headers["X-Request-Id"] == request_id
    assert request_id in caplog.text and "RuntimeError" in caplog.text
    assert secret not in caplog.text  # exception messages may quote personal data: never logged


async def test_request_id_is_echoed(client: Client) -> None:
    resp = await client.get("/api/v1/policies", headers={"X-Request-Id": "abcdef123456"})
    assert resp.headers["X-Request-Id"] == "abcdef123456"
    resp = await client.get("/api/v1/policies", headers={"X-Request-Id": "bad id with spaces"})
    assert resp.headers["X-Request-Id"] != "bad id with spaces"


async def test_expect_continue_is_refused_before_the_upload(client: Client, engine) -> None:
    before = await snapshot(engine)
    big = io.BytesIO(b" " * (3 * 1024 * 1024))
    resp = await client.post(
        "/api/v1/policies", data=big, expect100=True, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert resp.status == 413
    assert (await resp.json())["errors"][0]["loc"] == ["body"]
    assert big.tell() == 0  # not one byte was sent
    resp = await client.post("/api/v1/policies", data=b"{}", expect100=True, headers={"Content-Type": "application/json"})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    resp = await client.post("/api/v1/policies", json=sample_policy(), expect100=True, headers=AUTH)
    assert resp.status == 201
    assert len((await snapshot(engine))["policies"]) == len(before["policies"]) + 1


def _nested_criteria(depth: int) -> str:
    """A criteria tree ``depth`` levels deep, as text (json.dumps would itself recurse)."""
    leaf = '{"field": "employees", "op": "gte", "value": 1}'
    opens = "".join(f'{{"{"all" if i % 2 else "any"}": [' for i in range(depth))
    return opens + leaf + "]}" * depth


@pytest.mark.parametrize("depth", [33, 500, 990, 5000])
async def test_deep_structures_anywhere_are_422_not_a_crash(client: Client, depth: int) -> None:
    head = json.dumps({k: v for k, v in sample_policy().items() if k not in ("criteria", "categories")})[:-1]
    bodies = {
        "criteria": head + ', "criteria": ' + _nested_criteria(depth) + "}",
        "categories": head + ', "categories": ' + "[" * depth + "]" * depth + "}",
        "criteria-list": head + ', "criteria": {"all": ' + "[" * depth + "]" * depth + "}}",
    }
    for what, body in bodies.items():
        resp = await client.post("/api/v1/policies", data=body, headers={**AUTH, "Content-Type": "application/json"})
        assert resp.status == 422, (what, depth, await resp.text())


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
async def test_a_write_meeting_a_database_locked_too_long_is_503_with_retry_after_and_one_log_line(
    aiohttp_client: Any, settings: Settings, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process holds SQLite's write lock past the busy timeout: the request was sound, so the answer is
    503 with Retry-After (a provider retries its callback, a person their form), one warning line, no traceback;
    once the lock is gone the same request succeeds."""
    engine = create_engine(db_url, busy_timeout_ms=100)
    client = await aiohttp_client(create_app(settings, engine=engine))
    record = sample_enterprise()
    holder = sqlite3.connect(db_url.split("///", 1)[1], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with caplog.at_level(logging.WARNING, logger="policy_push.web"):
            resp = await client.put(f"/api/v1/enterprises/{record['id']}", json=record, headers=AUTH)
    finally:
        holder.rollback()
        holder.close()
    try:
        assert resp.status == 503, await resp.text()
        assert int(resp.headers["Retry-After"]) > 0
        assert "busy" in (await resp.json())["errors"][0]["msg"]
        busy = [r for r in caplog.records if "database busy" in r.getMessage()]
        assert len(busy) == 1 and "\n" not in busy[0].getMessage() and busy[0].exc_info is None
        assert "/api/v1/enterprises/{id}" in busy[0].getMessage() and record["id"] not in busy[0].getMessage()
        assert not any(r.levelno >= logging.ERROR for r in caplog.records)
        again = await client.put(f"/api/v1/enterprises/{record['id']}", json=record, headers=AUTH)
        assert again.status == 201, await again.text()
    finally:
        await engine.dispose()
