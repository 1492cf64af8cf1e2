"""Binding WeChat through a signed, expiring link sent by SMS to the proven phone, the openid taken from
WeChat's web authorisation (the simulator's /sns/oauth2/access_token), then a message on WeChat."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import aiohttp
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.simulators import SimulatorSet
from policy_push.storage.subscriber_tables import SubscriberCodeRow
from policy_push.web.keys import subscribers_key

from .conftest import Client, bearer, sign_in
from .test_journey import ALICE, POLICY, STAFF_A, _campaign, _resident

OPENID = "oSimUserAlice000000000000001"
OTHER = "oSimUserBob00000000000000002"


async def _link(client: Client, sims: SimulatorSet, auth: dict[str, str]) -> str:
    assert (await client.post("/api/v1/me/wechat", headers=auth)).status == 202
    [sms] = [r for r in sims.aliyun.records if r.template == "SMS_900003"][-1:]
    assert sms.recipient.endswith(ALICE) and "https://s.pj.gov.cn/w/" in sms.text
    return sms.params["link"].removeprefix("w/")


async def _wechat_code(sims: SimulatorSet, openid: str) -> str:
    async with aiohttp.ClientSession() as http, http.post(sims.wechat.url + "/_sim/oauth-code", json={"openid": openid}) as resp:
        return str((await resp.json())["code"])


async def test_bind_wechat_by_link_then_get_messages_there(
    client: Client, sims: SimulatorSet, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    auth = bearer(await sign_in(client, sims, ALICE))
    assert (await client.put("/api/v1/me/resident", json=_resident(channels=["wechat"]), headers=auth)).status == 200
    assert (await client.post("/api/v1/me/consent", json={"given": True, "text_version": "v1"}, headers=auth)).status == 201
    token = await _link(client, sims, auth)
    hop = await client.get(f"/me/wechat/bind/{token}", allow_redirects=False)
    assert hop.status == 302
    to = urlsplit(hop.headers["Location"])
    q = parse_qs(to.query)
    assert to.path == "/connect/oauth2/authorize" and q["scope"] == ["snsapi_base"] and q["state"] == [token]
    done = await client.get(f"/me/wechat/callback?state={token}&code={await _wechat_code(sims, OPENID)}")
    assert done.status == 200 and "微信已绑定" in await done.text()
    profile = await (await client.get("/api/v1/me/profile", headers=auth)).json()
    assert profile["profile"]["contact"]["wechat_openid"] == OPENID
    # the link works once
    again = await client.get(f"/me/wechat/callback?state={token}&code={await _wechat_code(sims, OPENID)}")
    assert again.status == 403
    # a campaign now reaches her on WeChat
    assert (await client.put(f"/api/v1/policies/{POLICY['id']}", json=POLICY, headers=STAFF_A)).status == 201
    detail = await _campaign(client, POLICY["id"])
    assert detail["summary"]["to_message"] == {"wechat": 1}


async def test_forged_expired_and_taken_are_refused(client: Client, sims: SimulatorSet) -> None:
    auth = bearer(await sign_in(client, sims, ALICE))
    token = await _link(client, sims, auth)
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert (await client.get(f"/me/wechat/bind/{forged}", allow_redirects=False)).status == 403
    # well signed but never sent: refused too
    unsent = client.app[subscribers_key].wechat.new_code()
    assert (await client.get(f"/me/wechat/bind/{unsent}", allow_redirects=False)).status == 403
    assert (await client.get(f"/me/wechat/bind/{token}", allow_redirects=False)).status == 302
    # Bob binds his WeChat first; Alice cannot take the same openid
    bob = bearer(await sign_in(client, sims, "13900139000"))
    assert (await client.post("/api/v1/me/wechat", headers=bob)).status == 202
    [bob_sms] = [r for r in sims.aliyun.records if r.template == "SMS_900003" and r.recipient.endswith("13900139000")]
    bob_token = bob_sms.params["link"].removeprefix("w/")
    ok = await client.get(f"/me/wechat/callback?state={bob_token}&code={await _wechat_code(sims, OTHER)}")
    assert ok.status == 200
    taken = await client.get(f"/me/wechat/callback?state={token}&code={await _wechat_code(sims, OTHER)}")
    assert taken.status == 409
    # a code WeChat did not issue is refused by WeChat
    bad = await client.get(f"/me/wechat/callback?state={token}&code=not-a-real-code")
    assert bad.status == 403


async def test_expired_link_is_refused(
    client: Client, sims: SimulatorSet, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    auth = bearer(await sign_in(client, sims, ALICE))
    token = await _link(client, sims, auth)
    async with session_factory() as s, s.begin():
        await s.execute(update(SubscriberCodeRow.__table__).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert (await client.get(f"/me/wechat/bind/{token}", allow_redirects=False)).status == 403
