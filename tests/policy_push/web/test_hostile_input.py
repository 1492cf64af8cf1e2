"""Issue 10's inputs that gave 500s or hung: each answers 4xx with the JSON error shape now.

Header bytes that are not UTF-8 cannot be sent with aiohttp's client (it encodes str headers), so
those requests go over a raw socket to the test server: a real HTTP exchange, as an attacker sends it.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from .conftest import AUTH, Client, sample_policy

pytestmark = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)


async def _raw(client: Client, request: bytes, *, read_timeout: float = 10.0) -> tuple[int, bytes]:
    """Send ``request`` as bytes to the test server; (status, body) of the answer."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), read_timeout)
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await asyncio.wait_for(reader.readexactly(length), read_timeout) if length else b""
        return status, body
    finally:
        writer.close()


def _error_shape(body: bytes) -> dict[str, Any]:
    doc = json.loads(body)
    assert isinstance(doc["errors"], list) and doc["errors"] and "msg" in doc["errors"][0]
    return doc  # type: ignore[no-any-return]


async def test_multipart_without_boundary_is_400_before_and_after_auth(client: Client) -> None:
    await client.put("/api/v1/policies/p1", json=sample_policy(id="p1"), headers=AUTH)
    # the console's approve form needs an approver (401 before the body is read); with one, the broken body is a 400
    for path, auth in (("/p/p1/feedback", {}), ("/staff/campaigns/c1/approve", AUTH)):
        r = await client.post(path, data=b"--x\r\n", headers={"Content-Type": "multipart/form-data", **auth})
        assert r.status == 400, (path, r.status, await r.text())
        _error_shape(await r.read())


async def test_a_form_in_another_content_type_is_415(client: Client) -> None:
    r = await client.post("/p/p1/feedback", data=b"{}", headers={"Content-Type": "application/json"})
    assert r.status == 415
    _error_shape(await r.read())


async def test_deeply_nested_json_is_422(client: Client) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    r = await client.post("/api/v1/policies", data=deep, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status in (413, 422), r.status
    _error_shape(await r.read())


@pytest.mark.parametrize("title", ['"\\ud800"', '"a\\udfffb"'])
async def test_lone_surrogate_in_json_is_422(client: Client, title: str) -> None:
    doc = json.dumps(sample_policy(id="s1")).replace('"title": ', '"title": ' + title + ', "x_title": ', 1)
    r = await client.put("/api/v1/policies/s1", data=doc.encode(), headers={**AUTH, "Content-Type": "application/json"})
    assert r.status == 422, await r.text()
    assert "Unicode" in _error_shape(await r.read())["errors"][0]["msg"]


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" + "0" * 5000])
async def test_non_finite_and_huge_numbers_are_422(client: Client, number: str) -> None:
    doc = json.dumps(sample_policy(id="n1")).replace('"benefit_max_yuan": ', '"benefit_max_yuan": ' + number + ', "x": ', 1)
    if '"benefit_max_yuan"' not in doc:
        doc = doc[:-1] + ', "benefit_max_yuan": ' + number + "}"
    r = await client.put("/api/v1/policies/n1", data=doc.encode(), headers={**AUTH, "Content-Type": "application/json"})
    assert r.status == 422, await r.text()
    got = await client.get("/api/v1/policies/n1")
    assert got.status == 404  # nothing stored


@pytest.mark.parametrize("header", [b"X-Staff-Member: \xff\xfe", b"X-Anything: a\xffb", b"Authorization: Bearer \xff\xfe"])
async def test_header_bytes_that_are_not_utf8_are_400(client: Client, header: bytes) -> None:
    body = json.dumps(sample_policy(id="h1")).encode()
    request = (
        b"PUT /api/v1/policies/h1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\n" + header + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )
    status, answer = await _raw(client, request)
    assert status == 400, answer
    _error_shape(answer)


async def test_percent_encoded_surrogate_in_the_path_is_not_a_500(client: Client) -> None:
    status, answer = await _raw(client, b"GET /p/%ED%A0%80 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status in (400, 404), answer


async def test_a_stalled_body_gets_408_in_time(make_client: Any) -> None:
    client = await make_client(request_body_timeout_s=0.5)
    request = (
        b"PUT /api/v1/policies/z1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id\": "
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, answer = await _raw(client, request, read_timeout=5.0)
    assert status == 408 and loop.time() - started < 4.0
    _error_shape(answer)


async def test_a_stalled_body_to_a_provider_callback_gets_408_too(make_client: Any) -> None:
    from policy_push.sending.providers import callback_secret
    from policy_push.web.keys import settings_key

    client = await make_client(request_body_timeout_s=0.5)
    secret = callback_secret(client.app[settings_key]).encode()
    request = (
        b"POST /callbacks/aliyun/" + secret + b"/sms-report HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{\"biz_id\": "
    )
    status, _ = await _raw(client, request, read_timeout=5.0)
    assert status == 408


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'[{"phone_number": "", "biz_id": ""}]',
                                  b'[{"phone_number": "13800000000", "biz_id": {"x": 1}, "out_id": {}}]'])
async def test_unusable_aliyun_reports_are_400_not_500(client: Client, body: bytes) -> None:
    from policy_push.sending.providers import callback_secret
    from policy_push.web.keys import settings_key

    url = f"/callbacks/aliyun/{callback_secret(client.app[settings_key])}/sms-report"
    r = await client.post(url, data=body, headers={"Content-Type": "application/json"})
    assert r.status == 400, await r.text()


@pytest.mark.parametrize("created", ["99999999999999999999", "4102444801"])
async def test_a_signed_wechat_event_with_an_impossible_time_is_400(client: Client, created: str) -> None:
    from channels.signing import wechat_callback_signature
    from policy_push.sending.providers import wechat_callback_token
    from policy_push.web.keys import settings_key

    token = wechat_callback_token(client.app[settings_key])
    ts, nonce = str(int(time.time())), "n1"  # inside the callback window: only CreateTime is impossible
    sig = wechat_callback_signature(token, ts, nonce)
    body = ("<xml><ToUserName>a</ToUserName><FromUserName>o1</FromUserName><CreateTime>" + created + "</CreateTime>"
            "<MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event><MsgID>1</MsgID><Status>success</Status></xml>")
    r = await client.post(f"/callbacks/wechat?signature={sig}&timestamp={ts}&nonce={nonce}", data=body.encode(),
                          headers={"Content-Type": "text/xml"})
    assert r.status == 400, await r.text()
