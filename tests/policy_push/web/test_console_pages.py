"""The console's policy, review, profile and audit pages through a logged-in browser-like client."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import FormData

from tests.factories import enterprise_doc

from .conftest import Client, StaffFixture, login, sample_records

TEXT = ("为支持中小企业发展，现就申报事项通知如下。一、申报对象：在盘锦市注册的中型、小型和微型企业。"
        "二、申报条件：纳税信用等级不为C级或D级。三、支持标准：最高奖励50万元。四、申报时间：2026年5月1日至2026年6月30日。")


async def test_policy_search_detail_form_errors_and_import(browser_client: Client, staff: StaffFixture) -> None:
    client = browser_client
    for record in sample_records("policies.jsonl", 6):
        assert (await client.post("/api/v1/policies", json=record, headers=staff.headers("editor"))).status == 201
    target = sample_records("policies.jsonl", 1)[0]
    csrf = await login(client, "editor")
    # Chinese full-text search: words of the title, the document number as typed
    found = await (await client.get("/staff/policies", params={"q": "专精特新 奖励"})).text()
    assert target["title"] in found
    by_number = await (await client.get("/staff/policies", params={"q": target["doc_number"]})).text()
    assert target["title"] in by_number and "共找到 0 条" not in by_number
    none = await (await client.get("/staff/policies", params={"q": "火星移民补贴"})).text()
    assert "共找到 0 条" in none
    detail = await (await client.get(f"/staff/policies/{target['id']}")).text()
    assert "注册地 属于 盘锦市" in detail and "不满足以下条件" in detail and "纳税信用等级" in detail
    # an edit makes a new version, shown with its diff
    form = await (await client.get(f"/staff/policies/{target['id']}/edit")).text()
    assert 'name="criteria"' in form
    values = {m.group(1): m.group(2) for m in re.finditer(r'name="(\w+)" type="\w+" value="([^"]*)"', form)}
    values.update({"csrf": csrf, "audience": "enterprise", "title": target["title"] + "（修订）",
                   "text": target["text"], "criteria": ""})  # fmt: skip
    saved = await client.post(f"/staff/policies/{target['id']}/edit", data=values, allow_redirects=False)
    assert saved.status == 303, await saved.text()
    detail = await (await client.get(f"/staff/policies/{target['id']}")).text()
    assert "第2版" in detail and "（修订）" in detail and "相对上一版的改动" in detail
    # errors next to the field
    bad = await client.post("/staff/policies/new", data={"csrf": csrf, "id": "pj-new-1", "title": "", "audience": "enterprise",
                                                          "criteria": "{not json", "benefit_max_yuan": "很多"})  # fmt: skip
    html = await bad.text()
    assert bad.status == 422 and 'id="e-criteria"' in html and 'id="e-benefit_max_yuan"' in html
    bad2 = await client.post("/staff/policies/new", data={"csrf": csrf, "id": "pj-new-1", "title": "", "audience": "enterprise"})
    assert bad2.status == 422 and 'id="e-title"' in await bad2.text()
    # import: good lines stored, bad ones reported by line
    data = FormData()
    data.add_field("csrf", csrf)
    lines = [sample_records("policies.jsonl")[7], {"id": "x"}]
    import json

    data.add_field("file", "\n".join(json.dumps(r, ensure_ascii=False) for r in lines).encode(), filename="p.jsonl")
    report = await (await client.post("/staff/policies/import", data=data)).text()
    assert "新建 1" in report and "拒绝 1" in report and "<td>2</td>" in report


async def test_review_queue_page_turns_pasted_text_into_a_policy(browser_client: Client, staff: StaffFixture) -> None:
    client = browser_client
    csrf = await login(client, "editor")
    made = await client.post("/staff/review", data={"csrf": csrf, "title": "关于申报中小企业奖励资金的通知", "text": TEXT},
                             allow_redirects=False)  # fmt: skip
    assert made.status == 303
    item_url = made.headers["Location"]
    page = await (await client.get(item_url)).text()
    assert "纳税信用等级不为C级或D级" in page and 'value="accept"' in page  # suggestions beside their sentences
    ids = re.findall(r'name="d-([^"]+)" value="accept"', page)
    form: dict[str, Any] = {"csrf": csrf, "id": "pj-review-1"}
    form.update({f"d-{i}": "accept" for i in ids})
    done = await client.post(f"{item_url}/confirm", data=form, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"].startswith("/staff/policies/pj-review-1"), await done.text()
    audit = await (await client.get("/staff/audit", params={"action": "review"})).text()
    assert "review.confirm" in audit and "editor" in audit
    queue = await (await client.get("/staff/review")).text()
    assert "没有条目" in queue


async def test_review_page_edits_and_rejects_suggestions_and_a_rejected_item_writes_nothing(
    browser_client: Client, staff: StaffFixture
) -> None:
    """The console's other two choices beside each sentence: edit (the typed value is what is saved) and reject
    (left out); and rejecting a whole item, which needs a reason and writes no policy."""
    client = browser_client
    csrf = await login(client, "editor")
    made = await client.post("/staff/review", data={"csrf": csrf, "title": "关于申报中小企业奖励资金的通知", "text": TEXT},
                             allow_redirects=False)  # fmt: skip
    item_url = made.headers["Location"]
    item_id = item_url.rsplit("/", 1)[-1]
    item = await (await client.get(f"/api/v1/review/{item_id}", headers=staff.headers("editor"))).json()
    by_field = {(s["field"], (s["value"] or {}).get("field") if isinstance(s["value"], dict) else None): s["id"]
                for s in item["suggestions"]}  # fmt: skip
    form: dict[str, Any] = {"csrf": csrf, "id": "pj-review-2"}
    form.update({f"d-{s['id']}": "accept" for s in item["suggestions"] if s["applied"]})
    form[f"d-{by_field[('criteria', 'tax_credit_rating')]}"] = "reject"
    benefit = by_field[("benefit_max_yuan", None)]
    form[f"d-{benefit}"], form[f"v-{benefit}"] = "edit", "250000"
    until = by_field[("apply_until", None)]
    form[f"d-{until}"], form[f"v-{until}"] = "edit", "2026-07-15"
    done = await client.post(f"{item_url}/confirm", data=form, allow_redirects=False)
    assert done.status == 303, await done.text()
    policy = (await (await client.get("/api/v1/policies/pj-review-2")).json())["policy"]
    assert (policy["benefit_max_yuan"], policy["apply_until"]) == (250000, "2026-07-15")
    assert "tax_credit_rating" not in json.dumps(policy["criteria"])
    assert {"field": "size", "op": "in", "value": ["medium", "small", "micro"]} in policy["criteria"]["all"]
    # a second item, rejected: a reason is required, and no policy is written
    other = await client.post("/staff/review", data={"csrf": csrf, "title": "重复的通知", "text": TEXT},
                              allow_redirects=False)  # fmt: skip
    other_url = other.headers["Location"]
    no_reason = await client.post(f"{other_url}/reject", data={"csrf": csrf, "reason": " "}, allow_redirects=False)
    assert no_reason.status == 422 and "请写明驳回理由" in await no_reason.text()
    rejected = await client.post(f"{other_url}/reject", data={"csrf": csrf, "reason": "重复发布"}, allow_redirects=False)
    assert rejected.status == 303
    listed = await (await client.get("/api/v1/policies", headers=staff.headers("editor"))).json()
    assert [p["policy"]["id"] for p in listed["items"]] == ["pj-review-2"]


async def test_profile_lookup_masks_and_reveal_is_admin_only_and_audited(make_client: Any, staff: StaffFixture) -> None:
    doc = enterprise_doc(channels=["sms"])
    viewer, admin = await make_client(staff_cookie_secure=False), await make_client(staff_cookie_secure=False)
    assert (await viewer.post("/api/v1/enterprises", json=doc, headers=staff.headers("editor"))).status == 201
    csrf = await login(viewer, "viewer")
    phone = doc["contact"]["phone"]
    found = await viewer.post("/staff/profiles", data={"csrf": csrf, "q": phone})
    html = await found.text()
    assert found.status == 200 and doc["id"] in html and phone not in html and re.search(r"\d{3}\*{4}\d{4}", html)
    assert "查看完整信息" not in html  # not for a viewer
    assert (await viewer.post(f"/staff/profiles/enterprise/{doc['id']}/reveal", data={"csrf": csrf, "why": "x"})).status == 403
    csrf2 = await login(admin, "admin")
    assert "查看完整信息" in await (await admin.post("/staff/profiles", data={"csrf": csrf2, "q": doc["id"]})).text()
    shown = await admin.post(f"/staff/profiles/enterprise/{doc['id']}/reveal", data={"csrf": csrf2, "why": "核对电话"})
    assert shown.status == 200 and phone in await shown.text()
    audit = await (await admin.get("/staff/audit", params={"action": "profile.reveal"})).text()
    assert "profile.reveal" in audit and "核对电话" in audit and phone not in audit
    chain = await (await admin.get("/staff/audit", params={"verify": "1"})).text()
    assert "哈希链完整" in chain
