"""Issue 13 in the service: a policy without criteria (everyone of its audience is eligible) is ranked by
its text, every record says why (the shared terms), and a message can quote that line."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.storage.campaign_tables import CampaignRecipientRow

from .conftest import AUTH, VOUCHED, Client, sample_records

pytestmark = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
ALICE = {**AUTH, "X-Staff-Member": "alice"}


async def test_a_policy_without_criteria_is_ranked_and_explained(
    client: Client, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    policy = next(p for p in sample_records("policies.jsonl") if p["id"] == "pj-scjgj-2026-008")
    assert not policy.get("criteria")
    assert (await client.put(f"/api/v1/policies/{policy['id']}", json=policy, headers=ALICE)).status == 201
    for ent in sample_records("enterprises.jsonl", 60):
        assert (await client.post("/api/v1/enterprises", json=ent, headers=AUTH, params=VOUCHED)).status == 201
    page = await (await client.get(f"/api/v1/policies/{policy['id']}/matches", params={"limit": 60}, headers=AUTH)).json()
    items = page["items"]
    assert page["no_criteria"] and len(items) == 60
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) > 5  # ranked by text, not a tie
    with_reason = [i for i in items if i["reasons"]]
    assert len(with_reason) >= len(items) // 2 and all("涉及" in i["reasons"][0] for i in with_reason)
    campaign = await client.post("/api/v1/campaigns", json={"policy_id": policy["id"]}, headers=ALICE)
    assert campaign.status == 201
    detail = await campaign.json()
    sms = detail["messages"]["sms"]
    # the preview shows what the whole campaign will be billed: every SMS recipient's segments
    assert sms["billed_segments"] >= detail["summary"]["to_message"]["sms"] >= 1
    assert sms["billed_segments"] <= sms["max_segments"] * detail["summary"]["to_message"]["sms"]
    async with session_factory() as session:
        quoted = list(await session.scalars(select(CampaignRecipientRow.message_reason)))
    assert any(q and "涉及" in q for q in quoted)
