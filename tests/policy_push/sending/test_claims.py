"""The outbox and claims: idempotent creation, the unique constraint, the approval check, guarded
moves, leases on the database's clock, and what a claim re-checks."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select, update

from policy_push.errors import ConfigurationError
from policy_push.sending import SendRules
from policy_push.sending.claims import claim, release, renew
from policy_push.sending.rules import parse_quiet_hours
from policy_push.sending.starting import start_campaign, start_due_campaigns
from policy_push.statuses import CampaignState, Code, DeliveryStatus, EventSource, OptOutSource
from policy_push.storage import contacts, deliveries
from policy_push.storage.campaign_tables import CampaignMessageRow, CampaignRow, DeliveryEventRow, DeliveryRow
from policy_push.storage.deliveries import Move
from policy_push.storage.sql import begin_write, database_now

from .fixtures import DAYTIME
from .seed import seed_campaign

RULES = SendRules(windows=SendRules().windows, lease_s=30.0)


async def _count(sessions, **where) -> int:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        stmt = select(func.count()).select_from(DeliveryRow)
        for k, v in where.items():
            stmt = stmt.where(getattr(DeliveryRow, k) == v)
        return int(await s.scalar(stmt) or 0)


async def _claim(sessions, cipher, *, now=DAYTIME, worker="w", limit=10, rules=RULES):  # type: ignore[no-untyped-def]
    return await claim(sessions, cipher, now=now, worker=worker, limit=limit, rules=rules, providers={"sms": "aliyun_sms"})


def test_quiet_hours_spec() -> None:
    q = parse_quiet_hours("21:00-08:00", "Asia/Shanghai")
    assert q is not None and (q.start.hour, q.end.hour) == (21, 8)
    assert parse_quiet_hours("", "Asia/Shanghai") is None
    with pytest.raises(ConfigurationError, match="HH:MM-HH:MM"):
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
    await start_due_campaigns(session_factory, now=DAYTIME, rules=RULES)
    # whichever campaign started first took the rows; uq_deliveries_once kept the other from repeating them
    counts = sorted([await _count(session_factory, campaign_id=c.campaign_id) for c in (first, second)])
    assert counts == [0, 10]


async def test_a_campaign_whose_approval_no_longer_matches_is_refused(db_settings, session_factory, cipher) -> None:
    seeded = await seed_campaign(session_factory, cipher, db_settings, n=5)
    async with session_factory() as s, s.begin():
        await s.execute(update(CampaignMessageRow).where(CampaignMessageRow.channel == "sms").values(body={"text": "changed"}))
    assert await start_due_campaigns(session_factory, now=DAYTIME, rules=RULES) == []
    assert await _count(session_factory) == 0
    async with session_factory() as s:
        assert await s.scalar(select(CampaignRow.state).where(CampaignRow.id == seeded.campaign_id)) == CampaignState.SCHEDULED


async def test_final_statuses_never_change_and_refusals_are_recorded(db_settings, session_factory, cipher) -> None:
    await seed_campaign(session_factory, cipher, db_settings, n=1)
    await start_due_campaigns(session_factory, now=DAYTIME, rules=RULES)
    taken = await _claim(session_factory, cipher)
    assert taken is not None
    (row,) = [o.row for o in taken.rows]
    async with session_factory() as s, s.begin():
        await begin_write(s)
        applied = await deliveries.move(s, [Move(row.id, DeliveryStatus.DELIVERED)], allowed_from={DeliveryStatus.SENDING},
                                        source=EventSource.RECEIPT, now=DAYTIME)  # fmt: skip
        assert applied == {row.id: DeliveryStatus.SENDING}
        again = await deliveries.move(
            s, [Move(row.id, DeliveryStatus.PERMANENT_FAILURE), Move(row.id, DeliveryStatus.SENT)],
            allowed_from={DeliveryStatus.SENT, DeliveryStatus.SENDING, DeliveryStatus.DELIVERED},
            source=EventSource.RECEIPT, now=DAYTIME,
        )  # fmt: skip
        assert again == {}
    async with session_factory() as s:
        assert await s.scalar(select(DeliveryRow.status)) == DeliveryStatus.DELIVERED
        trail = (await s.execute(select(DeliveryEventRow.from_status, DeliveryEventRow.to_status, DeliveryEventRow.code)
                                 .order_by(DeliveryEventRow.id))).all()  # fmt: skip
    assert trail[-2:] == [("delivered", None, "ignored:permanent_failure"), ("delivered", None, "ignored:sent")]


async def test_a_claim_is_a_lease_on_the_database_clock(db_settings, session_factory, cipher) -> None:
    await seed_campaign(session_factory, cipher, db_settings, n=3)
    await start_due_campaigns(session_factory, now=DAYTIME, rules=RULES)
    # the ticks' clock (DAYTIME, months away) plays no part in the lease: it is the database's
    taken = await _claim(session_factory, cipher)
    assert taken is not None and len(taken.rows) == 3
    async with session_factory() as s:
        db_now = await database_now(s)
        rows = (await s.execute(select(DeliveryRow.claim_id, DeliveryRow.claimed_by, DeliveryRow.lease_until,
                                       DeliveryRow.unsure_since, DeliveryRow.provider))).all()  # fmt: skip
    for claim_id, by, until, unsure, provider in rows:
        assert (claim_id, by, provider) == (taken.id, "w", "aliyun_sms")
        assert db_now + dt.timedelta(seconds=25) < until <= db_now + dt.timedelta(seconds=31)
        assert unsure is None  # no provider call yet: a lapse now would be settled without asking anyone
    async with session_factory() as s:
        assert await deliveries.lapsed(s, db_now=db_now, limit=10) == []
        later = db_now + dt.timedelta(seconds=31)
        assert len(await deliveries.lapsed(s, db_now=later, limit=10)) == 3
    # the confirmation right before the call marks the rows unsure from then; a later one keeps the first mark
    ids = {o.row.id for o in taken.rows}
    assert await renew(session_factory, {taken.id: ids}, lease_s=30, calling=True) == ids
    async with session_factory() as s:
        first = set((await s.execute(select(DeliveryRow.unsure_since))).scalars())
    assert len(first) == 1 and abs((next(iter(first)) - db_now).total_seconds()) < 5
    await renew(session_factory, {taken.id: ids}, lease_s=30, calling=True)
    async with session_factory() as s:
        assert set((await s.execute(select(DeliveryRow.unsure_since))).scalars()) == first


async def test_renewal_and_records_are_guarded_by_the_claim(db_settings, session_factory, cipher) -> None:
    """A row settled and claimed anew is no longer the old claim's: it cannot renew or record it."""
    await seed_campaign(session_factory, cipher, db_settings, n=2)
    await start_due_campaigns(session_factory, now=DAYTIME, rules=RULES)
    old = await _claim(session_factory, cipher)
    assert old is not None
    ids = {o.row.id for o in old.rows}
    assert await renew(session_factory, {old.id: ids}, lease_s=30) == ids
    # the leader settles one row (its lease lapsed, say) and another worker claims it
    gone = sorted(ids)[0]
    async with session_factory() as s, s.begin():
        await begin_write(s)
        await deliveries.move(s, [Move(gone, DeliveryStatus.CREATED, claim_id=old.id)], allowed_from={DeliveryStatus.SENDING},
                              source=EventSource.SETTLE, now=DAYTIME)  # fmt: skip
    new = await _claim(session_factory, cipher, worker="other")
    assert new is not None and [o.row.id for o in new.rows] == [gone]
    assert await renew(session_factory, {old.id: ids}, lease_s=30) == ids - {gone}
    async with session_factory() as s, s.begin():
        await begin_write(s)
        late = await deliveries.move(s, [Move(gone, DeliveryStatus.SENT, claim_id=old.id)], allowed_from={DeliveryStatus.SENDING},
                                     source=EventSource.DISPATCH, now=DAYTIME)  # fmt: skip
        assert late == {}
    # rows never sent go back under the claim that took them, and only those
    assert await release(session_factory, old.id, ids, now=DAYTIME) == 1
    assert await _count(session_factory, status=DeliveryStatus.SENDING) == 1


