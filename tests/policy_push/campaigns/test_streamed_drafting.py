"""A large draft is written in chunks, each its own short transaction: another writer commits between
two chunks, a draft cut off half-way is redone without a profile listed twice, keyset pages of the
preview are complete and stable, and the streamed list hash is the hash of the whole list."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from policy_push.campaigns import (
    PreparedCampaign,
    approval_hash,
    approve,
    decode_cursor,
    encode_cursor,
    exclude_recipients,
    list_recipients,
    load_campaign_view,
    prepare_campaign,
    prepare_pending_campaigns,
)
from policy_push.campaigns import drafting as drafting_module
from policy_push.campaigns.approval import canonical
from policy_push.campaigns.preview import cursor_of
from policy_push.config import Settings
from policy_push.errors import InvalidInput, WrongState
from policy_push.security import PiiCipher
from policy_push.storage import AuditLog
from policy_push.storage import campaigns as campaign_store
from policy_push.storage.campaign_tables import CampaignRecipientRow, CampaignRow
from policy_push.storage.sql import begin_write
from tests.factories import make_enterprise, make_policy

from .support import FakeMatcher, store_enterprises, store_policy

Sessions = async_sessionmaker[AsyncSession]
ELIGIBLE, MAYBE, CHUNK = 2400, 600, 200


async def _large(sessions: Sessions, cipher: PiiCipher) -> tuple[str, FakeMatcher, list[str]]:
    """A policy matching 3,000 profiles: 12 stored (reachable), the rest unknown to the profile tables
    (listed as unreachable, as a profile deleted after the match is); scores tie in runs of ten."""
    policy = make_policy()
    await store_policy(sessions, policy)
    stored = [make_enterprise(channels=["sms", "wechat"]) for _ in range(12)]
    await store_enterprises(sessions, cipher, stored)
    ids = [p.id for p in stored] + [f"E{i:06d}" for i in range(ELIGIBLE + MAYBE - len(stored))]
    matcher = FakeMatcher()
    matcher.set(
        policy.id,
        [(pid, round(1 - (i // 10) / 1000, 4)) for i, pid in enumerate(ids[:ELIGIBLE])],
        [(pid, ["employees"]) for pid in ids[ELIGIBLE:]],
    )
    return policy.id, matcher, ids


def _chunked(settings: Settings) -> Settings:
    return settings.model_copy(update={"campaign_chunk_rows": CHUNK})


async def _drafted(sessions: Sessions, cipher: PiiCipher, settings: Settings) -> tuple[PreparedCampaign, list[str]]:
    """:func:`_large` drafted in chunks of ``CHUNK``."""
    policy_id, matcher, ids = await _large(sessions, cipher)
    prepared = await prepare_campaign(sessions, matcher, policy_id, prepared_by="alice", settings=_chunked(settings))
    assert prepared is not None
    return prepared, ids


async def _campaigns(sessions: Sessions, policy_id: str) -> list[tuple[str, str]]:
    async with sessions() as session:
        return [(i, s) for i, s in await session.execute(select(CampaignRow.id, CampaignRow.state).where(CampaignRow.policy_id == policy_id))]


async def _count(sessions: Sessions, campaign_id: str) -> tuple[int, int]:
    """(rows, distinct profile ids) of the campaign's list."""
    r = CampaignRecipientRow
    async with sessions() as session:
        rows = await session.scalar(select(func.count()).where(r.campaign_id == campaign_id))
        distinct = await session.scalar(select(func.count(func.distinct(r.profile_id))).where(r.campaign_id == campaign_id))
    return int(rows or 0), int(distinct or 0)


