"""The staff preview page and the public policy page: escaped, with the histogram, guarded."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.factories import enterprise_doc

from .conftest import BAD, VOUCHED, Client, StaffFixture, login

INJECTION = json.loads((BAD / "16_injection_strings.jsonl").read_text(encoding="utf-8").splitlines()[0])


@pytest.fixture
async def campaign(client: Client, staff: StaffFixture) -> dict[str, Any]:
    """The injection-strings policy (criteria simplified so the sample enterprises qualify) and its draft,
    prepared by ``approver2``."""
    AUTH, ALICE = staff.headers("admin"), staff.headers("approver2")
    docs = [enterprise_doc(channels=["sms", "wechat"]) for _ in range(3)] + [enterprise_doc(employees=None, size=None,
                                                                                            annual_revenue_wan=None)]
    for d in docs:
        assert (await client.post("/api/v1/enterprises", json=d, headers=AUTH, params=VOUCHED)).status == 201
    policy = {**INJECTION, "criteria": {"all": [{"field": "region", "op": "within", "value": ["211100"]},
                                                {"field": "size", "op": "in", "value": ["small", "micro", "medium"]}]}}
    assert (await client.post("/api/v1/policies", json=policy, headers=ALICE)).status == 201
    resp = await client.post("/api/v1/campaigns", json={"policy_id": policy["id"]}, headers=ALICE)
    assert resp.status == 201, await resp.text()
    return {"detail": await resp.json(), "policy": policy, "profiles": docs}


def _inert(html: str) -> None:
    assert "<script" not in html and "<img" not in html and "<iframe" not in html and "</td><td>测试局" not in html
    assert "&lt;script&gt;" in html


async def test_staff_page_shows_counts_charts_messages_and_masks(
    browser_client: Client, campaign: dict[str, Any], staff: StaffFixture
) -> None:
    client, cid = browser_client, campaign["detail"]["id"]
    assert (await client.get(f"/staff/campaigns/{cid}", allow_redirects=False)).status == 303  # log in first
    await login(client, "viewer")
    resp = await client.get(f"/staff/campaigns/{cid}")
    assert resp.status == 200 and resp.content_type == "text/html" and resp.headers["Cache-Control"] == "no-store"
    html = await resp.text()
    _inert(html)
    assert html.count("<svg") == 2 and "匹配度（分段起点）" in html and "区县" in html  # charts with axis titles
    sms = campaign["detail"]["messages"]["sms"]
    assert f"{sms['length']} 字" in html and f"{sms['segments']} 条计费" in html
    assert "回复TD退订" in html and "政策名称" in html and ">thing1<" not in html  # WeChat fields by their labels
    assert "可能符合" in html and "企业规模" in html  # the may-qualify rows name what is missing
    for d in campaign["profiles"]:
        assert d["contact"]["phone"] not in html and d["contact"]["wechat_openid"] not in html
    assert re.search(r"\d{3}\*{4}\d{4}", html)  # masked phones are shown
    assert "确认审批" not in html  # a viewer sees no approve form
    assert (await client.get("/staff/campaigns/nope")).status == 404
    only_may = await (await client.get(f"/staff/campaigns/{cid}?eligible=false")).text()
    assert "符合筛选的共 1 个" in only_may


async def test_exclude_and_approve_in_the_console(
    make_client: Any, campaign: dict[str, Any], staff: StaffFixture
) -> None:
    cid = campaign["detail"]["id"]
    editor, approver = await make_client(staff_cookie_secure=False), await make_client(staff_cookie_secure=False)
    csrf = await login(editor, "editor")
    url = f"/staff/campaigns/{cid}"
    first = campaign["profiles"][0]["id"]
    ex = await editor.post(f"{url}/exclude", data={"csrf": csrf, "profile_id": first}, allow_redirects=False)
    assert ex.status == 303 and ex.headers["Location"] == f"{url}?done=excluded"
    assert (await editor.post(f"{url}/exclude", data={"profile_id": first}, allow_redirects=False)).status == 403  # no CSRF
    # the editor who changed the list cannot approve (role), the approver sees the confirmation
    assert (await editor.post(f"{url}/approve", data={"csrf": csrf, "sha256": "0" * 64}, allow_redirects=False)).status == 403
    csrf2 = await login(approver, "approver")
    page = await (await approver.get(url)).text()
    assert "确认：共 2 条消息：短信 2 条" in page and "确认审批" in page
    sha = re.search(r'name="sha256" value="([0-9a-f]{64})"', page).group(1)
    # the list changes after the approver loaded the page: the approval is refused
    await editor.post(f"{url}/include", data={"csrf": csrf, "profile_id": first}, allow_redirects=False)
    stale = await approver.post(f"{url}/approve", data={"csrf": csrf2, "sha256": sha}, allow_redirects=False)
    assert stale.status == 409 and "changed since it was shown" in await stale.text()
    page = await (await approver.get(url)).text()
    sha = re.search(r'name="sha256" value="([0-9a-f]{64})"', page).group(1)
    ok = await approver.post(f"{url}/approve", data={"csrf": csrf2, "sha256": sha, "schedule": "on"}, allow_redirects=False)
    assert ok.status == 303 and ok.headers["Location"] == f"{url}?done=approved"
    detail = await (await approver.get(f"/api/v1/campaigns/{cid}", headers=staff.headers("viewer"))).json()
    assert detail["state"] == "scheduled" and detail["approved_by"] == staff.ids["approver"]
    progress = await approver.get(f"{url}/progress")
    assert progress.status == 200 and '/static/progress.js' in await progress.text()


async def test_the_preparer_cannot_approve_and_an_empty_list_cannot_be_approved(
    make_client: Any, campaign: dict[str, Any], staff: StaffFixture
) -> None:
    cid = campaign["detail"]["id"]  # prepared by approver2 (the fixture's writer)
    client = await make_client(staff_cookie_secure=False)
    csrf = await login(client, "approver2")
    url = f"/staff/campaigns/{cid}"
    page = await (await client.get(url)).text()
    assert "四眼原则" in page and "确认审批" not in page
    sha = re.search(r"SHA-256（([0-9a-f]{16})", page)
    assert sha is None  # no form for the preparer
    detail = await (await client.get(f"/api/v1/campaigns/{cid}", headers=staff.headers("viewer"))).json()
    own = await client.post(f"{url}/approve", data={"csrf": csrf, "sha256": detail["list_sha256"]})
    assert own.status == 403 and "another staff member" in await own.text()
    ids = [p["id"] for p in campaign["profiles"]]
    await client.post(f"{url}/exclude", data={"csrf": csrf, "profile_id": ids}, allow_redirects=False)
    other = await make_client(staff_cookie_secure=False)
    csrf2 = await login(other, "approver")
    page = await (await other.get(url)).text()
    assert "名单为空" in page and "确认审批" not in page
    detail = await (await other.get(f"/api/v1/campaigns/{cid}", headers=staff.headers("viewer"))).json()
    empty = await other.post(f"{url}/approve", data={"csrf": csrf2, "sha256": detail["list_sha256"]})
    assert empty.status == 409 and "nobody" in await empty.text()
