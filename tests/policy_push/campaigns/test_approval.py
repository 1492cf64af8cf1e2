"""Four eyes, the approval hash, and every change after approval returning the campaign to draft."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.campaigns import (
    approval_hash,
    approve,
    cancel,
    exclude_recipients,
    include_recipients,
    prepare_campaign,
    rerender_messages,
    schedule,
    set_send_time,
    verify_approval,
)
from policy_push.config import Settings
from policy_push.errors import Conflict, NotFound, SelfApproval, WrongState
from policy_push.errors import InvalidInput as BadWorkflowInput
from policy_push.security import PiiCipher
from policy_push.statuses import CampaignState
from policy_push.storage import AuditLog
from policy_push.storage.campaign_tables import CampaignMessageRow, CampaignRecipientRow
from policy_push.storage.campaigns import get as get_campaign
from policy_push.storage.tables import utcnow
from tests.factories import make_enterprise, make_policy

from .support import FakeMatcher, store_enterprises, store_policy

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def campaign(session_factory: Sessions, cipher: PiiCipher, settings: Settings) -> tuple[str, list[str]]:
    """A draft prepared by alice: three eligible, one may-qualify, one without consent."""
    policy = make_policy()
    await store_policy(session_factory, policy)
    profiles = [make_enterprise() for _ in range(4)] + [make_enterprise(consent=False)]
    await store_enterprises(session_factory, cipher, profiles)
    ids = [p.id for p in profiles]
    matcher = FakeMatcher()
    matcher.set(policy.id, [(ids[0], 0.9), (ids[1], 0.8), (ids[2], 0.7), (ids[4], 0.6)], [(ids[3], ["employees"])])
    prepared = await prepare_campaign(session_factory, matcher, policy.id, prepared_by="alice", settings=settings)
    assert prepared is not None
    return prepared.id, ids


async def _state(sessions: Sessions, cid: str) -> str:
    async with sessions() as session:
        return (await get_campaign(session, cid)).state


async def test_preparer_cannot_approve(session_factory: Sessions, campaign: tuple[str, list[str]]) -> None:
    cid, _ = campaign
    for same in ("alice", " Alice "):
        with pytest.raises(SelfApproval):
            async with session_factory() as session, session.begin():
                await approve(session, cid, approver=same)
    assert await _state(session_factory, cid) == "draft"


async def test_approval_records_who_when_and_hash(session_factory: Sessions, campaign: tuple[str, list[str]]) -> None:
    cid, _ = campaign
    async with session_factory() as session, session.begin():
        expected = await approval_hash(session, cid)
        row = await approve(session, cid, approver="bob")
    assert (row.state, row.approved_by, row.approval_sha256) == ("approved", "bob", expected)
    assert row.approved_at is not None and len(expected) == 64
    async with session_factory() as session:
        assert await verify_approval(session, cid)
        entries = await AuditLog(session).list(entity_type="campaign", entity_id=cid)
    assert entries[0].action == "campaign.approve" and entries[0].actor == "bob"
    assert entries[0].detail["sha256"] == expected
    with pytest.raises(WrongState, match="is approved; cannot approve"):
        async with session_factory() as session, session.begin():
            await approve(session, cid, approver="carol")


@pytest.mark.parametrize("change", ["exclude", "include", "send_time", "rerender"])
async def test_any_change_after_approval_returns_to_draft(
    session_factory: Sessions, campaign: tuple[str, list[str]], settings: Settings, change: str
) -> None:
    cid, ids = campaign
    async with session_factory() as session, session.begin():
        await approve(session, cid, approver="bob", and_schedule=True)
    assert await _state(session_factory, cid) == "scheduled"
    async with session_factory() as session, session.begin():
        if change == "exclude":
            await exclude_recipients(session, cid, [ids[0]], actor="carol")
        elif change == "include":
            await include_recipients(session, cid, [ids[3]], actor="carol")
        elif change == "send_time":
            await set_send_time(session, cid, utcnow() + dt.timedelta(days=1), actor="carol")
        else:
            changed = await rerender_messages(
                session, cid, settings=settings.model_copy(update={"public_base_url": "https://zc.pj.gov.cn"}), actor="carol"
            )
            assert changed
    async with session_factory() as session:
        row = await get_campaign(session, cid)
        assert (row.state, row.approved_by, row.approval_sha256) == ("draft", None, None)
        assert not await verify_approval(session, cid)
        actions = [e.action for e in await AuditLog(session).list(entity_type="campaign", entity_id=cid)]
    assert "campaign.back_to_draft" in actions


async def test_a_change_that_changes_nothing_keeps_the_approval(session_factory: Sessions, campaign: tuple[str, list[str]], settings: Settings) -> None:
    cid, ids = campaign
    async with session_factory() as session, session.begin():
        await exclude_recipients(session, cid, [ids[1]], actor="carol")
        await approve(session, cid, approver="bob")
        result = await exclude_recipients(session, cid, [ids[1]], actor="carol")  # already excluded
        assert result["changed"] == 0
        assert not await rerender_messages(session, cid, settings=settings, actor="carol")
    assert await _state(session_factory, cid) == "approved"


async def test_exclude_and_include_update_counts(session_factory: Sessions, campaign: tuple[str, list[str]]) -> None:
    cid, ids = campaign
    async with session_factory() as session, session.begin():
        out = await exclude_recipients(session, cid, [ids[0], ids[4]], actor="carol")  # ids[4]: no consent, unchanged
        assert (out["changed"], out["unchanged"]) == (1, 1)
        assert out["summary"]["to_message_total"] == 2 and out["summary"]["skipped"]["excluded"] == 1
        out = await include_recipients(session, cid, [ids[0], ids[3]], actor="carol")  # back, and the may-qualify one
        assert out["summary"]["to_message_total"] == 4 and "may_qualify" not in out["summary"]["skipped"]
        rows = {r.profile_id: r for r in await session.scalars(
            select(CampaignRecipientRow).where(CampaignRecipientRow.campaign_id == cid))}
    assert rows[ids[0]].skip_reason is None and rows[ids[0]].excluded_by is None


async def test_bad_recipient_changes_change_nothing(session_factory: Sessions, campaign: tuple[str, list[str]]) -> None:
    cid, ids = campaign
    with pytest.raises(Conflict, match="no_consent"):  # the recipient's state stands in the way: 409
        async with session_factory() as session, session.begin():
            await include_recipients(session, cid, [ids[0], ids[4]], actor="carol")
    with pytest.raises(NotFound, match="not recipients"):
        async with session_factory() as session, session.begin():
            await exclude_recipients(session, cid, [ids[0], "no-such-profile"], actor="carol")
    with pytest.raises(BadWorkflowInput):
        async with session_factory() as session, session.begin():
            await exclude_recipients(session, cid, [], actor="carol")
    async with session_factory() as session:
        summary = (await get_campaign(session, cid)).summary
    assert summary["to_message_total"] == 3


async def test_send_time_must_be_aware_and_future(session_factory: Sessions, campaign: tuple[str, list[str]]) -> None:
    cid, _ = campaign
    for bad, msg in ((dt.datetime(2030, 1, 1, 9), "time zone"), (utcnow() - dt.timedelta(minutes=1), "future")):
        with pytest.raises(BadWorkflowInput, match=msg):
            async with session_factory() as session, session.begin():
                await set_send_time(session, cid, bad, actor="carol")
    when = dt.datetime(2030, 1, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    async with session_factory() as session, session.begin():
        await set_send_time(session, cid, when, actor="carol")
        await approve(session, cid, approver="bob")
        row = await schedule(session, cid, actor="bob")
    assert row.state == "scheduled" and row.send_at == when


async def test_schedule_needs_approval_and_an_intact_hash(session_factory: Sessions, campaign: tuple[str, list[str]]) -> None:
    cid, ids = campaign
    with pytest.raises(WrongState, match="approve it first"):
        async with session_factory() as session, session.begin():
            await schedule(session, cid, actor="bob")
    async with session_factory() as session, session.begin():
        await approve(session, cid, approver="bob")
    # someone edits the list behind the service's back: the hash no longer matches
    async with session_factory() as session, session.begin():
        await session.execute(update(CampaignRecipientRow).where(
            CampaignRecipientRow.campaign_id == cid, CampaignRecipientRow.profile_id == ids[4]).values(skip_reason=None, channel="sms"))
    async with session_factory() as session:
        assert not await verify_approval(session, cid)
    with pytest.raises(WrongState, match="changed since approval"):
        async with session_factory() as session, session.begin():
            await schedule(session, cid, actor="bob")


async def test_message_tampering_breaks_the_hash(session_factory: Sessions, campaign: tuple[str, list[str]]) -> None:
    cid, _ = campaign
    async with session_factory() as session, session.begin():
        await approve(session, cid, approver="bob")
        body = dict((await session.execute(CampaignMessageRow.__table__.select().where(
            CampaignMessageRow.campaign_id == cid, CampaignMessageRow.channel == "wechat"))).one().body)
        body["fields"] = {**body["fields"], "title": "改过的标题"}
        await session.execute(update(CampaignMessageRow).where(
            CampaignMessageRow.campaign_id == cid, CampaignMessageRow.channel == "wechat").values(body=body))
    async with session_factory() as session:
        assert not await verify_approval(session, cid)


async def test_cancel(session_factory: Sessions, campaign: tuple[str, list[str]]) -> None:
    cid, ids = campaign
    async with session_factory() as session, session.begin():
        await approve(session, cid, approver="bob", and_schedule=True)
        row = await cancel(session, cid, actor="carol")
    assert row.state == CampaignState.CANCELLED
    for action in (lambda s: cancel(s, cid, actor="x"), lambda s: exclude_recipients(s, cid, [ids[0]], actor="x"),
                   lambda s: approve(s, cid, approver="x")):
        with pytest.raises(WrongState, match="is cancelled"):
            async with session_factory() as session, session.begin():
                await action(session)
