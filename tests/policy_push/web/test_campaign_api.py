"""/api/v1/campaigns and /api/v1/opt-outs through the real app, match service and both databases."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.factories import enterprise_doc, policy_doc

from .conftest import VOUCHED, Client, StaffFixture

jsonschema = pytest.importorskip("jsonschema")


def _check(doc: dict[str, Any], method: str, template: str, status: int, body: Any) -> None:
    """The response fits the schema the OpenAPI document gives for it."""
    responses = doc["paths"][template][method.lower()]["responses"]
    assert str(status) in responses, (method, template, status)
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(body)


@pytest.fixture
async def world(client: Client, staff: StaffFixture) -> dict[str, Any]:
    """Three enterprises (one without consent) and a policy; the policy write (by ``editor``) made a draft."""
    AUTH, ALICE = staff.headers("admin"), staff.headers("editor")
    docs = [enterprise_doc(channels=["sms", "wechat"]), enterprise_doc(channels=["wechat"]), enterprise_doc(consent=False)]
    for d in docs:
        assert (await client.post("/api/v1/enterprises", json=d, headers=AUTH, params=VOUCHED)).status == 201
    policy = policy_doc()
    assert (await client.post("/api/v1/policies", json=policy, headers=ALICE)).status == 201
    openapi = await (await client.get("/api/v1/openapi.json")).json()
    return {"profiles": docs, "policy": policy, "doc": openapi}


def _no_plaintext(body: Any, docs: list[dict[str, Any]]) -> None:
    text = json.dumps(body, ensure_ascii=False)
    for d in docs:
        for value in d["contact"].values():
            if value:
                assert value not in text


async def test_campaign_life_through_the_api(client: Client, world: dict[str, Any], staff: StaffFixture) -> None:
    AUTH, ALICE, BOB = staff.headers("viewer"), staff.headers("editor"), staff.headers("approver")
    doc, policy, docs = world["doc"], world["policy"], world["profiles"]
    listed = await (await client.get(f"/api/v1/campaigns?policy_id={policy['id']}", headers=AUTH)).json()
    assert [c["state"] for c in listed["items"]] == ["draft"]  # made by the policy write
    assert listed["items"][0]["prepared_by"] == staff.ids["editor"]
    _check(doc, "GET", "/api/v1/campaigns", 200, listed)

    resp = await client.post("/api/v1/campaigns", json={"policy_id": policy["id"]}, headers=ALICE)
    assert resp.status == 201
    detail = await resp.json()
    _check(doc, "POST", "/api/v1/campaigns", 201, detail)
    cid = detail["id"]
    assert resp.headers["Location"] == f"/api/v1/campaigns/{cid}"
    assert detail["summary"]["eligible"] == 3 and detail["summary"]["to_message"] == {"sms": 1, "wechat": 1}
    assert detail["summary"]["skipped"] == {"no_consent": 1}
    assert sum(b["count"] for b in detail["summary"]["histogram"]) == 3
    assert {"sms", "wechat"} == set(detail["messages"])
    assert detail["messages"]["sms"]["length"] == len(detail["messages"]["sms"]["text"])
    assert detail["messages"]["sms"]["segments"] >= 1
    _no_plaintext(detail, docs)
    states = [c["state"] for c in (await (await client.get(f"/api/v1/campaigns?policy_id={policy['id']}", headers=AUTH)).json())["items"]]
    assert sorted(states) == ["cancelled", "draft"]  # the older draft gave way

    got = await client.get(f"/api/v1/campaigns/{cid}", headers=AUTH)
    _check(doc, "GET", "/api/v1/campaigns/{id}", 200, await got.json())

    page = await (await client.get(f"/api/v1/campaigns/{cid}/recipients?limit=2", headers=AUTH)).json()
    _check(doc, "GET", "/api/v1/campaigns/{id}/recipients", 200, page)
    assert page["total"] == 3 and len(page["items"]) == 2
    rest = await (await client.get(f"/api/v1/campaigns/{cid}/recipients?limit=2&after={page['next']}", headers=AUTH)).json()
    _check(doc, "GET", "/api/v1/campaigns/{id}/recipients", 200, rest)
    everyone = await (await client.get(f"/api/v1/campaigns/{cid}/recipients", headers=AUTH)).json()
    # the page after the cursor is the rest of the list, in the same order; the last page has no next
    assert [i["profile_id"] for i in page["items"] + rest["items"]] == [i["profile_id"] for i in everyone["items"]]
    assert rest["next"] is None and rest["total"] == 3
    for item in page["items"]:
        assert "****" in (item["contacts"]["sms"] or "****") and item["reasons"]
    _no_plaintext(page, docs)
    skipped = await (await client.get(f"/api/v1/campaigns/{cid}/recipients?skip_reason=no_consent", headers=AUTH)).json()
    assert [i["profile_id"] for i in skipped["items"]] == [docs[2]["id"]]
    wechat = await (await client.get(f"/api/v1/campaigns/{cid}/recipients?channel=wechat&skip_reason=none", headers=AUTH)).json()
    assert [i["profile_id"] for i in wechat["items"]] == [docs[1]["id"]]

    out = await client.post(f"/api/v1/campaigns/{cid}/exclude", json={"profile_ids": [docs[1]["id"]]}, headers=BOB)
    body = await out.json()
    _check(doc, "POST", "/api/v1/campaigns/{id}/exclude", 200, body)
    assert body["changed"] == 1 and body["summary"]["to_message"] == {"sms": 1}
    back = await client.post(f"/api/v1/campaigns/{cid}/include", json={"profile_ids": [docs[1]["id"]]}, headers=BOB)
    assert (await back.json())["summary"]["to_message"] == {"sms": 1, "wechat": 1}

    when = "2030-05-01T09:30:00+08:00"
    st = await client.put(f"/api/v1/campaigns/{cid}/send-time", json={"send_at": when}, headers=BOB)
    assert st.status == 200 and (await st.json())["send_at"] == when

    assert (await client.post(f"/api/v1/campaigns/{cid}/approve", headers=ALICE)).status == 403
    ok = await client.post(f"/api/v1/campaigns/{cid}/approve", headers=BOB)
    approved = await ok.json()
    _check(doc, "POST", "/api/v1/campaigns/{id}/approve", 200, approved)
    assert approved["state"] == "approved" and approved["approved_by"] == staff.ids["approver"] and len(approved["approval_sha256"]) == 64
    again = await client.post(f"/api/v1/campaigns/{cid}/approve", headers=BOB)
    assert again.status == 409 and "is approved" in (await again.json())["errors"][0]["msg"]

    sch = await client.post(f"/api/v1/campaigns/{cid}/schedule", headers=BOB)
    assert (await sch.json())["state"] == "scheduled"
    # a change now returns it to draft
    ex = await client.post(f"/api/v1/campaigns/{cid}/exclude", json={"profile_ids": [docs[0]["id"]]}, headers=BOB)
    assert (await ex.json())["state"] == "draft"
    ap = await client.post(f"/api/v1/campaigns/{cid}/approve?schedule=true", headers=BOB)
    assert (await ap.json())["state"] == "scheduled"

    c1 = await client.post(f"/api/v1/campaigns/{cid}/cancel", headers=BOB)
    assert (await c1.json())["state"] == "cancelled"
    c2 = await client.post(f"/api/v1/campaigns/{cid}/cancel", headers=BOB)
    assert c2.status == 409 and "cancelled" in (await c2.json())["errors"][0]["msg"]


async def test_campaign_errors(client: Client, world: dict[str, Any], staff: StaffFixture) -> None:
    AUTH, ALICE, BOB = staff.headers("viewer"), staff.headers("editor"), staff.headers("approver")
    policy = world["policy"]
    cases = [
        ("POST", "/api/v1/campaigns", {"policy_id": policy["id"]}, AUTH, 403, ["path"]),  # a viewer prepares nothing
        ("POST", "/api/v1/campaigns", {"policy_id": policy["id"]}, {}, 401, ["header", "Authorization"]),
        ("POST", "/api/v1/campaigns", {"policy_id": "nope"}, ALICE, 404, ["body", "policy_id"]),
        ("POST", "/api/v1/campaigns", {"policy": "x"}, ALICE, 422, None),
        ("POST", "/api/v1/campaigns", {"policy_id": policy["id"], "version": 9}, ALICE, 409, ["body", "version"]),
        ("GET", "/api/v1/campaigns/nope", None, AUTH, 404, ["path", "id"]),
        ("GET", "/api/v1/campaigns/nope/recipients", None, AUTH, 404, ["path", "id"]),
        ("GET", "/api/v1/campaigns?state=lost", None, AUTH, 422, ["query", "state"]),
        ("GET", "/api/v1/campaigns/nope/recipients?after=bm90LWEtY3Vyc29y", None, AUTH, 422, ["query", "after"]),
        ("POST", "/api/v1/campaigns/nope/approve", None, BOB, 404, ["path", "id"]),
        ("POST", "/api/v1/campaigns/nope/cancel", None, AUTH, 403, ["path"]),
    ]
    for method, url, body, headers, status, loc in cases:
        resp = await client.request(method, url, json=body, headers=headers)
        assert resp.status == status, (method, url, await resp.text())
        if loc is not None:
            assert (await resp.json())["errors"][0]["loc"] == loc, (method, url)
    listed = await (await client.get(f"/api/v1/campaigns?policy_id={policy['id']}", headers=AUTH)).json()
    cid = listed["items"][0]["id"]
    bad = [
        ("POST", "exclude", {"profile_ids": ["unknown-id"]}, 404),  # well formed, names no recipient
        ("POST", "exclude", {"profile_ids": []}, 422),
        ("POST", "include", {"profile_ids": [world["profiles"][2]["id"]]}, 409),  # no consent: the rules win
        ("PUT", "send-time", {"send_at": "2020-01-01T09:00:00+08:00"}, 422),
        ("PUT", "send-time", {"send_at": "2030-01-01T09:00:00"}, 422),
        ("POST", "schedule", None, 409),
    ]
    for method, action, body, status in bad:
        resp = await client.request(method, f"/api/v1/campaigns/{cid}/{action}", json=body, headers=BOB)
        assert resp.status == status, (action, await resp.text())


async def test_opt_outs(client: Client, world: dict[str, Any], staff: StaffFixture) -> None:
    AUTH, ALICE = staff.headers("viewer"), staff.headers("editor")
    doc, person = world["doc"], world["profiles"][0]
    by_phone = {"phone": person["contact"]["phone"], "source": "sms_uplink"}
    first = await client.post("/api/v1/opt-outs", json=by_phone, headers=ALICE)
    assert first.status == 201
    body = await first.json()
    _check(doc, "POST", "/api/v1/opt-outs", 201, body)
    assert body["opted_out"] == [{"profile_kind": "enterprise", "profile_id": person["id"], "channel": "*", "created": True}]
    assert (await client.post("/api/v1/opt-outs", json=by_phone, headers=ALICE)).status == 200
    by_id = {"profile_kind": "enterprise", "profile_id": world["profiles"][1]["id"], "channel": "wechat"}
    assert (await client.post("/api/v1/opt-outs", json=by_id, headers=ALICE)).status == 201
    for bad, status in (({"phone": "13800000000"}, 404), ({"profile_id": "x"}, 422), ({}, 422),
                        ({"phone": "1", "channel": "fax"}, 422)):
        assert (await client.post("/api/v1/opt-outs", json=bad, headers=ALICE)).status == status, bad
    assert (await client.post("/api/v1/opt-outs", json=by_phone, headers=AUTH)).status == 403  # a viewer
    # the next draft honours both
    resp = await client.post("/api/v1/campaigns", json={"policy_id": world["policy"]["id"]}, headers=ALICE)
    assert (await resp.json())["summary"]["skipped"] == {"no_consent": 1, "opted_out": 2}