async def test_a_large_draft_commits_chunk_by_chunk_and_another_writer_gets_in_between(
    session_factory: Sessions, engine: AsyncEngine, cipher: PiiCipher, settings: Settings
) -> None:
    policy_id, matcher, ids = await _large(session_factory, cipher)
    commits = 0

    def counted(*_: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(engine.sync_engine, "commit", counted)
    drafting = asyncio.create_task(
        prepare_campaign(session_factory, matcher, policy_id, prepared_by="alice", settings=_chunked(settings))
    )
    seen_mid_draft: list[int] = []
    own_commits = 0
    while not drafting.done():
        # another writer (the send tick, an API call): it takes the write lock between two chunks
        async with session_factory() as session, session.begin():
            await begin_write(session)
            await AuditLog(session).record(actor="tick", action="test.write", entity_type="test", entity_id="x", detail={})
            drafts = [c for c in await campaign_store.drafting_of(session, policy_id)]
            if drafts:
                n = await session.scalar(select(func.count()).where(CampaignRecipientRow.campaign_id == drafts[0][0]))
                seen_mid_draft.append(int(n or 0))
        own_commits += 1
        await asyncio.sleep(0)
    prepared = drafting.result()
    event.remove(engine.sync_engine, "commit", counted)
    assert prepared is not None
    assert prepared.summary["recipients"] == len(ids)
    # the draft's own commits: one transaction per chunk at least, not one for the whole list
    assert commits - own_commits >= len(ids) // CHUNK
    # the other writer committed while the list was partly written (and so never waited for all of it)
    assert any(0 < n < len(ids) for n in seen_mid_draft), seen_mid_draft
    assert await _count(session_factory, prepared.id) == (len(ids), len(ids))


async def test_a_drafting_campaign_cannot_be_approved_and_a_cut_draft_is_redone_without_duplicates(
    session_factory: Sessions, cipher: PiiCipher, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy_id, matcher, ids = await _large(session_factory, cipher)
    drafting = asyncio.create_task(
        prepare_campaign(session_factory, matcher, policy_id, prepared_by="alice", settings=_chunked(settings), force=False)
    )
    cut = None
    while cut is None:
        await asyncio.sleep(0)
        async with session_factory() as session:
            for cid, _ in await campaign_store.drafting_of(session, policy_id):
                if (await _count(session_factory, cid))[0] >= 3 * CHUNK:
                    cut = cid
    drafting.cancel()  # the process dies mid-draft: nothing after this chunk runs
    with pytest.raises(asyncio.CancelledError):
        await drafting
    assert await _campaigns(session_factory, policy_id) == [(cut, "drafting")]
    written, _ = await _count(session_factory, cut)
    assert 0 < written < len(ids)
    with pytest.raises(WrongState):
        async with session_factory() as session, session.begin():
            await approve(session, cut, approver="bob")
    # while its writer may be alive, the leader's tick leaves it alone
    assert await prepare_pending_campaigns(session_factory, matcher, settings=_chunked(settings)) == []
    # once it is stale, the tick deletes it and drafts again, from the start
    monkeypatch.setattr(drafting_module, "DRAFTING_STALE_AFTER", drafting_module.DRAFTING_STALE_AFTER * 0)
    [again] = await prepare_pending_campaigns(session_factory, matcher, settings=_chunked(settings))
    assert await _campaigns(session_factory, policy_id) == [(again.id, "draft")]
    assert await _count(session_factory, again.id) == (len(ids), len(ids))
    assert await _count(session_factory, cut) == (0, 0)
    # and drafting again by hand (force) replaces it cleanly too
    forced = await prepare_campaign(session_factory, matcher, policy_id, prepared_by="alice", settings=_chunked(settings))
    assert forced is not None
    assert sorted(await _campaigns(session_factory, policy_id)) == sorted([(again.id, "cancelled"), (forced.id, "draft")])
    assert await _count(session_factory, forced.id) == (len(ids), len(ids))


async def test_keyset_pages_are_complete_stable_and_counted(
    session_factory: Sessions, cipher: PiiCipher, settings: Settings
) -> None:
    prepared, _ = await _drafted(session_factory, cipher, settings)
    r = CampaignRecipientRow
    for filters in ({}, {"skip_reason": "none"}, {"eligible": False}, {"skip_reason": "unreachable"}, {"channel": "sms", "skip_reason": "none"}):
        async with session_factory() as session:
            conditions = campaign_store.recipient_filters(prepared.id, **filters)  # type: ignore[arg-type]
            # the whole list in the preview's order, read at once by the database: what pages must add up to
            expected = list(await session.scalars(
                select(r.profile_id).where(*conditions).order_by(r.score.desc(), r.profile_id)))  # fmt: skip
            pages: list[str] = []
            after = None
            while True:
                lines, total = await list_recipients(session, cipher, prepared.id, limit=170, after=after, **filters)  # type: ignore[arg-type]
                assert total == len(expected)
                pages += [ln.profile_id for ln in lines]
                if len(lines) < 170:
                    break
                after = decode_cursor(encode_cursor(cursor_of(lines[-1])))
        assert pages == expected, filters
    # a page read again is the same page
    async with session_factory() as session:
        first, _ = await list_recipients(session, cipher, prepared.id, limit=50)
        cursor = cursor_of(first[-1])
        a, _ = await list_recipients(session, cipher, prepared.id, limit=50, after=cursor)
        b, _ = await list_recipients(session, cipher, prepared.id, limit=50, after=cursor)
    assert [x.profile_id for x in a] == [x.profile_id for x in b]
    for junk in ("", "bm90IGpzb24", encode_cursor(cursor_of(first[0]))[:-3] + "!!!"):
        with pytest.raises(InvalidInput):
            decode_cursor(junk)


def _whole_list_hash(campaign: CampaignRow, rows: list[tuple[object, ...]], bodies: dict[str, dict[str, object]]) -> str:
    """The list hash as defined before it was streamed: every row read at once, then hashed."""
    digest = hashlib.sha256(
        canonical({"campaign": campaign.id, "policy_id": campaign.policy_id, "policy_version": campaign.policy_version})
    )
    for kind, pid, channel, skip, reasons, quoted in rows:
        digest.update(b"\nR" + canonical([kind, pid, channel, skip, list(reasons or []), *([] if quoted is None else [quoted])]))  # type: ignore[call-overload]
    for channel, body in bodies.items():
        digest.update(b"\nM" + canonical([channel, body]))
    return digest.hexdigest()


async def _reference(sessions: Sessions, campaign_id: str) -> str:
    r = CampaignRecipientRow
    async with sessions() as session:
        campaign = await campaign_store.get(session, campaign_id)
        rows = (await session.execute(
            select(r.profile_kind, r.profile_id, r.channel, r.skip_reason, r.reasons, r.message_reason)
            .where(r.campaign_id == campaign_id).order_by(r.profile_id))).all()  # fmt: skip
        return _whole_list_hash(campaign, [tuple(x) for x in rows], await campaign_store.bodies(session, campaign_id))


async def test_the_streamed_hash_is_the_whole_list_hash_and_the_kept_one_follows_edits(
    session_factory: Sessions, cipher: PiiCipher, settings: Settings
) -> None:
    prepared, ids = await _drafted(session_factory, cipher, settings)
    expected = await _reference(session_factory, prepared.id)
    async with session_factory() as session:
        assert await approval_hash(session, prepared.id) == expected
        assert (await campaign_store.get(session, prepared.id)).list_sha256 == expected
        assert (await load_campaign_view(session, cipher, prepared.id)).list_sha256 == expected
    async with session_factory() as session, session.begin():
        await exclude_recipients(session, prepared.id, ids[:2], actor="alice")
    changed = await _reference(session_factory, prepared.id)
    assert changed != expected
    async with session_factory() as session:
        assert (await campaign_store.get(session, prepared.id)).list_sha256 is None
        assert (await load_campaign_view(session, cipher, prepared.id)).list_sha256 == changed
        # the SMS counts the preview bills by are kept in the summary, and recounted by the edit
        kept = (await campaign_store.get(session, prepared.id)).summary["sms_reasons"]
        assert kept == [[r, n] for r, n in await campaign_store.sms_reason_counts(session, prepared.id)]
        assert sum(n for _, n in kept) == 12 - 2
    async with session_factory() as session, session.begin():
        row = await approve(session, prepared.id, approver="bob", expect_sha256=changed)
    assert row.approval_sha256 == row.list_sha256 == changed
