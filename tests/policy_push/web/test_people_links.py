"""People's links (issue 10): SMS codes and signed, expiring tokens; feedback by POST with a CSRF token and
an Origin check; 退订 needs a confirming second post; look-ups are rate-limited; the unsigned delivery id
opens nothing any more."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import logging
import re
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.storage.campaign_tables import DeliveryRow, FeedbackRow
from policy_push.web.keys import link_signer_key
from policy_push.web.views.feedback import CSRF_COOKIE
from tests.policy_push.campaigns.support import add_delivery

from .conftest import AUTH, TOKEN, Client, sample_enterprise, sample_policy

pytestmark = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
ALICE = {**AUTH, "X-Staff-Member": "alice"}


@pytest.fixture
async def sent(client: Client, session_factory: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """A policy, an enterprise that qualifies, its draft campaign and an SMS delivery to it."""
    ent = sample_enterprise(contact={"phone": "13800000001"}, channels=["sms"], consent=True)
    assert (await client.post("/api/v1/enterprises", json=ent, headers=AUTH)).status == 201
    policy = sample_policy(id="pl-1", criteria=None, audience="enterprise")
    assert (await client.put("/api/v1/policies/pl-1", json=policy, headers=ALICE)).status in (200, 201)
    resp = await client.post("/api/v1/campaigns", json={"policy_id": "pl-1"}, headers=ALICE)
    assert resp.status == 201, await resp.text()
    async with session_factory() as session, session.begin():
        delivery = await add_delivery(session, campaign_id=(await resp.json())["id"], policy_id="pl-1",
                                      profile_id=ent["id"], channel="sms")
        code = await session.scalar(select(DeliveryRow.link_code).where(DeliveryRow.id == delivery))
    return {"policy": policy, "enterprise": ent, "delivery": delivery, "code": code}


def _form(page: str) -> dict[str, str]:
    return {name: htmllib.unescape(value) for name, value in re.findall(r'name="(t|csrf)" value="([^"]*)"', page)}


async def _open(client: Client, code: str) -> tuple[str, dict[str, str]]:
    client.session.cookie_jar.clear()  # each request below names its cookie itself
    resp = await client.get(f"/s/{code}")
    assert resp.status == 200, await resp.text()
    assert resp.headers["Referrer-Policy"] == "no-referrer" and resp.headers["Cache-Control"] == "no-store"
    page = await resp.text()
    assert resp.cookies[CSRF_COOKIE]["samesite"] == "Strict" and resp.cookies[CSRF_COOKIE]["httponly"]
    client.session.cookie_jar.clear()
    return page, _form(page)


async def _post(client: Client, form: dict[str, str], **extra: str) -> Any:
    client.session.cookie_jar.clear()
    return await client.post("/p/pl-1/feedback", data={**form, **extra}, headers={"Cookie": f"{CSRF_COOKIE}={form['csrf']}"})


async def test_codes_are_short_and_open_the_page_without_the_delivery_id(client: Client, sent: dict[str, Any]) -> None:
    assert len(sent["code"]) == 8
    page, form = await _open(client, sent["code"])
    assert "为什么推送给您" in page and page.count('name="kind"') == 4
    assert sent["delivery"] not in page and sent["delivery"].replace("-", "") not in page
    assert sent["enterprise"]["name"] not in page and sent["enterprise"]["contact"]["phone"] not in page
    assert set(form) == {"t", "csrf"}
    # the unsigned delivery id opens nothing, as a link or as a code
    for url in (f"/p/pl-1?d={sent['delivery']}", f"/p/pl-1?t={sent['delivery']}"):
        assert "为什么推送给您" not in await (await client.get(url)).text()
    assert (await client.get(f"/s/{sent['delivery'].replace('-', '')}")).status == 404
    assert (await client.get("/s/zzzzzzzz")).status == 404


async def test_signed_tokens_open_the_page_until_they_expire_or_are_altered(client: Client, sent: dict[str, Any]) -> None:
    signer = client.app[link_signer_key]
    now = dt.datetime.now(dt.UTC)
    good = signer.sign(sent["code"], now=now)
    assert len(good) <= 40
    assert "为什么推送给您" in await (await client.get(f"/p/pl-1?t={good}")).text()
    altered = good[:-1] + ("A" if good[-1] != "A" else "B")
    expired = signer.sign(sent["code"], now=now, expires=now - dt.timedelta(seconds=1))
    for token in (altered, expired, good.replace(sent["code"], "aaaaaaaa")):
        page = await (await client.get(f"/p/pl-1?t={token}")).text()
        assert "为什么推送给您" not in page and "链接已失效" in page


async def test_feedback_needs_the_signed_token_and_the_csrf_cookie(
    client: Client, sent: dict[str, Any], session_factory: async_sessionmaker[AsyncSession]
) -> None:
    _, form = await _open(client, sent["code"])
    ok = await _post(client, form, kind="applied")
    assert ok.status == 200 and "已申报" in await ok.text()
    client.session.cookie_jar.clear()
    # without the cookie, with another cookie, from another site, with a forged token
    assert (await client.post("/p/pl-1/feedback", data={**form, "kind": "useful"},
                              headers={"Cookie": f"{CSRF_COOKIE}=x"})).status == 403
    assert (await client.post("/p/pl-1/feedback", data={**form, "kind": "useful", "csrf": ""})).status == 403
    cross = await client.post("/p/pl-1/feedback", data={**form, "kind": "useful"},
                              headers={"Cookie": f"{CSRF_COOKIE}={form['csrf']}", "Origin": "https://evil.example"})
    assert cross.status == 403
    referer = await client.post("/p/pl-1/feedback", data={**form, "kind": "useful"},
                                headers={"Cookie": f"{CSRF_COOKIE}={form['csrf']}", "Referer": "https://evil.example/x"})
    assert referer.status == 403
    forged = await _post(client, {**form, "t": sent["code"] + ".zzzzzz.AAAAAAAAAAAAAAAA"}, kind="useful")
    assert forged.status == 404
    assert (await _post(client, form, kind="spam")).status == 422
    same_site = await client.post("/p/pl-1/feedback", data={**form, "kind": "useful"},
                                  headers={"Cookie": f"{CSRF_COOKIE}={form['csrf']}",
                                           "Origin": f"http://{client.server.host}:{client.server.port}"})
    assert same_site.status == 200
    async with session_factory() as session:
        kinds = set((await session.scalars(select(FeedbackRow.kind))).all())
    assert kinds == {"applied", "useful"}


async def test_unsubscribe_asks_for_confirmation(client: Client, sent: dict[str, Any]) -> None:
    _, form = await _open(client, sent["code"])
    first = await _post(client, form, kind="unsubscribe")
    page = await first.text()
    assert first.status == 200 and 'name="confirm" value="yes"' in page and "您已退订" not in page
    page2, _ = await _open(client, sent["code"])
    assert "您已退订" not in page2  # nothing recorded by the first post
    done = await _post(client, form, kind="unsubscribe", confirm="yes")
    assert done.status == 200 and "已退订" in await done.text()
    nxt = await (await client.post("/api/v1/campaigns", json={"policy_id": "pl-1"}, headers=ALICE)).json()
    assert nxt["summary"]["skipped"].get("opted_out") == 1


async def test_look_ups_are_rate_limited(make_client: Any, sent: dict[str, Any]) -> None:
    client = await make_client(link_lookups_per_minute=3)
    statuses = [(await client.get("/s/zzzzzzz" + str(i))).status for i in range(5)]
    assert statuses[:3] == [404, 404, 404] and statuses[3:] == [429, 429]
    limited = await client.get("/s/zzzzzzz9")
    assert limited.headers["Retry-After"] == "60"
    body = await limited.json()
    assert "POLICY_PUSH_LINK_LOOKUPS_PER_MINUTE" in body["errors"][0]["msg"]


async def test_codes_expire(client: Client, sent: dict[str, Any], session_factory: async_sessionmaker[AsyncSession]) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=91)
    async with session_factory() as session, session.begin():
        delivery = await add_delivery(session, campaign_id=(await _campaign_id(session)), policy_id="pl-1",
                                      profile_id="other", channel="sms", code="OLDCODE2", created_at=old)
    assert delivery
    assert (await client.get("/s/OLDCODE2")).status == 404


async def _campaign_id(session: AsyncSession) -> str:
    return str(await session.scalar(select(DeliveryRow.campaign_id).limit(1)))


async def test_the_access_log_names_routes_never_codes_or_tokens(
    db_settings: Any, engine: Any, sent: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from policy_push.web import create_app
    from policy_push.web.access import AccessLogger

    app = create_app(db_settings.model_copy(update={"api_token": TOKEN}), engine=engine)
    server = TestServer(app)
    await server.start_server(access_log_class=AccessLogger)  # as ``serve`` runs it
    async with TestClient(server) as logged:
        token = logged.app[link_signer_key].sign(sent["code"], now=dt.datetime.now(dt.UTC))
        with caplog.at_level(logging.INFO, logger="policy_push.access"):
            assert (await logged.get(f"/s/{sent['code']}")).status == 200
            assert (await logged.get(f"/p/pl-1?t={token}")).status == 200
            assert (await logged.get("/no/such/path/secret123")).status == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "policy_push.access"]
    assert len(lines) == 3 and "GET /s/{code} 200" in lines[0] and "GET /p/{policy_id} 200" in lines[1], lines
    text = "\n".join(lines)
    assert sent["code"] not in text and token not in text and "secret123" not in text and "t=" not in text


async def test_opening_the_page_counts_in_the_funnel_once(
    client: Client, sent: dict[str, Any], session_factory: async_sessionmaker[AsyncSession]
) -> None:
    from policy_push.web.console.queries import campaign_funnel, district_funnel

    async def opened() -> tuple[Any, int]:
        async with session_factory() as session:
            at = await session.scalar(select(DeliveryRow.opened_at).where(DeliveryRow.id == sent["delivery"]))
            overall = dict(await campaign_funnel(session, policy_id="pl-1"))["打开链接"]
            by_district = sum(row[4] for row in await district_funnel(session, policy_id="pl-1"))
            assert by_district == overall  # the district table counts the same people
            return at, overall

    assert await opened() == (None, 0)
    await _open(client, sent["code"])
    first, count = await opened()
    assert first is not None and count == 1
    await _open(client, sent["code"])  # a second visit changes nothing
    assert await opened() == (first, 1)
