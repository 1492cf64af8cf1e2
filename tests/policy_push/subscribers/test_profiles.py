"""A person's own profile, "policies for me now", enterprise contacts, and the one rule under all of
them: a session reaches that person's data and nothing else."""

from __future__ import annotations

from typing import Any

from channels.simulators import SimulatorSet
from tests.policy_push.web.conftest import sample_records

from .conftest import STAFF, Client, bearer, sign_in

DAY = "2026-06-15"  # most sample policies are open then
ALICE, BOB, CAROL = "13800138000", "13900139000", "13700137000"


def _own(record: dict[str, Any]) -> dict[str, Any]:
    """A sample record as a person registers it: no id, contact or consent of theirs to type."""
    return {k: v for k, v in record.items() if k not in ("id", "contact", "consent")}


async def _policies(client: Client) -> None:
    for p in sample_records("policies.jsonl"):
        resp = await client.put(f"/api/v1/policies/{p['id']}", json=p, headers=STAFF)
        assert resp.status in (200, 201), await resp.text()


def _resident(**changes: Any) -> dict[str, Any]:
    # r-000002 holds sensitive tags (低保, 残疾): they must never show as reasons on a page
    return {**_own(sample_records("residents.jsonl", 2)[1]), **changes}


async def test_resident_registers_sees_policies_with_public_reasons_only(client: Client, sims: SimulatorSet) -> None:
    await _policies(client)
    token = await sign_in(client, sims, ALICE)
    assert (await client.get("/api/v1/me/policies", headers=bearer(token))).status == 404  # no profile yet
    resp = await client.put("/api/v1/me/resident", json=_resident(), headers=bearer(token))
    assert resp.status == 200, await resp.text()
    link = await resp.json()
    assert link["role"] == "owner" and link["state"] == "active"
    profile = await (await client.get("/api/v1/me/profile", headers=bearer(token))).json()
    assert profile["profile"]["contact"]["phone"] == ALICE  # the proven phone, not the sample's
    assert profile["profile"]["consent"] is False  # not until given
    resp = await client.get(f"/api/v1/me/policies?date={DAY}", headers=bearer(token))
    assert resp.status == 200
    body = await resp.json()
    assert body["items"], body
    for item in body["items"] + body["may_qualify"]:
        assert item["policy_id"] and item["title"] and "how_to_apply" in item
        text = " ".join(item["reasons"]) + " ".join(item.get("advice", []))
        for word in ("低保", "特困", "残疾"):
            assert word not in text, item
    assert any(item["reasons"] for item in body["items"])
    assert all(i["deadline"] is None or i["deadline"] >= DAY for i in body["items"])


async def test_profile_change_is_rechecked_at_once(client: Client, sims: SimulatorSet) -> None:
    await _policies(client)
    token = await sign_in(client, sims, ALICE)
    base = _resident(tags=[], birth_date=None, id_number=None)
    assert (await client.put("/api/v1/me/resident", json=base, headers=bearer(token))).status == 200
    before = await (await client.get(f"/api/v1/me/policies?date={DAY}", headers=bearer(token))).json()
    # the "add X" list names fields to fill in, each with a link to the field
    adds = [a for m in before["may_qualify"] for a in m["add"]]
    assert adds and all(a["fill_in"].startswith("/me/profile#field-") and a["label"] for a in adds)
    veteran = {**base, "tags": ["退役军人"], "birth_date": "1980-05-01", "hukou_region": "211103"}
    assert (await client.put("/api/v1/me/resident", json=veteran, headers=bearer(token))).status == 200
    after = await (await client.get(f"/api/v1/me/policies?date={DAY}", headers=bearer(token))).json()
    assert {i["policy_id"] for i in after["items"]} != {i["policy_id"] for i in before["items"]}
    assert "pj-tyjrj-2026-002" in {i["policy_id"] for i in after["items"]}


async def test_contact_and_consent_cannot_be_typed_in(client: Client, sims: SimulatorSet) -> None:
    token = await sign_in(client, sims, ALICE)
    for field, value in (("contact", {"phone": BOB}), ("consent", True)):
        resp = await client.put("/api/v1/me/resident", json=_resident(**{field: value}), headers=bearer(token))
        assert resp.status == 422
        assert (await resp.json())["errors"][0]["loc"] == ["body", field]


async def test_a_session_reaches_only_its_own_person(client: Client, sims: SimulatorSet) -> None:
    alice = await sign_in(client, sims, ALICE)
    bob = await sign_in(client, sims, BOB)
    link = await (await client.put("/api/v1/me/resident", json=_resident(), headers=bearer(alice))).json()
    other = f"?profile_kind=resident&profile_id={link['profile_id']}"
    for path in ("/api/v1/me/profile", "/api/v1/me/policies", "/api/v1/me/preferences"):
        resp = await client.get(path + other, headers=bearer(bob))
        assert resp.status == 404, path
    resp = await client.put("/api/v1/me/preferences" + other, json={"weekly_max": 1}, headers=bearer(bob))
    assert resp.status == 404
    resp = await client.post("/api/v1/me/consent" + other, json={"given": False, "text_version": "v1"}, headers=bearer(bob))
    assert resp.status == 404
    export = await (await client.get("/api/v1/me/export", headers=bearer(bob))).json()
    assert export["profiles"] == [] and link["profile_id"] not in str(export)
    # Alice's own reads still work, and Bob's erasure does not touch her
    assert (await client.delete("/api/v1/me", headers=bearer(bob))).status == 200
    assert (await client.get("/api/v1/me/profile", headers=bearer(alice))).status == 200


