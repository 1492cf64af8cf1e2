"""Suggestions and the review queue over the real app (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from policy_push.storage import AuditLog
from policy_push.storage import session_factory as make_sessions

from .conftest import AUTH, Client, StaffFixture, add_staff, sample_policy

#: the bootstrap token acts as the account ``bootstrap`` while no admin account exists
STAFF = AUTH
TEXT = """一、申报对象
在盘锦市注册登记、成立满2年的中型、小型和微型企业。
二、申报条件
（一）纳税信用等级不为C级或D级；
（二）近三年未发生重大安全生产事故。
三、支持标准
单户企业最高奖励30万元。
四、申报时间
2026年6月1日至2026年8月31日。"""


def _by_field(suggestions: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    return [s for s in suggestions if s["field"] == field]


async def test_suggest_returns_a_valid_record_and_sourced_suggestions(client: Client) -> None:
    resp = await client.post("/api/v1/policies/suggest", json={"title": "关于组织申报专项资金的通知", "text": TEXT},
                             headers=AUTH)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    record, suggestions = body["record"], body["suggestions"]
    assert record["audience"] == "enterprise" and record["apply_until"] == "2026-08-31"
    assert record["benefit_max_yuan"] == 300000
    conditions = _by_field(suggestions, "criteria")
    assert {"field": "tax_credit_rating", "op": "not_in", "value": ["C", "D"]} in [c["value"] for c in conditions]
    for c in conditions:
        start, end = c["span"]
        assert TEXT[start:end] and c["sentence"] in TEXT and 0 < c["confidence"] <= 1
    unsupported = _by_field(suggestions, "unsupported")
    assert any("安全生产事故" in u["value"] for u in unsupported)
    # the suggested record is a valid policy: the policy API takes it as it is
    resp = await client.post("/api/v1/policies", json=record, headers=AUTH)
    assert resp.status == 201, await resp.text()


async def test_suggest_needs_the_token_and_a_title(client: Client) -> None:
    assert (await client.post("/api/v1/policies/suggest", json={"title": "x", "text": "y"})).status == 401
    resp = await client.post("/api/v1/policies/suggest", json={"text": "y"}, headers=AUTH)
    assert resp.status == 422
    assert (await resp.json())["errors"][0]["loc"] == ["body", "title"]


async def _queue(client: Client, **extra: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/review", json={"title": "关于组织申报专项资金的通知", "text": TEXT, **extra},
                             headers=STAFF)
    assert resp.status == 201, await resp.text()
    return await resp.json()


def _decide_all(item: dict[str, Any], action: str = "accept") -> dict[str, Any]:
    return {s["id"]: action for s in item["suggestions"] if s["applied"]}


async def test_confirming_writes_the_policy_and_the_audit_log_names_who(
    client: Client, engine: AsyncEngine, session_factory: Any
) -> None:
    item = await _queue(client)
    assert item["status"] == "pending" and item["origin"] == "paste" and item["created_by"] == "bootstrap"
    accounts = StaffFixture()
    await add_staff(session_factory, accounts, "李科长", "editor")
    listed = await (await client.get("/api/v1/review?status=pending", headers=AUTH)).json()
    assert [i["id"] for i in listed["items"]] == [item["id"]]
    decisions = _decide_all(item)
    tax = next(s for s in item["suggestions"] if s["field"] == "criteria" and s["value"]["field"] == "tax_credit_rating")
    size = next(s for s in item["suggestions"] if s["field"] == "criteria" and s["value"]["field"] == "size")
    benefit = next(s for s in item["suggestions"] if s["field"] == "benefit_max_yuan")
    decisions[tax["id"]] = "reject"
    decisions[size["id"]] = {"edit": {"field": "size", "op": "in", "value": ["small", "micro"]}}
    decisions[benefit["id"]] = {"edit": 250000}
    resp = await client.post(f"/api/v1/review/{item['id']}/confirm",
                             json={"decisions": decisions, "fields": {"id": "pj-test-2026-001", "summary": "专项资金"}},
                             headers=accounts.headers("李科长"))
    assert resp.status == 200, await resp.text()
    out = await resp.json()
    assert out["outcome"] == "created" and out["version"] == 1 and out["item"]["status"] == "confirmed"
    policy = (await (await client.get("/api/v1/policies/pj-test-2026-001")).json())["policy"]
    leaves = policy["criteria"]["all"]
    assert {"field": "size", "op": "in", "value": ["small", "micro"]} in leaves
    assert not any(leaf.get("field") == "tax_credit_rating" for leaf in leaves)
    assert policy["benefit_max_yuan"] == 250000 and policy["summary"] == "专项资金"
    async with make_sessions(engine)() as session:
        entries = await AuditLog(session).list(entity_type="review_item", entity_id=item["id"])
    confirm = next(e for e in entries if e.action == "review.confirm")
    assert confirm.actor == accounts.ids["李科长"]
    assert tax["id"] in confirm.detail["rejected"] and size["id"] in confirm.detail["edited"]
    assert confirm.detail["policy_id"] == "pj-test-2026-001"
    # decided once: a second confirmation is a conflict
    again = await client.post(f"/api/v1/review/{item['id']}/confirm", json={"decisions": decisions}, headers=STAFF)
    assert again.status == 409


async def test_a_second_item_for_the_same_policy_makes_a_new_version(client: Client) -> None:
    for expected in (1, 2):
        item = await _queue(client, text=TEXT.replace("30万元", f"{30 + expected}万元"))
        resp = await client.post(f"/api/v1/review/{item['id']}/confirm",
                                 json={"decisions": _decide_all(item), "fields": {"id": "pj-test-2026-002"}}, headers=STAFF)
        assert (await resp.json())["version"] == expected


@pytest.mark.parametrize(
    ("change", "message", "status"),
    [
        ("undecided", "undecided", 409),  # the item holds a suggestion the decisions leave open
        ("unknown", "no suggestion", 404),  # the decisions name a suggestion the item does not hold
        ("bad-edit", "unknown operator", 422),
    ],
)
async def test_bad_decisions_are_refused_and_write_nothing(client: Client, change: str, message: str, status: int) -> None:
    item = await _queue(client)
    decisions = _decide_all(item)
    if change == "undecided":
        decisions.pop(next(iter(decisions)))
    elif change == "unknown":
        decisions["s999"] = "accept"
    else:
        first = next(s for s in item["suggestions"] if s["field"] == "criteria")
        decisions[first["id"]] = {"edit": {"field": "size", "op": "roughly", "value": "small"}}
    resp = await client.post(f"/api/v1/review/{item['id']}/confirm", json={"decisions": decisions}, headers=STAFF)
    assert resp.status == status
    assert message in (await resp.json())["errors"][0]["msg"]
    assert (await (await client.get(f"/api/v1/review/{item['id']}", headers=AUTH)).json())["status"] == "pending"


async def test_rejecting_writes_no_policy(client: Client) -> None:
    item = await _queue(client)
    resp = await client.post(f"/api/v1/review/{item['id']}/reject", json={"reason": "重复发布"}, headers=STAFF)
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "rejected" and body["decided_by"] == "bootstrap"
    assert (await (await client.get("/api/v1/policies", headers=AUTH)).json())["total"] == 0
    resp = await client.post(f"/api/v1/review/{item['id']}/reject", json={"reason": "again"}, headers=STAFF)
    assert resp.status == 409


async def test_review_writes_need_a_staff_member_and_items_exist(client: Client) -> None:
    resp = await client.post("/api/v1/review", json={"title": "t", "text": TEXT})
    assert resp.status == 401 and (await resp.json())["errors"][0]["loc"] == ["header", "Authorization"]
    assert (await client.get("/api/v1/review/nope", headers=AUTH)).status == 404
    assert (await client.get("/api/v1/review", headers={})).status == 401
    assert (await client.get("/api/v1/review?status=maybe", headers=AUTH)).status == 422


async def test_an_existing_policy_given_to_suggest_keeps_its_fields(client: Client) -> None:
    policy = sample_policy()
    resp = await client.post("/api/v1/policies/suggest", json={k: policy[k] for k in ("id", "title", "text", "issuer")},
                             headers=AUTH)
    body = await resp.json()
    assert body["record"]["issuer"] == policy["issuer"]
    issuer = _by_field(body["suggestions"], "issuer")
    assert all(not s["applied"] for s in issuer)


async def test_review_responses_match_their_documented_schemas(client: Client) -> None:
    from .test_openapi import _validator

    doc = await (await client.get("/api/v1/openapi.json")).json()

    def check(template: str, method: str, status: int, body: Any) -> None:
        schema = doc["paths"][template][method]["responses"][str(status)]["content"]["application/json"]["schema"]
        _validator(doc, schema).validate(body)

    resp = await client.post("/api/v1/policies/suggest", json={"title": "通知", "text": TEXT}, headers=AUTH)
    check("/api/v1/policies/suggest", "post", 200, await resp.json())
    item = await _queue(client)
    check("/api/v1/review", "post", 201, item)
    check("/api/v1/review", "get", 200, await (await client.get("/api/v1/review", headers=AUTH)).json())
    check("/api/v1/review/{id}", "get", 200, await (await client.get(f"/api/v1/review/{item['id']}", headers=AUTH)).json())
    resp = await client.post(f"/api/v1/review/{item['id']}/confirm", json={"decisions": _decide_all(item)}, headers=STAFF)
    check("/api/v1/review/{id}/confirm", "post", 200, await resp.json())
    other = await _queue(client)
    resp = await client.post(f"/api/v1/review/{other['id']}/reject", json={"reason": "x"}, headers=STAFF)
    check("/api/v1/review/{id}/reject", "post", 200, await resp.json())
    resp = await client.post(f"/api/v1/review/{other['id']}/reject", json={"reason": "x"}, headers=STAFF)
    check("/api/v1/review/{id}/reject", "post", 409, await resp.json())


async def test_a_policy_that_arrived_from_a_feed_is_saved_by_confirming_its_suggestions(
    make_client: Any, engine: AsyncEngine, session_factory: Any
) -> None:
    """Issue 14's "done when", end to end: the app's own scheduler tick polls a (local, fake) portal, the
    documents wait in the review queue, a staff member confirms one item's suggestions over the API and the
    policy is saved; the audit log names who confirmed what. Nothing became a policy before that."""
    import asyncio

    from aiohttp.test_utils import TestServer

    from tests.policy_push.intake.portal import Portal, make_app

    portal = Portal(slow_s=0.0)
    server = TestServer(make_app(portal), port=0)
    await server.start_server()
    portal.base = str(server.make_url("")).rstrip("/")
    try:
        sources = [{"name": "pj-list", "kind": "html", "url": portal.base + "/list.html", "links": "ul.list a",
                    "title": "h1.title", "content": "div.article", "date": "span.date"}]  # fmt: skip
        client = await make_client(intake_sources=sources, intake_poll_interval_s=0.5, intake_host_delay_s=0.0,
                                   intake_fetch_timeout_s=5.0)  # fmt: skip
        items: list[dict[str, Any]] = []
        for _ in range(150):  # the tick's first poll
            listed = await (await client.get("/api/v1/review?status=pending", headers=AUTH)).json()
            items = [i for i in listed["items"] if i["url"] and i["url"].endswith("/gbk/a.html")]
            if items:
                break
            await asyncio.sleep(0.1)
        [item] = items
        assert item["origin"] == "feed" and item["source"] == "pj-list"
        assert (await (await client.get("/api/v1/policies", headers=AUTH)).json())["total"] == 0  # waits for a person
        item = await (await client.get(f"/api/v1/review/{item['id']}", headers=AUTH)).json()
        accounts = StaffFixture()
        await add_staff(session_factory, accounts, "王科员", "editor")
        resp = await client.post(f"/api/v1/review/{item['id']}/confirm",
                                 json={"decisions": _decide_all(item), "fields": {"id": "pj-feed-2026-001"}},
                                 headers=accounts.headers("王科员"))  # fmt: skip
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["outcome"] == "created"
        policy = (await (await client.get("/api/v1/policies/pj-feed-2026-001")).json())["policy"]
        assert policy["title"] == "关于组织申报2026年度专项资金的通知" and policy["url"].endswith("/gbk/a.html")
        assert {"field": "tax_credit_rating", "op": "not_in", "value": ["C", "D"]} in policy["criteria"]["all"]
        assert policy["benefit_max_yuan"] == 300000 and policy["apply_until"] == "2026-08-31"
        async with make_sessions(engine)() as session:
            entries = await AuditLog(session).list(entity_type="review_item", entity_id=item["id"])
        confirm = next(e for e in entries if e.action == "review.confirm")
        assert confirm.actor == accounts.ids["王科员"] and confirm.detail["policy_id"] == "pj-feed-2026-001"
    finally:
        await server.close()