async def test_concurrent_claims_never_take_a_row_twice(db_settings, session_factory, cipher) -> None:
    await seed_campaign(session_factory, cipher, db_settings, n=1000)
    await start_due_campaigns(session_factory, now=DAYTIME, rules=RULES)

    async def worker(name: str) -> list[str]:
        got: list[str] = []
        while batch := await _claim(session_factory, cipher, worker=name, limit=37):
            got += [o.row.id for o in batch.rows]
            assert all(o.address and o.address.startswith("139") for o in batch.rows)
        return got

    results = await asyncio.gather(*(worker(f"w{i}") for i in range(4)))
    claimed = [i for ids in results for i in ids]
    assert len(claimed) == len(set(claimed)) == 1000
    assert await _count(session_factory, status=DeliveryStatus.SENDING) == 1000


async def test_a_claim_cancels_what_changed_since_approval(db_settings, session_factory, cipher) -> None:
    """Opted out since, or the campaign cancelled: the row is cancelled, never sent (invariant 5)."""
    seeded = await seed_campaign(session_factory, cipher, db_settings, n=3)
    await start_due_campaigns(session_factory, now=DAYTIME, rules=RULES)
    async with session_factory() as s, s.begin():
        await contacts.record_opt_out(s, profile_kind="resident", profile_id="r-0000001", channel="*",
                                      source=OptOutSource.STAFF, actor="t", at=DAYTIME)  # fmt: skip
    taken = await _claim(session_factory, cipher)
    assert taken is not None and len(taken.rows) == 2
    async with session_factory() as s:
        code = await s.scalar(select(DeliveryEventRow.code).where(DeliveryEventRow.to_status == DeliveryStatus.CANCELLED))
    assert code == Code.OPTED_OUT
    other = await seed_campaign(session_factory, cipher, db_settings, n=2, start=10, policy_seq=2)
    await start_due_campaigns(session_factory, now=DAYTIME, rules=RULES)
    async with session_factory() as s, s.begin():
        await s.execute(update(CampaignRow).where(CampaignRow.id == other.campaign_id).values(state=CampaignState.CANCELLED))
    assert await _claim(session_factory, cipher) is None
    assert await _count(session_factory, campaign_id=other.campaign_id, status=DeliveryStatus.CANCELLED) == 2
    assert seeded.campaign_id != other.campaign_id