async def test_second_enterprise_contact_needs_the_first_ones_approval(client: Client, sims: SimulatorSet) -> None:
    ent = sample_records("enterprises.jsonl", 1)[0]
    alice, bob_t, carol_t = [await sign_in(client, sims, p) for p in (ALICE, BOB, CAROL)]
    record = {**_own(ent), "id": ent["id"]}
    first = await client.put("/api/v1/me/enterprise", json=record, headers=bearer(alice))
    assert first.status == 200 and (await first.json())["role"] == "owner"
    second = await client.put("/api/v1/me/enterprise", json=record, headers=bearer(bob_t))
    assert second.status == 202
    pending = await second.json()
    assert pending["state"] == "pending"
    q = f"?profile_kind=enterprise&profile_id={ent['id']}"
    assert (await client.get("/api/v1/me/profile" + q, headers=bearer(bob_t))).status == 404
    # Carol is no owner: she cannot approve Bob
    resp = await client.post(f"/api/v1/me/contacts/{pending['link_id']}/approve", headers=bearer(carol_t))
    assert resp.status == 404
    me = await (await client.get("/api/v1/me", headers=bearer(alice))).json()
    assert [p["link_id"] for p in me["pending_contacts"]] == [pending["link_id"]]
    assert BOB not in str(me["pending_contacts"])  # masked
    resp = await client.post(f"/api/v1/me/contacts/{pending['link_id']}/approve", headers=bearer(alice))
    assert resp.status == 200 and (await resp.json())["state"] == "active"
    assert (await client.get("/api/v1/me/profile" + q, headers=bearer(bob_t))).status == 200
    # a third asks; staff decide (refuse) with the staff token
    third = await (await client.put("/api/v1/me/enterprise", json=record, headers=bearer(carol_t))).json()
    listed = await (await client.get("/api/v1/subscriber-links", headers=STAFF)).json()
    assert [(i["link_id"], i["has_owner"]) for i in listed["items"]] == [(third["link_id"], True)]
    assert CAROL not in str(listed) and "****" in listed["items"][0]["phone"]
    # a misspelt decision decides nothing (it used to refuse: anything but "approve" did)
    for url, headers in ((f"/api/v1/subscriber-links/{third['link_id']}/aprove", STAFF),
                         (f"/api/v1/me/contacts/{third['link_id']}/aprove", bearer(alice))):
        resp = await client.post(url, headers=headers)
        assert resp.status == 422 and (await resp.json())["errors"][0]["loc"] == ["path", "decision"]
    listed = await (await client.get("/api/v1/subscriber-links", headers=STAFF)).json()
    assert [i["link_id"] for i in listed["items"]] == [third["link_id"]]  # still pending
    resp = await client.post(f"/api/v1/subscriber-links/{third['link_id']}/refuse", headers=STAFF)
    assert resp.status == 200 and (await resp.json())["state"] == "refused"
    assert (await client.get("/api/v1/me/profile" + q, headers=bearer(carol_t))).status == 404


async def test_imported_enterprise_is_claimed_by_its_registered_phone_only(client: Client, sims: SimulatorSet) -> None:
    ent = sample_records("enterprises.jsonl", 1)[0]
    ent = {**ent, "contact": {"phone": CAROL, "wechat_openid": None, "app_registration_id": None}}
    assert (await client.put(f"/api/v1/enterprises/{ent['id']}", json=ent, headers=STAFF)).status == 201
    bob = await sign_in(client, sims, BOB)
    record = {**_own(ent), "id": ent["id"]}
    resp = await client.put("/api/v1/me/enterprise", json=record, headers=bearer(bob))
    assert resp.status == 202  # not its registered phone: staff must approve
    carol = await sign_in(client, sims, CAROL)
    resp = await client.put("/api/v1/me/enterprise", json=record, headers=bearer(carol))
    assert resp.status == 200 and (await resp.json())["role"] == "owner"


async def test_a_profile_written_by_another_process_is_caught_up(make_me_client, sims: SimulatorSet) -> None:
    """A resident registered, then their profile rewritten by a CLI import beside the server: the index of
    this process catches up from the change feed before answering, instead of failing. The periodic
    follow_changes tick is kept out of the way (once an hour), so only the request's catch-up can do it."""
    client: Client = await make_me_client(follow_changes_s=3600.0)
    from policy_push.runtime import Runtime
    from policy_push.service import Service
    from policy_push.web.keys import cipher_key, engine_key, refdata_key, session_factory_key, settings_key

    await _policies(client)
    token = await sign_in(client, sims, ALICE)
    link = await (await client.put("/api/v1/me/resident", json=_resident(), headers=bearer(token))).json()
    app = client.app
    other = Service(Runtime(app[settings_key], app[engine_key], app[session_factory_key], app[cipher_key], app[refdata_key]))
    record = await (await client.get("/api/v1/me/profile", headers=bearer(token))).json()
    fresh = {**record["profile"], "id": f"{link['profile_id']}-2", "id_number": None}
    await other.put_profile("resident", fresh["id"], fresh, actor="cli")  # no index in that "process"
    async with app[session_factory_key]() as s, s.begin():
        from sqlalchemy import update

        from policy_push.storage.subscriber_tables import SubscriberLinkRow

        await s.execute(update(SubscriberLinkRow.__table__).values(profile_id=fresh["id"]))
    resp = await client.get(f"/api/v1/me/policies?date={DAY}", headers=bearer(token))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["profile_id"] == fresh["id"]
