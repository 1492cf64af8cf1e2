"""Nothing is ever pushed to a phone that was not proven: profiles staff import carry phones nobody
proved, and those are skipped (``phone_unproven``) unless the import named the official register they
came from -- end to end over HTTP, from the import through the draft and approval to the simulators'
outbox."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.simulators import SimulatorSet
from policy_push.storage.campaign_tables import DeliveryEventRow, DeliveryRow
from policy_push.storage.tables import AuditRow, ResidentRow

from .conftest import Client
from .test_journey import POLICY, STAFF_A, _approver, _campaign, _deliver, _resident, policy_sms

CAROL = "13700137000"
DAVE = "13600136000"
REGISTER = "盘锦市退役军人事务局优抚对象名册"


def _line(phone: str, rid: str = "r-imported-1") -> bytes:
    # one ID number is one person: the second resident is told by id alone
    record = {**{k: v for k, v in _resident().items() if k != "id_number"}, "id": rid, "consent": True,
              "contact": {"phone": phone, "wechat_openid": None, "app_registration_id": None}}  # fmt: skip
    return (json.dumps(record, ensure_ascii=False) + "\n").encode()


async def _import(client: Client, body: bytes, source: str | None = None) -> Any:
    query = {} if source is None else {"phone_source": source}
    resp = await client.post("/api/v1/import/residents", data=body, params=query,
                             headers={**STAFF_A, "Content-Type": "application/x-ndjson"})  # fmt: skip
    return resp.status, await resp.json()


async def _policy(client: Client) -> str:
    assert (await client.put(f"/api/v1/policies/{POLICY['id']}", json=POLICY, headers=STAFF_A)).status == 201
    return str(POLICY["id"])


async def _approve(client: Client, session_factory: async_sessionmaker[AsyncSession], campaign_id: str) -> None:
    approver = await _approver(session_factory)
    resp = await client.post(f"/api/v1/campaigns/{campaign_id}/approve?schedule=true", headers=approver)
    assert resp.status == 200, await resp.text()


async def test_an_imported_phone_nobody_vouched_for_is_never_pushed(
    make_me_client, sims: SimulatorSet, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    client: Client = await make_me_client()
    status, report = await _import(client, _line(CAROL))
    assert status == 200 and report["created"] == 1 and report["phone_source"] is None
    # a second import, of Dave, names its register: the campaign has someone to message
    status, report = await _import(client, _line(DAVE, "r-imported-2"), REGISTER)
    assert status == 200 and report["created"] == 1
    detail = await _campaign(client, await _policy(client))
    assert detail["summary"]["eligible"] == 2
    assert detail["summary"]["to_message"] == {"sms": 1}
    assert detail["summary"]["skipped"] == {"phone_unproven": 1}
    listed = await client.get(f"/api/v1/campaigns/{detail['id']}/recipients", params={"skip_reason": "phone_unproven"},
                              headers=STAFF_A)  # fmt: skip
    skipped = await listed.json()
    assert [(r["profile_id"], r["skip_reason"]) for r in skipped["items"]] == [("r-imported-1", "phone_unproven")], skipped
    # staff cannot put an unproven phone back on the list
    refused = await client.post(f"/api/v1/campaigns/{detail['id']}/include", json={"profile_ids": ["r-imported-1"]},
                                headers=STAFF_A)  # fmt: skip
    assert refused.status == 409, await refused.text()  # the recipient's state stands in the way
    await _approve(client, session_factory, detail["id"])
    assert await _deliver(client, session_factory) == 1
    async with session_factory() as s:
        outbox = (await s.execute(select(DeliveryRow.profile_id, DeliveryRow.status))).all()
    assert [tuple(r) for r in outbox] == [("r-imported-2", "sent")]
    assert policy_sms(sims, CAROL) == []
    assert len(policy_sms(sims, DAVE)) == 1


async def test_an_import_naming_its_register_is_pushed_and_audited(
    make_me_client, sims: SimulatorSet, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    client: Client = await make_me_client()
    status, report = await _import(client, _line(CAROL), f"  {REGISTER} ")
    assert status == 200 and report["phone_source"] == REGISTER
    detail = await _campaign(client, await _policy(client))
    assert detail["summary"]["to_message"] == {"sms": 1}
    assert detail["summary"].get("skipped", {}) == {}
    await _approve(client, session_factory, detail["id"])
    assert await _deliver(client, session_factory) == 1
    assert len(policy_sms(sims, CAROL)) == 1
    async with session_factory() as s:
        assert (await s.execute(select(ResidentRow.phone_source))).scalars().all() == [REGISTER]
        audit = (await s.execute(select(AuditRow.actor, AuditRow.detail).where(AuditRow.action == "resident.created"))).all()
    assert [(a, d) for a, d in audit] == [("bootstrap", {"phone_source": REGISTER})]


async def test_the_same_phone_keeps_its_register_and_a_new_one_loses_it(
    make_me_client, sims: SimulatorSet, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    client: Client = await make_me_client()
    await _import(client, _line(CAROL), REGISTER)
    # a later import of the same phone that names no register changes nothing about it
    status, report = await _import(client, _line(CAROL))
    assert status == 200 and report["unchanged"] == 1
    detail = await _campaign(client, await _policy(client))
    assert detail["summary"]["to_message"] == {"sms": 1}
    await _approve(client, session_factory, detail["id"])
    # approved for Carol's vouched phone; before it goes out an import puts in a phone nobody vouched for
    status, report = await _import(client, _line(DAVE))
    assert status == 200 and report["updated"] == 1
    assert await _deliver(client, session_factory) == 0
    assert policy_sms(sims, CAROL) == [] and policy_sms(sims, DAVE) == []
    async with session_factory() as s:
        rows = (await s.execute(select(DeliveryRow.status, DeliveryRow.provider_code))).all()
        codes = (await s.execute(select(DeliveryEventRow.code).where(DeliveryEventRow.to_status == "cancelled"))).scalars().all()
        assert (await s.execute(select(ResidentRow.phone_source))).scalars().all() == [None]
    assert [r.status for r in rows] == ["cancelled"]
    assert codes == ["PHONE_UNPROVEN"]
    # vouching for the new phone later (same record: unchanged, yet the register is recorded and audited)
    status, report = await _import(client, _line(DAVE), REGISTER)
    assert status == 200 and report["unchanged"] == 1
    async with session_factory() as s:
        assert (await s.execute(select(ResidentRow.phone_source))).scalars().all() == [REGISTER]
        vouched = (await s.execute(select(AuditRow.detail).where(AuditRow.action == "resident.phone_source"))).scalars().all()
    assert vouched == [{"phone_source": REGISTER}]


async def test_a_profile_written_by_staff_api_is_unproven_unless_vouched(make_me_client) -> None:
    client: Client = await make_me_client()
    await _policy(client)
    record = json.loads(_line(CAROL, "r-api-1"))
    assert (await client.post("/api/v1/residents", json=record, headers=STAFF_A)).status == 201
    vouched = json.loads(_line(DAVE, "r-api-2"))
    resp = await client.post("/api/v1/residents", json=vouched, params={"phone_source": REGISTER}, headers=STAFF_A)
    assert resp.status == 201
    detail = await _campaign(client, POLICY["id"])
    assert detail["summary"]["to_message"] == {"sms": 1}
    assert detail["summary"]["skipped"] == {"phone_unproven": 1}


async def test_a_register_name_that_is_no_name_is_refused(make_me_client) -> None:
    client: Client = await make_me_client()
    for bad in ("   ", "x" * 201, "名册\n伪造"):
        status, body = await _import(client, _line(CAROL), bad)
        assert status == 422, (bad, body)
        assert body["errors"][0]["loc"] == ["query", "phone_source"], body
    resp = await client.post("/api/v1/import/policies", data=b"", params={"phone_source": REGISTER},
                             headers={**STAFF_A, "Content-Type": "application/x-ndjson"})  # fmt: skip
    assert resp.status == 422
    assert "policies hold no phones" in (await resp.text())



@pytest.mark.parametrize(("name", "ok"), [
    ("盘锦市市场监管局企业名册", True), (" 名册 ", True), ("a" * 200, True),
    ("", False), ("  ", False), ("\u3000", False), ("\x85", False), ("名\x06册", False), ("a" * 201, False),
])  # fmt: skip
def test_register_names_the_server_accepts_are_the_ones_the_api_document_admits(name: str, ok: bool) -> None:
    import re as _re

    from policy_push.errors import InvalidInput
    from policy_push.importing import PHONE_SOURCE_MAX, PHONE_SOURCE_PATTERN, phone_source_name

    # the OpenAPI document's rule (ECMA-262 and Python read the pattern alike)
    assert (len(name) <= PHONE_SOURCE_MAX and _re.search(PHONE_SOURCE_PATTERN, name) is not None) == ok
    if ok:
        assert phone_source_name(name, "enterprise") == name.strip()
    else:
        with pytest.raises(InvalidInput):
            phone_source_name(name, "enterprise")
