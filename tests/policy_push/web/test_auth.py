"""The bearer token guards every write and every read of personal data; policy reads are public."""

from __future__ import annotations

import pytest

from policy_push.web.routes import ROUTES

from .conftest import AUTH, Client, sample_policy

GUARDED = [r for r in ROUTES if r.auth]
#: writes that deliberately take no bearer header: a recipient's feedback form (the delivery id of
#: their link identifies them) and the staff page's approve form (the token travels in the form
#: body and the view checks it; tests/policy_push/web/test_pages.py)
TOKENLESS_WRITES = {("POST", "/p/{policy_id}/feedback"), ("POST", "/staff/campaigns/{id}/approve")}
#: provider pushes cannot carry our token: WeChat's are signed, Aliyun's and Tencent's carry the callback
#: secret in their path (the views check both: tests/policy_push/sending/test_callback_auth.py)
TOKENLESS_WRITES |= {
    ("POST", "/callbacks/wechat"),
    *(("POST", f"/callbacks/{p}/{{secret}}/{what}") for p, what in
      (("aliyun", "sms-report"), ("aliyun", "sms-up"), ("tencent", "sms-status"), ("tencent", "sms-reply"))),
}


#: a person signs in with an SMS code: asking for one and proving it need no token yet (rate limited,
#: tests/policy_push/subscribers/test_sign_in.py); every other /api/v1/me route needs a subscriber session
TOKENLESS_WRITES |= {("POST", "/api/v1/me/codes"), ("POST", "/api/v1/me/sessions")}
SUBSCRIBER = [r for r in ROUTES if r.subscriber]


def _url(path: str) -> str:
    return path.replace("{id}", "some-id").replace("{kind}", "policies").replace("{decision}", "approve")


def test_every_write_and_every_profile_route_is_guarded() -> None:
    for route in ROUTES:
        if (route.method, route.path) in TOKENLESS_WRITES:
            continue
        if route.path == "/me" or route.path.startswith("/me/"):
            continue  # the pages of tests/policy_push/subscribers/test_pages.py: a cookie session and a CSRF token
        if route.path.startswith("/api/v1/me"):
            assert route.subscriber and not route.auth, f"{route.method} {route.path} must need a subscriber session"
            continue
        if route.method != "GET" or "/enterprises" in route.path or "/residents" in route.path:
            assert route.auth, f"{route.method} {route.path} must need the token"
    public = {(r.method, r.path) for r in ROUTES if not r.auth}
    assert ("GET", "/api/v1/policies") in public
    assert ("GET", "/api/v1/policies/{id}") in public


@pytest.mark.parametrize("route", GUARDED, ids=lambda r: f"{r.method} {r.path}")
async def test_missing_token_is_401_with_challenge(client: Client, route) -> None:
    resp = await client.request(route.method, _url(route.path), json={})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    error = (await resp.json())["errors"][0]
    assert error["loc"] == ["header", "Authorization"]


@pytest.mark.parametrize("route", GUARDED, ids=lambda r: f"{r.method} {r.path}")
async def test_wrong_token_is_403(client: Client, route) -> None:
    resp = await client.request(route.method, _url(route.path), json={}, headers={"Authorization": "Bearer nope"})
    assert resp.status == 403
    assert (await resp.json())["errors"][0]["msg"] == "the bearer token is not valid"


@pytest.mark.parametrize("route", SUBSCRIBER, ids=lambda r: f"{r.method} {r.path}")
async def test_subscriber_routes_refuse_without_a_session(client: Client, route) -> None:
    url = route.path.replace("{id}", "1").replace("{decision}", "approve")
    for headers in ({}, AUTH):  # the staff API token is not a subscriber session
        resp = await client.request(route.method, url, json={}, headers=headers)
        assert resp.status == 401, (route.path, headers)


@pytest.mark.parametrize("header", ["Basic dGVzdC10b2tlbg==", "Bearer", "test-token", "Bearer "])
async def test_malformed_authorization_is_401(client: Client, header: str) -> None:
    resp = await client.post("/api/v1/policies", json=sample_policy(), headers={"Authorization": header})
    assert resp.status == 401


async def test_no_token_configured_refuses_writes_and_says_what_to_set(make_client) -> None:
    client = await make_client(api_token=None)
    resp = await client.post("/api/v1/policies", json=sample_policy(), headers=AUTH)
    assert resp.status == 403
    assert "POLICY_PUSH_API_TOKEN" in (await resp.json())["errors"][0]["msg"]
    assert (await client.get("/api/v1/enterprises", headers=AUTH)).status == 403
    assert (await client.get("/api/v1/policies")).status == 200


async def test_right_token_passes_and_policy_reads_need_none(client: Client) -> None:
    record = sample_policy()
    assert (await client.post("/api/v1/policies", json=record, headers=AUTH)).status == 201
    assert (await client.get(f"/api/v1/policies/{record['id']}")).status == 200
    assert (await client.get("/api/v1/policies")).status == 200
    assert (await client.get(f"/api/v1/policies/{record['id']}/versions")).status == 200
