"""End to end over HTTP against the simulators, the code read from the SMS the simulator received:
register -> verify -> consent -> match -> staff approve -> deliver -> open the link -> feedback ->
change preferences -> download data -> delete. Then what the send side refuses: an unproven phone,
a category not chosen, consent withdrawn, a person's own weekly cap."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.simulators import SimulatorSet
from policy_push.sending import make_clock
from policy_push.sending.starting import start_due_campaigns
from policy_push.storage.campaign_tables import DeliveryRow
from policy_push.web.keys import cipher_key, settings_key
from tests.policy_push.sending.fixtures import make_dispatcher
from tests.policy_push.web.conftest import sample_records

from .conftest import Client, bearer, sign_in

ALICE = "13800138000"
#: the bootstrap token prepares (it acts as the account "bootstrap" while no admin account exists)
STAFF_A = {"Authorization": "Bearer test-token"}


async def _approver(session_factory: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    """A second officer's API token: four eyes compares accounts, so another account approves."""
    from policy_push.staff import Role, StaffDirectory

    async with session_factory() as session, session.begin():
        directory = StaffDirectory(session)
        await directory.add("李审批", Role.APPROVER, actor="test", password="a long test password")
        _, token = await directory.create_token("李审批", client="tests", role=None, days=1, actor="test")
    return {"Authorization": f"Bearer {token}"}
POLICY = {
    "id": "pj-test-veterans", "title": "盘锦市退役军人创业补贴", "issuer": "盘锦市退役军人事务局", "audience": "resident",
    "categories": ["就业创业"], "summary": "退役军人在盘锦创业可申请一次性补贴。", "text": "退役军人 创业 补贴 盘锦",
    "benefit_max_yuan": 5000, "url": "https://example.gov.cn/veterans",
    "criteria": {"all": [{"field": "tags", "op": "has_any", "value": ["退役军人"]}]},
}


def _resident(**changes: Any) -> dict[str, Any]:
    base = {k: v for k, v in sample_records("residents.jsonl", 1)[0].items() if k not in ("id", "contact", "consent")}
    return {**base, "tags": ["退役军人"], "channels": ["sms"], **changes}


def policy_sms(sims: SimulatorSet, phone: str) -> list[Any]:
    """The policy messages (whichever of the templates rendered them) the SMS simulators took for ``phone``."""
    return [r for r in (*sims.aliyun.records, *sims.tencent.records) if r.recipient.endswith(phone) and "title" in r.params]


async def _sms_to(sims: SimulatorSet, phone: str, *, n: int = 1, wait_s: float = 20.0) -> list[Any]:
    for _ in range(int(wait_s * 10)):
        got = policy_sms(sims, phone)
        if len(got) >= n:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"no policy SMS to {phone} within {wait_s} s")


async def _deliver(client: Client, session_factory: async_sessionmaker[AsyncSession]) -> int:
    """Send what is due now with a dispatcher of the app's settings (real clock, the simulators)."""
    app = client.app
    async with aiohttp.ClientSession() as http:
        d = make_dispatcher(app[settings_key], session_factory, app[cipher_key], http, clock=make_clock(app[settings_key]))
        try:
            await start_due_campaigns(session_factory, now=d.clock.now(), rules=d.rules)
            return await d.send_due()
        finally:
            await d.close()


async def _campaign(client: Client, policy_id: str) -> dict[str, Any]:
    resp = await client.post("/api/v1/campaigns", json={"policy_id": policy_id}, headers=STAFF_A)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_a_resident_from_sign_up_to_erasure(make_me_client, sims: SimulatorSet,
                                                  session_factory: async_sessionmaker[AsyncSession]) -> None:  # fmt: skip
    client: Client = await make_me_client()
    token = await sign_in(client, sims, ALICE)
    auth = bearer(token)
    assert (await client.put("/api/v1/me/resident", json=_resident(), headers=auth)).status == 200
    consent = await client.post("/api/v1/me/consent", json={"given": True, "text_version": "2026-11-v1", "channel": "app"},
                                headers=auth)  # fmt: skip
    assert consent.status == 201
    assert (await client.put(f"/api/v1/policies/{POLICY['id']}", json=POLICY, headers=STAFF_A)).status == 201
    detail = await _campaign(client, POLICY["id"])
    assert detail["summary"]["to_message"] == {"sms": 1}, detail["summary"]
    ok = await client.post(f"/api/v1/campaigns/{detail['id']}/approve?schedule=true", headers=await _approver(session_factory))
    assert ok.status == 200, await ok.text()
    assert await _deliver(client, session_factory) == 1
    [sms] = await _sms_to(sims, ALICE)
    assert "退役军人创业补贴" in sms.text
    # open the link, say it was useful
    code = sms.params["link"]
    landing = await client.get(f"/s/{code}")
    assert landing.status == 200
    html = await landing.text()
    form = {name: re.search(rf'name="{name}" value="([^"]+)"', html).group(1) for name in ("t", "csrf")}  # type: ignore[union-attr]
    fb = await client.post(f"/p/{POLICY['id']}/feedback", data={**form, "kind": "useful"})
    assert fb.status == 200, await fb.text()
    # and then 退订 from the same page: withdrawal by another channel than the one consent was given on
    off = await client.post(f"/p/{POLICY['id']}/feedback", data={**form, "kind": "unsubscribe", "confirm": "yes"})
    assert off.status == 200
    # change my mind: fewer messages, other categories
    prefs = await client.put("/api/v1/me/preferences", json={"weekly_max": 1, "categories": ["养老服务"]}, headers=auth)
    assert prefs.status == 200
    assert (await prefs.json())["weekly_max"] == 1
    again = await _campaign(client, POLICY["id"])
    assert again["summary"]["to_message_total"] == 0
    assert again["summary"]["skipped"] in ({"opted_out": 1}, {"already_notified": 1})
    # everything held about me
    export = await client.get("/api/v1/me/export", headers=auth)
    assert export.status == 200
    data = await export.json()
    assert data["account"]["phone"] == ALICE
    [mine] = data["profiles"]
    [delivery] = mine["deliveries"]
    assert delivery["policy_id"] == POLICY["id"] and delivery["status"] in ("sent", "delivered")
    delivery_id = delivery["id"]
    assert sorted(f["kind"] for f in mine["feedback"]) == ["unsubscribe", "useful"]
    assert [(o["channel"], o["source"]) for o in mine["opt_outs"]] == [("*", "feedback_link")]
    assert [c["action"] for c in data["consents"]] == ["give"]
    # erase: contact data and identifiers gone, delivery history kept without them
    erased = await client.delete("/api/v1/me", headers=auth)
    assert erased.status == 200
    assert (await client.get("/api/v1/me", headers=auth)).status == 401
    async with session_factory() as s:
        assert await s.scalar(select(func.count()).select_from(DeliveryRow).where(DeliveryRow.id == delivery_id)) == 1
    staff_view = await client.get(f"/api/v1/residents/{mine['profile_id']}", headers=STAFF_A)
    assert staff_view.status == 404
