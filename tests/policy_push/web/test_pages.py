"""The staff preview page and the public policy page: escaped, with the histogram, guarded."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.factories import enterprise_doc

from .conftest import AUTH, BAD, Client

ALICE = {**AUTH, "X-Staff-Member": "alice"}
INJECTION = json.loads((BAD / "16_injection_strings.jsonl").read_text(encoding="utf-8").splitlines()[0])


@pytest.fixture
async def campaign(client: Client) -> dict[str, Any]:
    """The injection-strings policy (criteria simplified so the sample enterprises qualify) and its draft."""
    docs = [enterprise_doc(channels=["sms", "wechat"]) for _ in range(3)] + [enterprise_doc(employees=None, size=None,
                                                                                            annual_revenue_wan=None)]
    for d in docs:
        assert (await client.post("/api/v1/enterprises", json=d, headers=AUTH)).status == 201
    policy = {**INJECTION, "criteria": {"all": [{"field": "region", "op": "within", "value": ["211100"]},
                                                {"field": "size", "op": "in", "value": ["small", "micro", "medium"]}]}}
    assert (await client.post("/api/v1/policies", json=policy, headers=ALICE)).status == 201
    resp = await client.post("/api/v1/campaigns", json={"policy_id": policy["id"]}, headers=ALICE)
    assert resp.status == 201, await resp.text()
    return {"detail": await resp.json(), "policy": policy, "profiles": docs}


def _inert(html: str) -> None:
    assert "<script" not in html and "<img" not in html and "<iframe" not in html and "</td><td>测试局" not in html
    assert "&lt;script&gt;" in html


async def test_staff_page_shows_counts_histogram_messages_and_masks(client: Client, campaign: dict[str, Any]) -> None:
    cid = campaign["detail"]["id"]
    resp = await client.get(f"/staff/campaigns/{cid}?token=test-token")
    assert resp.status == 200 and resp.content_type == "text/html"
    html = await resp.text()
    _inert(html)
    assert "<svg" in html and html.count("<rect") == 10  # one bar per score bucket
    sms = campaign["detail"]["messages"]["sms"]
    assert f"{sms['length']} 字" in html and f"{sms['segments']} 条计费" in html
    assert "回复TD退订" in html
    assert "可能符合" in html and "企业规模" in html  # the may-qualify list names what is missing
    for d in campaign["profiles"]:
        assert d["contact"]["phone"] not in html and d["contact"]["wechat_openid"] not in html
    assert re.search(r"\d{3}\*{4}\d{4}", html)  # masked phones are shown
    assert '<form method="post" action="/staff/campaigns/' in html
    # the header works too; no token or a wrong one is refused
    assert (await client.get(f"/staff/campaigns/{cid}", headers=AUTH)).status == 200
    assert (await client.get(f"/staff/campaigns/{cid}")).status == 401
    assert (await client.get(f"/staff/campaigns/{cid}?token=nope")).status == 403
    assert (await client.get("/staff/campaigns/nope?token=test-token")).status == 404


async def test_staff_approve_form(client: Client, campaign: dict[str, Any]) -> None:
    cid = campaign["detail"]["id"]
    url = f"/staff/campaigns/{cid}/approve"
    assert (await client.post(url, data={"staff_member": "bob"})).status == 401
    assert (await client.post(url, data={"staff_member": "bob", "token": "nope"})).status == 403
    same = await client.post(url, data={"staff_member": "alice", "token": "test-token"})
    assert same.status == 403 and "another staff member must approve" in await same.text()
    ok = await client.post(url, data={"staff_member": "<b>bob</b>", "token": "test-token", "schedule": "on"},
                           allow_redirects=False)
    assert ok.status == 303 and ok.headers["Location"] == f"/staff/campaigns/{cid}?token=test-token&done=approved"
    page = await (await client.get(ok.headers["Location"])).text()
    assert "&lt;b&gt;bob&lt;/b&gt;" in page and "<b>bob</b>" not in page and "scheduled" in page
    detail = await (await client.get(f"/api/v1/campaigns/{cid}", headers=AUTH)).json()
    assert detail["state"] == "scheduled" and detail["approved_by"] == "<b>bob</b>"