async def test_a_row_reached_in_quiet_hours_waits_for_the_morning(db_settings, session_factory, cipher) -> None:
    """Planned before 21:00 but claimed after it: the claim re-checks quiet hours (invariant 5)."""
    await seed_campaign(session_factory, cipher, db_settings, n=3)
    await start_due_campaigns(session_factory, now=DAYTIME, rules=RULES)
    local = DAYTIME.astimezone(ZoneInfo("Asia/Shanghai"))
    night = local.replace(hour=22, minute=30)
    assert await _claim(session_factory, cipher, now=night) is None
    async with session_factory() as s:
        rows = (await s.execute(select(DeliveryRow.status, DeliveryRow.not_before, DeliveryRow.waiting_for))).all()
    morning = (night + dt.timedelta(days=1)).replace(hour=8, minute=0)
    assert {(st, nb.astimezone(ZoneInfo("Asia/Shanghai")), w) for st, nb, w in rows} == {("created", morning, "quiet_hours")}
    taken = await _claim(session_factory, cipher, now=morning)
    assert taken is not None and len(taken.rows) == 3


async def test_urgent_policies_are_claimed_in_quiet_hours(db_settings, session_factory, cipher) -> None:
    seeded = await seed_campaign(session_factory, cipher, db_settings, n=2)
    async with session_factory() as s, s.begin():
        await s.execute(update(CampaignRow).where(CampaignRow.id == seeded.campaign_id).values(urgent=True))
    await start_due_campaigns(session_factory, now=DAYTIME, rules=RULES)
    night = DAYTIME.astimezone(ZoneInfo("Asia/Shanghai")).replace(hour=23)
    taken = await _claim(session_factory, cipher, now=night)
    assert taken is not None and len(taken.rows) == 2
