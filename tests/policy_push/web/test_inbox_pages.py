"""The console's pages for what staff could not see before: inbound messages (replies, opt-outs, follows)
and pending enterprise contacts, which an editor or above approves or refuses on the page."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from channels import Reply, classify_reply
from policy_push.sending.inbound import apply_replies
from policy_push.storage.subscriber_tables import SubscriberLinkRow
from policy_push.web.keys import cipher_key, session_factory_key, subscribers_key

from .conftest import Client, StaffFixture, csrf_of, login, sample_records

OWNER, ASKER, OTHER = "13800138000", "13900139000", "13700137000"
TYPED_ID = "211104197011187337"  # an ID number someone typed into a reply


async def seed_inbox(app: Any) -> dict[str, Any]:
    """Two SMS replies (one an opt-out, one with a phone and an ID number typed in) through the real inbound
    path, and two pending contacts of one enterprise through the subscribers' own service."""
    now = dt.datetime.now(dt.UTC)
    replies = [Reply("aliyun_sms", OTHER, text, classify_reply(text), now, provider_id=f"up-{i}")
               for i, text in enumerate(("TD", f"请回电{ASKER}，身份证{TYPED_ID}，问补贴进度"))]  # fmt: skip
    await apply_replies(app[session_factory_key], app[cipher_key], replies, now=now)
    accounts = app[subscribers_key].accounts
    ent = sample_records("enterprises.jsonl", 1)[0]
    record = {**{k: v for k, v in ent.items() if k not in ("contact", "consent")}, "id": ent["id"]}
    links = []
    for phone in (OWNER, ASKER, OTHER):
        async with app[session_factory_key]() as s, s.begin():
            account_id, _ = await accounts.sign_up_or_in(s, phone, now=now)
        links.append(await accounts.save_enterprise(account_id, record))
    assert [x.state for x in links] == ["active", "pending", "pending"], links
    return {"enterprise": ent["id"], "pending": [links[1].id, links[2].id]}


async def _state(client: Client, link_id: int) -> str:
    async with client.app[session_factory_key]() as s:
        return str(await s.scalar(select(SubscriberLinkRow.state).where(SubscriberLinkRow.id == link_id)))


async def test_inbound_page_shows_replies_masked(browser_client: Client, staff: StaffFixture) -> None:
    await seed_inbox(browser_client.app)
    await login(browser_client, "viewer")
    page = await browser_client.get("/staff/inbound")
    html = await page.text()
    assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
    assert "退订（已生效）" in html and "问补贴进度" in html and "阿里云短信" in html
    for secret in (OTHER, ASKER, TYPED_ID):
        assert secret not in html, secret
    assert "137****" in html and "139****9000" in html and "211104********7337" in html  # masked, not dropped
    only = await (await browser_client.get("/staff/inbound?kind=opt_out")).text()
    assert "退订（已生效）" in only and "问补贴进度" not in only


async def test_pending_contacts_are_decided_on_the_page(browser_client: Client, staff: StaffFixture) -> None:
    seeded = await seed_inbox(browser_client.app)
    asker, other = seeded["pending"]
    # a viewer sees the list, masked, without the buttons, and a forged post is refused
    csrf = await login(browser_client, "viewer")
    html = await (await browser_client.get("/staff/contacts")).text()
    assert seeded["enterprise"] in html and ASKER not in html and "139****" in html
    assert f"/staff/contacts/{asker}/approve" not in html and "需编辑及以上角色" in html
    refused = await browser_client.post(f"/staff/contacts/{asker}/approve", data={"csrf": csrf}, allow_redirects=False)
    assert refused.status == 403 and await _state(browser_client, asker) == "pending"
    # an editor approves one and refuses the other
    await browser_client.post("/staff/logout", data={"csrf": csrf})
    csrf = await login(browser_client, "editor")
    html = await (await browser_client.get("/staff/contacts")).text()
    assert f'action="/staff/contacts/{asker}/approve"' in html and csrf_of(html) == csrf
    ok = await browser_client.post(f"/staff/contacts/{asker}/approve", data={"csrf": csrf}, allow_redirects=False)
    assert ok.status == 303 and ok.headers["Location"] == "/staff/contacts?done=approved"
    no = await browser_client.post(f"/staff/contacts/{other}/refuse", data={"csrf": csrf}, allow_redirects=False)
    assert no.status == 303 and no.headers["Location"] == "/staff/contacts?done=refused"
    assert (await _state(browser_client, asker), await _state(browser_client, other)) == ("active", "refused")
    assert "没有待审批的联系人" in await (await browser_client.get("/staff/contacts")).text()
    # deciding again, an unknown request or an unknown decision: one clear line on a page, never a 500
    again = await browser_client.post(f"/staff/contacts/{asker}/refuse", data={"csrf": csrf})
    assert again.status == 409 and "already" in await again.text()
    assert (await browser_client.post("/staff/contacts/99999/approve", data={"csrf": csrf})).status == 404
    assert (await browser_client.post(f"/staff/contacts/{asker}/maybe", data={"csrf": csrf})).status == 422
    assert (await browser_client.post("/staff/contacts/x1/approve", data={"csrf": csrf})).status == 422
    # the JSON API too: an unknown decision is a 422, never taken as a refusal
    api = await browser_client.post(f"/api/v1/subscriber-links/{asker}/maybe", headers=staff.headers("editor"))
    assert api.status == 422 and (await api.json())["errors"][0]["loc"] == ["path", "decision"]
    # audited as the staff account that decided
    audit = await (await browser_client.get("/staff/audit?action=")).text()
    assert "subscriber.link_active" in audit and "subscriber.link_refused" in audit
    async with browser_client.app[session_factory_key]() as s:
        row = (await s.execute(select(SubscriberLinkRow.decided_by).where(SubscriberLinkRow.id == asker))).scalar()
    assert row == f"staff:{staff.ids['editor']}"
