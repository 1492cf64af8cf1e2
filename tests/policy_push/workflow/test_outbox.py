"""The outbox: guarded moves, idempotent creation, the unique constraint, claims, the approval check."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select, update

from policy_push.statuses import CampaignState, DeliveryStatus
from policy_push.storage.campaign_tables import CampaignMessageRow, CampaignRow, DeliveryEventRow, DeliveryRow
from policy_push.workflow.approval import verify_approval
from policy_push.workflow.claim import claim_batch
from policy_push.workflow.outbox import EventSource, Move, SendRules, begin_write, move, parse_quiet_hours
from policy_push.workflow.starting import start_campaign, start_due_campaigns

from .dispatch_fixtures import DAYTIME
from .seed import always_approved, seed_campaign

RULES = SendRules(windows=SendRules().windows)


async def _count(sessions, **where) -> int:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        stmt = select(func.count()).select_from(DeliveryRow)
        for k, v in where.items():
            stmt = stmt.where(getattr(DeliveryRow, k) == v)
        return int(await s.scalar(stmt) or 0)


def test_quiet_hours_spec() -> None:
    q = parse_quiet_hours("21:00-08:00", "Asia/Shanghai")
    assert q is not None and (q.start.hour, q.end.hour) == (21, 8)
    assert parse_quiet_hours("", "Asia/Shanghai") is None
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        parse_quiet_hours("9pm", "Asia/Shanghai")


async def test_rerunning_the_start_creates_nothing_twice(db_settings, session_factory, cipher) -> None:
    seeded = await seed_campaign(session_factory, cipher, db_settings, n=2500)
    assert await start_campaign(session_factory, seeded.campaign_id, now=DAYTIME, rules=RULES)
    assert await _count(session_factory) == 2500
    # a crash half-way: the last batches are gone and the campaign is still scheduled
    async with session_factory() as s, s.begin():
        await s.execute(delete(DeliveryRow).where(DeliveryRow.profile_id > "r-0001700"))
        await s.execute(update(CampaignRow).values(state=CampaignState.SCHEDULED))
    assert await start_campaign(session_factory, seeded.campaign_id, now=DAYTIME, rules=RULES)
    assert await _count(session_factory) == 2500
    async with session_factory() as s:
        per_profile = Counter((await s.execute(select(DeliveryRow.profile_id))).scalars().all())
    assert set(per_profile.values()) == {1}


async def test_nobody_hears_of_a_policy_twice_on_a_channel_across_campaigns(db_settings, session_factory, cipher) -> None:
    first = await seed_campaign(session_factory, cipher, db_settings, n=10, policy_seq=3)
    second = await seed_campaign(session_factory, cipher, db_settings, n=10, policy_seq=3, existing_profiles=True)
    await start_due_campaigns(session_factory, now=DAYTIME, rules=RULES, verify=always_approved)
    # whichever campaign started first took the rows; uq_deliveries_once kept the other from repeating them
    counts = sorted([await _count(session_factory, campaign_id=c.campaign_id) for c in (first, second)])
    assert counts == [0, 10]


async def test_a_campaign_whose_approval_no_longer_matches_is_refused(db_settings, session_factory, cipher) -> None:
    seeded = await seed_campaign(session_factory, cipher, db_settings, n=5)
    async with session_factory() as s, s.begin():
        await s.execute(update(CampaignMessageRow).where(CampaignMessageRow.channel == "sms").values(body={"text": "changed"}))
    assert await start_due_campaigns(session_factory, now=DAYTIME, rules=RULES, verify=verify_approval) == []
    assert await _count(session_factory) == 0
    async with session_factory() as s:
        assert await s.scalar(select(CampaignRow.state).where(CampaignRow.id == seeded.campaign_id)) == CampaignState.SCHEDULED


async def test_final_statuses_never_change_and_refusals_are_recorded(db_settings, session_factory, cipher) -> None:
    await seed_campaign(session_factory, cipher, db_settings, n=1)
    await start_due_campaigns(session_factory, now=DAYTIME, rules=RULES, verify=always_approved)
    (row,) = await claim_batch(session_factory, cipher, now=DAYTIME, worker_id="w", limit=10)
    async with session_factory() as s, s.begin():
        await begin_write(s)
        applied = await move(s, [Move(row.id, DeliveryStatus.DELIVERED)], allowed_from={DeliveryStatus.SENDING},
                             source=EventSource.RECEIPT, now=DAYTIME)  # fmt: skip
        assert applied == {row.id: DeliveryStatus.SENDING}
        again = await move(s, [Move(row.id, DeliveryStatus.PERMANENT_FAILURE), Move(row.id, DeliveryStatus.SENT)],
                           allowed_from={DeliveryStatus.SENT, DeliveryStatus.SENDING, DeliveryStatus.DELIVERED},
                           source=EventSource.RECEIPT, now=DAYTIME)  # fmt: skip
        assert again == {}
    async with session_factory() as s:
        assert await s.scalar(select(DeliveryRow.status)) == "delivered"
        trail = (await s.execute(select(DeliveryEventRow.from_status, DeliveryEventRow.to_status, DeliveryEventRow.code)
                                 .order_by(DeliveryEventRow.id))).all()  # fmt: skip
    assert trail[-2:] == [("delivered", None, "ignored:permanent_failure"), ("delivered", None, "ignored:sent")]


async def test_concurrent_claims_never_take_a_row_twice(db_settings, session_factory, cipher) -> None:
    await seed_campaign(session_factory, cipher, db_settings, n=1000)
    await start_due_campaigns(session_factory, now=DAYTIME, rules=RULES, verify=always_approved)

    async def worker(name: str) -> list[str]:
        got: list[str] = []
        while batch := await claim_batch(session_factory, cipher, now=DAYTIME, worker_id=name, limit=37):
            got += [r.id for r in batch]
            assert all(r.address and r.address.startswith("139") for r in batch)
        return got

    results = await asyncio.gather(*(worker(f"w{i}") for i in range(4)))
    claimed = [i for ids in results for i in ids]
    assert len(claimed) == len(set(claimed)) == 1000
    assert await _count(session_factory, status="sending") == 1000


async def test_a_row_reached_in_quiet_hours_waits_for_the_morning(db_settings, session_factory, cipher) -> None:
    """Planned before 21:00 but claimed after it: the claim re-checks quiet hours (invariant 5)."""
    await seed_campaign(session_factory, cipher, db_settings, n=3)
    await start_due_campaigns(session_factory, now=DAYTIME, rules=RULES, verify=always_approved)
    local = DAYTIME.astimezone(ZoneInfo("Asia/Shanghai"))
    night = local.replace(hour=22, minute=30)
    assert await claim_batch(session_factory, cipher, now=night, worker_id="w", limit=10, rules=RULES) == []
    async with session_factory() as s:
        rows = (await s.execute(select(DeliveryRow.status, DeliveryRow.not_before, DeliveryRow.waiting_for))).all()
    morning = (night + dt.timedelta(days=1)).replace(hour=8, minute=0)
    assert {(st, nb.astimezone(ZoneInfo("Asia/Shanghai")), w) for st, nb, w in rows} == {("created", morning, "quiet_hours")}
    # without the rules (or once the morning comes) the rows are claimed
    assert len(await claim_batch(session_factory, cipher, now=morning, worker_id="w", limit=10, rules=RULES)) == 3


async def test_urgent_policies_are_claimed_in_quiet_hours(db_settings, session_factory, cipher) -> None:
    seeded = await seed_campaign(session_factory, cipher, db_settings, n=2)
    async with session_factory() as s, s.begin():
        await s.execute(update(CampaignRow).where(CampaignRow.id == seeded.campaign_id).values(urgent=True))
    await start_due_campaigns(session_factory, now=DAYTIME, rules=RULES, verify=always_approved)
    night = DAYTIME.astimezone(ZoneInfo("Asia/Shanghai")).replace(hour=23)
    assert len(await claim_batch(session_factory, cipher, now=night, worker_id="w", limit=10, rules=RULES)) == 2
