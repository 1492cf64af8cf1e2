"""What the send side refuses for the people who signed up: a phone they did not prove, a category
they did not choose, anything after consent is withdrawn, more than their own weekly cap."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.simulators import SimulatorSet
from policy_push.storage.campaign_tables import DeliveryRow

from .conftest import Client, bearer, sign_in
from .test_journey import ALICE, POLICY, STAFF_A, _approver, _campaign, _deliver, _resident, policy_sms

BOB = "13900139000"


async def _signed_up(client: Client, sims: SimulatorSet, **changes: Any) -> tuple[dict[str, str], str]:
    auth = bearer(await sign_in(client, sims, ALICE))
    link = await (await client.put("/api/v1/me/resident", json=_resident(**changes), headers=auth)).json()
    assert (await client.post("/api/v1/me/consent", json={"given": True, "text_version": "v1"}, headers=auth)).status == 201
    return auth, link["profile_id"]


async def _policy(client: Client, pid: str = POLICY["id"], **changes: Any) -> str:
    assert (await client.put(f"/api/v1/policies/{pid}", json={**POLICY, "id": pid, **changes}, headers=STAFF_A)).status == 201
    return pid


def _sms(sims: SimulatorSet, phone: str) -> list[Any]:
    return policy_sms(sims, phone)


async def test_a_phone_put_in_by_staff_is_not_proven(make_me_client, sims: SimulatorSet) -> None:
    client: Client = await make_me_client()
    _, pid = await _signed_up(client, sims)
    record = await (await client.get(f"/api/v1/residents/{pid}", headers=STAFF_A)).json()
    changed = {**record["resident"], "contact": {"phone": BOB, "wechat_openid": None, "app_registration_id": None}}
    assert (await client.put(f"/api/v1/residents/{pid}", json=changed, headers=STAFF_A)).status == 200
    detail = await _campaign(client, await _policy(client))
    assert detail["summary"]["to_message_total"] == 0
    assert detail["summary"]["skipped"] == {"phone_unproven": 1}
    # Bob proves that phone... but he is not linked to Alice's profile: still not hers to be pushed at
    await sign_in(client, sims, BOB)
    detail = await _campaign(client, POLICY["id"])
    assert detail["summary"]["skipped"] == {"phone_unproven": 1}


async def test_categories_not_chosen_are_not_pushed(make_me_client, sims: SimulatorSet) -> None:
    client: Client = await make_me_client()
    auth, _ = await _signed_up(client, sims)
    assert (await client.put("/api/v1/me/preferences", json={"categories": ["养老服务"]}, headers=auth)).status == 200
    detail = await _campaign(client, await _policy(client))
    assert detail["summary"]["skipped"] == {"opted_out": 1}
    assert (await client.put("/api/v1/me/preferences", json={"categories": ["就业创业"]}, headers=auth)).status == 200
    detail = await _campaign(client, POLICY["id"])
    assert detail["summary"]["to_message"] == {"sms": 1}


async def test_consent_withdrawn_after_approval_stops_the_message(
    make_me_client, sims: SimulatorSet, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    client: Client = await make_me_client()
    auth, _ = await _signed_up(client, sims)
    detail = await _campaign(client, await _policy(client))
    assert detail["summary"]["to_message"] == {"sms": 1}
    approver = await _approver(session_factory)
    assert (await client.post(f"/api/v1/campaigns/{detail['id']}/approve?schedule=true", headers=approver)).status == 200
    withdraw = await client.post("/api/v1/me/consent", json={"given": False, "text_version": "v1", "channel": "app"}, headers=auth)
    assert withdraw.status == 201
    assert await _deliver(client, session_factory) == 0
    assert _sms(sims, ALICE) == []
    async with session_factory() as s:
        statuses = (await s.execute(select(DeliveryRow.status))).scalars().all()
    assert statuses == ["cancelled"]


async def test_a_persons_own_weekly_cap_holds_the_next_message(
    make_me_client, sims: SimulatorSet, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    client: Client = await make_me_client()
    auth, _ = await _signed_up(client, sims)
    assert (await client.put("/api/v1/me/preferences", json={"weekly_max": 1}, headers=auth)).status == 200
    approver = await _approver(session_factory)
    for pid in (await _policy(client), await _policy(client, "pj-test-veterans-2", title="盘锦市退役军人就业补贴")):
        detail = await _campaign(client, pid)
        assert (await client.post(f"/api/v1/campaigns/{detail['id']}/approve?schedule=true", headers=approver)).status == 200
    await _deliver(client, session_factory)
    assert len(_sms(sims, ALICE)) == 1
    async with session_factory() as s:
        rows = (await s.execute(select(DeliveryRow.status, DeliveryRow.waiting_for))).all()
    assert sorted(tuple(r) for r in rows) == [("created", "frequency_cap"), ("sent", None)]
