"""Feedback from the message link, once per kind; 退订 opts out of every channel."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.campaigns import (
    delivery_by_code,
    prepare_campaign,
    recipient_context,
    record_feedback,
    record_opt_out,
)
from policy_push.config import Settings
from policy_push.errors import InvalidInput as BadWorkflowInput
from policy_push.security import PiiCipher
from policy_push.statuses import FeedbackKind
from policy_push.storage.campaign_tables import CampaignRecipientRow, DeliveryRow, FeedbackRow, OptOutRow
from policy_push.storage.tables import utcnow
from tests.factories import make_enterprise, make_policy

from .support import REASONS, FakeMatcher, add_delivery, store_enterprises, store_policy

Sessions = async_sessionmaker[AsyncSession]
TTL = dt.timedelta(days=90)


async def test_feedback_is_recorded_once_and_unsubscribe_opts_out(
    session_factory: Sessions, cipher: PiiCipher, settings: Settings
) -> None:
    policy, other = make_policy(), make_policy()
    for p in (policy, other):
        await store_policy(session_factory, p)
    person = make_enterprise()
    await store_enterprises(session_factory, cipher, [person])
    matcher = FakeMatcher()
    matcher.set(policy.id, [(person.id, 0.7)])
    matcher.set(other.id, [(person.id, 0.7)])
    prepared = await prepare_campaign(session_factory, matcher, policy.id, prepared_by="alice", settings=settings)
    assert prepared is not None
    async with session_factory() as session, session.begin():
        delivery = await add_delivery(session, campaign_id=prepared.id, policy_id=policy.id, profile_id=person.id, channel="wechat")

    async with session_factory() as session, session.begin():
        code = await session.scalar(select(DeliveryRow.link_code).where(DeliveryRow.id == delivery))
        found = await delivery_by_code(session, code, ttl=TTL, now=utcnow())
        assert found is not None and found.id == delivery
        assert await delivery_by_code(session, code, ttl=TTL, now=utcnow() + TTL + dt.timedelta(seconds=1)) is None
        ctx = await recipient_context(session, policy, found)
        assert ctx is not None and ctx.reasons == REASONS and not ctx.opted_out
        assert await recipient_context(session, other, found) is None  # another policy's link
        assert await record_feedback(session, delivery=found, kind=FeedbackKind.USEFUL)
        assert not await record_feedback(session, delivery=found, kind=FeedbackKind.USEFUL)
        assert await record_feedback(session, delivery=found, kind=FeedbackKind.UNSUBSCRIBE)
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(FeedbackRow)) == 2
        opt = (await session.execute(select(OptOutRow.channel, OptOutRow.source))).all()
        assert opt == [("*", "feedback_link")]
        ctx = await recipient_context(session, policy, found)
        assert ctx is not None and ctx.opted_out and ctx.feedback == {"useful", "unsubscribe"}

    # the next campaign leaves them out
    later = await prepare_campaign(session_factory, matcher, other.id, prepared_by="alice", settings=settings)
    assert later is not None
    async with session_factory() as session:
        skip = await session.scalar(select(CampaignRecipientRow.skip_reason).where(CampaignRecipientRow.campaign_id == later.id))
    assert skip == "opted_out"


async def test_opt_out_is_idempotent_and_validated(session_factory: Sessions) -> None:
    async with session_factory() as session, session.begin():
        assert await record_opt_out(session, profile_kind="resident", profile_id="r-1", channel="sms", source="sms_uplink", actor="s")
        assert not await record_opt_out(session, profile_kind="resident", profile_id="r-1", channel="sms", source="sms_uplink", actor="s")
    for bad in ({"channel": "fax"}, {"source": "rumour"}):
        with pytest.raises(BadWorkflowInput):
            async with session_factory() as session, session.begin():
                await record_opt_out(session, **{"profile_kind": "resident", "profile_id": "r-2", "channel": "*",
                                                 "source": "staff", "actor": "s", **bad})
