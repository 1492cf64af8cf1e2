"""Who may do what: every route x every role (anonymous included) through the one mechanism of the
routes table, with 0 unauthorised successes; tokens, the bootstrap token, CSRF, headers, four eyes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import update

from policy_push.staff import Role, StaffDirectory
from policy_push.storage.staff_tables import StaffTokenRow
from policy_push.web.routes import ROUTES

from .conftest import AUTH, ROLES, VOUCHED, Client, StaffFixture, login, sample_policy

GUARDED = [r for r in ROUTES if r.needs is not None]


def _url(path: str) -> str:
    return (path.replace("{id}", "some-id").replace("{kind}", "policies").replace("{name}", "console.css")
            .replace("{decision}", "approve"))


def test_every_write_and_every_personal_route_needs_a_role() -> None:
    #: writes without a staff role: a recipient's feedback form (their delivery id identifies them), the
    #: login form, and provider pushes (WeChat's are signed; Aliyun's are matched to our deliveries); a shard's
    #: part of a match list and a profile's policies asked of its home shard take the service token, not a staff role (tests/policy_push/matching/test_shards.py)
    open_writes = {("POST", "/p/{policy_id}/feedback"), ("POST", "/staff/login"), ("POST", "/callbacks/wechat"),
                   ("POST", "/internal/shards/{name}/matches"), ("POST", "/internal/shards/{name}/profile-policies"),
                   ("POST", "/internal/shards/{name}/me-policies"),
                   ("POST", "/api/v1/me/codes"), ("POST", "/api/v1/me/sessions"),
                   *(("POST", f"/callbacks/{p}/{{secret}}/{what}") for p, what in
                     (("aliyun", "sms-report"), ("aliyun", "sms-up"), ("tencent", "sms-status"), ("tencent", "sms-reply")))}  # fmt: skip
    for route in ROUTES:
        if (route.method, route.path) in open_writes:
            continue
        if route.path == "/me" or route.path.startswith("/me/") or route.path.startswith("/p/"):
            continue  # the people's own pages: their cookie session or signed link (tests/policy_push/subscribers)
        if route.path.startswith("/api/v1/me"):
            assert route.subscriber and route.needs is None, f"{route.method} {route.path} needs a subscriber session"
            continue
        personal = any(p in route.path for p in ("/enterprises", "/residents", "/campaigns", "/review", "/audit", "/staff"))
        if route.method != "GET" or (personal and route.path != "/staff/login"):
            assert route.needs is not None, f"{route.method} {route.path} must need a role"
    public = {(r.method, r.path) for r in ROUTES if r.needs is None}
    assert ("GET", "/api/v1/policies") in public and ("GET", "/api/v1/policies/{id}") in public
    assert all(r.needs is Role.ADMIN for r in ROUTES if r.operation_id in ("get_enterprise", "get_resident"))
    assert all(r.needs is Role.APPROVER for r in ROUTES if "approve" in r.operation_id)


def test_the_matrix_covers_the_inbox_pages() -> None:
    """The pages for inbound messages and pending contacts are in the matrix below, at their roles (the
    decision at the API's role too: one rule for both)."""
    guarded = {(r.method, r.path): r.needs for r in GUARDED}
    assert guarded[("GET", "/staff/inbound")] is Role.VIEWER
    assert guarded[("GET", "/staff/contacts")] is Role.VIEWER
    assert guarded[("POST", "/staff/contacts/{id}/{decision}")] is Role.EDITOR
    assert guarded[("POST", "/api/v1/subscriber-links/{id}/{decision}")] is Role.EDITOR


async def test_role_matrix_has_no_unauthorised_success(client: Client, staff: StaffFixture) -> None:
    """Every guarded route x anonymous and each role: a role below the route's gets 401/403 (pages: a
    redirect to the login page), never a success; a role at or above it is never refused by the check."""
    unauthorised_successes: list[str] = []
    wrongly_refused: list[str] = []
    for route in GUARDED:
        for who in (None, *ROLES):
            headers = staff.headers(who) if who else {}
            resp = await client.request(route.method, _url(route.path), json={}, headers=headers, allow_redirects=False)
            allowed = who is not None and Role(who).allows(route.needs)
            label = f"{route.method} {route.path} as {who or 'anonymous'}: {resp.status}"
            if not allowed:
                redirect = resp.status == 303 and resp.headers.get("Location", "").startswith("/staff/login")
                if resp.status < 400 and not redirect:
                    unauthorised_successes.append(label)
                if resp.status not in (401, 403, 303):
                    unauthorised_successes.append(label + " (not a refusal)")
            elif resp.status in (401, 403) and "四眼" not in await resp.text():
                body = await resp.text()
                if "role" in body or "token" in body or "CSRF" in body:
                    wrongly_refused.append(label + " " + body[:120])
    assert unauthorised_successes == []
    assert wrongly_refused == []


@pytest.mark.parametrize("route", [r for r in ROUTES if r.subscriber], ids=lambda r: f"{r.method} {r.path}")
async def test_subscriber_routes_refuse_without_a_session(client: Client, route) -> None:
    url = route.path.replace("{id}", "1").replace("{decision}", "approve")
    for headers in ({}, AUTH):  # the staff API token is not a subscriber session
        resp = await client.request(route.method, url, json={}, headers=headers)
        assert resp.status == 401, (route.path, headers)


async def test_missing_or_malformed_credentials(client: Client) -> None:
    resp = await client.post("/api/v1/policies", json=sample_policy())
    assert resp.status == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
    assert (await resp.json())["errors"][0]["loc"] == ["header", "Authorization"]
    for header in ("Basic dGVzdC10b2tlbg==", "Bearer", "test-token", "Bearer "):
        assert (await client.post("/api/v1/policies", json=sample_policy(), headers={"Authorization": header})).status == 401
    wrong = await client.post("/api/v1/policies", json=sample_policy(), headers={"Authorization": "Bearer nope"})
    assert wrong.status == 403 and (await wrong.json())["errors"][0]["msg"] == "the bearer token is not valid"
    page = await client.get("/staff/campaigns", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/staff/login?next=/staff/campaigns"
    # a token in the URL is no credential (it would land in access logs and Referer headers)
    assert (await client.get("/staff/campaigns?token=test-token", allow_redirects=False)).status == 303
    assert (await client.get("/api/v1/enterprises?token=test-token")).status == 401
    # nor is a self-declared name
    resp = await client.post("/api/v1/policies", json=sample_policy(), headers={"X-Staff-Member": "王科员"})
    assert resp.status == 401


async def test_bootstrap_token_works_only_until_an_admin_exists(client: Client, session_factory: Any) -> None:
    record = sample_policy()
    assert (await client.post("/api/v1/policies", json=record, headers=AUTH)).status == 201
    async with session_factory() as session, session.begin():
        await StaffDirectory(session).add("首位管理员", Role.ADMIN, actor="bootstrap", password="a long admin password")
    resp = await client.put(f"/api/v1/policies/{record['id']}", json=record, headers=AUTH)
    assert resp.status == 403 and "bootstraps the first admin" in (await resp.json())["errors"][0]["msg"]


async def test_no_bootstrap_token_configured_says_what_to_set(make_client) -> None:
    client = await make_client(api_token=None)
    resp = await client.post("/api/v1/policies", json=sample_policy(), headers=AUTH)
    assert resp.status == 403 and "POLICY_PUSH_API_TOKEN" in (await resp.json())["errors"][0]["msg"]
    assert (await client.get("/api/v1/policies")).status == 200


async def test_tokens_expire_are_revoked_and_never_exceed_their_account(
    client: Client, staff: StaffFixture, session_factory: Any
) -> None:
    assert (await client.get("/api/v1/enterprises", headers=staff.headers("viewer"))).status == 200
    async with session_factory() as session, session.begin():
        directory = StaffDirectory(session)
        _, scoped = await directory.create_token("admin", client="reader", role=Role.VIEWER, days=30, actor="test")
        with pytest.raises(Exception, match="more than its account"):
            await directory.create_token("viewer", client="x", role=Role.ADMIN, days=30, actor="test")
        await directory.revoke_token(staff.tokens["viewer"].split("_")[1], actor="test")
        await session.execute(update(StaffTokenRow).where(StaffTokenRow.id == staff.tokens["editor"].split("_")[1])
                              .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))  # fmt: skip
        stored = (await directory.tokens())[0]
    assert len(stored.secret_sha256) == 64 and stored.secret_sha256 not in staff.tokens["viewer"]  # hashed at rest
    assert (await client.get("/api/v1/enterprises", headers=staff.headers("viewer"))).status == 403  # revoked
    assert (await client.get("/api/v1/enterprises", headers=staff.headers("editor"))).status == 403  # expired
    reader = {"Authorization": f"Bearer {scoped}"}
    assert (await client.get("/api/v1/enterprises", headers=reader)).status == 200
    assert (await client.post("/api/v1/policies", json=sample_policy(), headers=reader)).status == 403  # scope: viewer


async def test_login_lockout_csrf_and_headers(browser_client: Client, staff: StaffFixture) -> None:
    client = browser_client
    page = await client.get("/staff/login")
    for name in ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"):
        assert name in page.headers
    assert "'unsafe-inline'" not in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"] and page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    # a login form without its CSRF token is refused
    resp = await client.post("/staff/login", data={"name": "viewer", "password": "correct horse battery"})
    assert resp.status == 403
    csrf = await login(client, "approver")
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["pp_staff"]
    assert cookie.value and "approver" not in cookie.value  # encrypted
    dash = await client.get("/staff")
    assert dash.status == 200 and dash.headers["Cache-Control"] == "no-store" and "approver" in await dash.text()
    # a form without the session's token is refused, with it accepted
    assert (await client.post("/staff/logout", data={}, allow_redirects=False)).status == 403
    out = await client.post("/staff/logout", data={"csrf": csrf}, allow_redirects=False)
    assert out.status == 303 and (await client.get("/staff", allow_redirects=False)).status == 303


async def test_wrong_passwords_lock_the_account(browser_client: Client, staff: StaffFixture) -> None:
    from .conftest import csrf_of

    client = browser_client
    csrf = csrf_of(await (await client.get("/staff/login")).text())
    statuses = []
    for _ in range(5):
        resp = await client.post("/staff/login", data={"csrf": csrf, "name": "editor", "password": "wrong password!"})
        statuses.append(resp.status)
    assert statuses == [401] * 5 and "锁定" in await resp.text()
    # locked: even the right password is refused now
    resp = await client.post("/staff/login", data={"csrf": csrf, "name": "editor", "password": "correct horse battery"})
    assert resp.status == 401 and "锁定" in await resp.text()


async def test_login_attempts_are_rate_limited(make_client, staff: StaffFixture) -> None:
    from .conftest import csrf_of

    client = await make_client(staff_cookie_secure=False, staff_login_per_minute=3)
    csrf = csrf_of(await (await client.get("/staff/login")).text())
    statuses = [(await client.post("/staff/login", data={"csrf": csrf, "name": "nobody", "password": "x" * 12})).status
                for _ in range(4)]  # fmt: skip
    assert statuses == [401, 401, 401, 429]


async def test_four_eyes_compares_accounts(client: Client, staff: StaffFixture) -> None:
    from tests.factories import enterprise_doc, policy_doc

    for d in (enterprise_doc(channels=["sms"]), enterprise_doc(channels=["sms"])):
        assert (await client.post("/api/v1/enterprises", json=d, headers=staff.headers("admin"), params=VOUCHED)).status == 201
    policy = policy_doc()
    assert (await client.post("/api/v1/policies", json=policy, headers=staff.headers("approver2"))).status == 201
    created = await client.post("/api/v1/campaigns", json={"policy_id": policy["id"]}, headers=staff.headers("approver2"))
    cid = (await created.json())["id"]
    own = await client.post(f"/api/v1/campaigns/{cid}/approve", headers=staff.headers("approver2"))
    assert own.status == 403 and "another staff member" in (await own.json())["errors"][0]["msg"]
    detail = await (await client.get(f"/api/v1/campaigns/{cid}", headers=staff.headers("viewer"))).json()
    stale = "0" * 64
    assert (await client.post(f"/api/v1/campaigns/{cid}/approve?sha256={stale}", headers=staff.headers("approver"))).status == 409
    ok = await client.post(f"/api/v1/campaigns/{cid}/approve?sha256={detail['list_sha256']}", headers=staff.headers("approver"))
    assert ok.status == 200 and (await ok.json())["approved_by"] == staff.ids["approver"]


async def test_disabling_an_account_ends_its_session_and_token_use_is_audited(
    browser_client: Client, staff: StaffFixture, session_factory: Any
) -> None:
    from policy_push.storage import AuditLog

    await login(browser_client, "editor")
    assert (await browser_client.get("/staff/campaigns", allow_redirects=False)).status == 200
    assert (await browser_client.get("/api/v1/enterprises", headers=staff.headers("viewer"))).status == 200
    async with session_factory() as session, session.begin():
        await StaffDirectory(session).disable("editor", actor="test")
    assert (await browser_client.get("/staff/campaigns", allow_redirects=False)).status == 303  # back to the login
    async with session_factory() as session:
        actions = [e.action for e in await AuditLog(session).list(limit=200)]
    assert "token.use" in actions and "login" in actions and "staff.disable" in actions
