"""Who gets what: consent, opt-out, reachability, preference order, told before (both databases)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.campaigns import prepare_campaign
from policy_push.campaigns.recipients import choose_channel
from policy_push.config import Settings
from policy_push.reach import Reach
from policy_push.security import PiiCipher
from policy_push.statuses import DeliveryStatus, Purpose, SkipReason
from policy_push.storage.campaign_tables import CampaignRecipientRow, OptOutRow
from policy_push.storage.tables import utcnow
from tests.factories import make_enterprise, make_policy

from .support import FakeMatcher, add_delivery, store_enterprises, store_policy

S = SkipReason


def facts(*reachable: str, consent: bool = True) -> Reach:
    return Reach("enterprise", "p", consent, tuple(reachable), frozenset(reachable))


@pytest.mark.parametrize(
    ("f", "eligible", "opted", "used", "expected"),
    [
        (facts("wechat", "sms"), True, (), (), ("wechat", None)),
        (facts("sms", "wechat"), True, (), (), ("sms", None)),  # preference order, not a fixed order
        (facts("wechat", "sms", consent=False), True, (), (), (None, S.NO_CONSENT)),
        (facts("wechat", "sms"), True, ("*",), (), (None, S.OPTED_OUT)),
        (facts("wechat", "sms"), True, ("wechat",), (), ("sms", None)),  # opted out of one channel only
        (facts("wechat"), True, ("wechat",), (), (None, S.OPTED_OUT)),
        (facts(), True, (), (), (None, S.UNREACHABLE)),
        (None, True, (), (), (None, S.UNREACHABLE)),  # deleted after the match
        (facts("wechat", "sms"), True, (), {"wechat": "delivered"}, (None, S.ALREADY_NOTIFIED)),  # told on wechat
        (facts("wechat", "sms"), True, (), {"wechat": "sent"}, (None, S.ALREADY_NOTIFIED)),  # on its way
        (facts("wechat", "sms"), True, (), {"wechat": "unreachable"}, ("sms", None)),  # wechat failed for good
        (facts("wechat", "sms"), True, (), {"wechat": "permanent_failure", "sms": "technical_failure"}, (None, S.ALREADY_NOTIFIED)),
        (facts("wechat", "sms"), False, (), (), ("wechat", S.MAY_QUALIFY)),  # keeps its channel for include
        (facts("wechat", consent=False), False, (), (), (None, S.NO_CONSENT)),  # the rules beat may-qualify
    ],
)
def test_choose_channel(f: Reach | None, eligible: bool, opted: tuple[str, ...], used: tuple | dict, expected: tuple) -> None:
    reach = None if f is None else Reach(f.profile_kind, f.profile_id, f.consent, f.preference, f.addressed, frozenset(opted))
    told = {ch: DeliveryStatus(status) for ch, status in dict(used).items()}
    assert choose_channel(reach, eligible=eligible, told=told) == expected


def test_reach_refuses_a_channel_for_one_reason_at_a_time() -> None:
    """The one rule: consent first, then opt-outs (one channel or all), then an address."""
    person = Reach("resident", "r", True, ("app", "sms", "wechat"), frozenset({"app", "sms"}), frozenset({"sms"}))
    assert person.refusal("app") is None
    assert person.refusal("sms") is S.OPTED_OUT
    assert person.refusal("wechat") is S.UNREACHABLE
    assert person.next_channel(used={"app"}, allowed={"app", "sms", "wechat"}) is None
    assert person.next_channel(used=set(), allowed={"sms", "wechat"}) is None  # the approved texts bound it too
    assert Reach("resident", "r", False, ("app",), frozenset({"app"})).refusal("app") is S.NO_CONSENT
    assert Reach("resident", "r", True, ("app",), frozenset({"app"}), frozenset({"*"})).refusal("app") is S.OPTED_OUT


async def test_second_delivery_row_is_refused_by_the_database(session_factory: async_sessionmaker[AsyncSession]) -> None:
    """Invariant 2 in the schema itself: code that forgets to check still cannot send twice."""
    policy = make_policy()
    await store_policy(session_factory, policy)
    async with session_factory() as session, session.begin():
        from policy_push.storage.campaign_tables import CampaignRow

        now = utcnow()
        session.add(CampaignRow(id="c1", policy_id=policy.id, policy_version=1, audience="enterprise", purpose="announce",
                                state="sending", urgent=False, prepared_by="a", summary={}, created_at=now, updated_at=now))
    async with session_factory() as session, session.begin():
        await add_delivery(session, campaign_id="c1", policy_id=policy.id, profile_id="E1", channel="sms")
        # another purpose and another channel are different messages
        await add_delivery(session, campaign_id="c1", policy_id=policy.id, profile_id="E1", channel="sms", purpose=Purpose.REMINDER)
        await add_delivery(session, campaign_id="c1", policy_id=policy.id, profile_id="E1", channel="wechat")
    with pytest.raises(IntegrityError):
        async with session_factory() as session, session.begin():
            await add_delivery(session, campaign_id="c1", policy_id=policy.id, profile_id="E1", channel="sms")


async def test_prepare_applies_the_rules_to_stored_profiles(
    session_factory: async_sessionmaker[AsyncSession], cipher: PiiCipher, settings: Settings
) -> None:
    policy = make_policy()
    await store_policy(session_factory, policy)
    ok = make_enterprise(channels=["wechat", "app", "sms"])
    sms_first = make_enterprise(channels=["sms", "wechat"])
    no_consent = make_enterprise(consent=False)
    opted = make_enterprise()
    opted_wechat = make_enterprise(channels=["wechat", "sms"])
    unreachable = make_enterprise(channels=["app"], contact={"phone": "13900000001"})
    told = make_enterprise(channels=["wechat", "sms"])
    told_everywhere = make_enterprise(channels=["wechat"])
    failed_on_wechat = make_enterprise(channels=["wechat", "sms"])
    maybe = make_enterprise()
    profiles = [ok, sms_first, no_consent, opted, opted_wechat, unreachable, told, told_everywhere, failed_on_wechat, maybe]
    await store_enterprises(session_factory, cipher, profiles)
    # an earlier campaign of this policy already reached two of them, and failed for good on a third
    first = FakeMatcher()
    first.set(policy.id, [(told.id, 0.5), (told_everywhere.id, 0.4), (failed_on_wechat.id, 0.3)])
    earlier = await prepare_campaign(session_factory, first, policy.id, prepared_by="alice", settings=settings)
    assert earlier is not None
    async with session_factory() as session, session.begin():
        await add_delivery(session, campaign_id=earlier.id, policy_id=policy.id, profile_id=told.id, channel="wechat")
        await add_delivery(session, campaign_id=earlier.id, policy_id=policy.id, profile_id=told_everywhere.id, channel="wechat")
        await add_delivery(session, campaign_id=earlier.id, policy_id=policy.id, profile_id=failed_on_wechat.id,
                           channel="wechat", status=DeliveryStatus.UNREACHABLE)
        now = utcnow()
        session.add(OptOutRow(profile_kind="enterprise", profile_id=opted.id, channel="*", at=now, source="staff"))
        session.add(OptOutRow(profile_kind="enterprise", profile_id=opted_wechat.id, channel="wechat", at=now, source="staff"))

    matcher = FakeMatcher()
    matcher.set(policy.id, [(p.id, 0.9 - i / 100) for i, p in enumerate(profiles[:-1])], [(maybe.id, ["employees"])])
    prepared = await prepare_campaign(session_factory, matcher, policy.id, prepared_by="alice", settings=settings)
    assert prepared is not None
    async with session_factory() as session:
        rows = {r.profile_id: r for r in await session.scalars(
            select(CampaignRecipientRow).where(CampaignRecipientRow.campaign_id == prepared.id))}
    got = {p.id: (rows[p.id].channel, rows[p.id].skip_reason) for p in profiles}
    assert got == {
        ok.id: ("wechat", None),
        sms_first.id: ("sms", None),
        no_consent.id: (None, "no_consent"),
        opted.id: (None, "opted_out"),
        opted_wechat.id: ("sms", None),
        unreachable.id: (None, "unreachable"),
        told.id: (None, "already_notified"),  # told on wechat: sms would be a fallback without a failure
        told_everywhere.id: (None, "already_notified"),
        failed_on_wechat.id: ("sms", None),
        maybe.id: ("wechat", "may_qualify"),
    }
    assert rows[maybe.id].missing == ["employees"] and rows[maybe.id].eligible is False
    s = prepared.summary
    assert s["to_message"] == {"sms": 3, "wechat": 1}
    assert s["skipped"] == {"no_consent": 1, "opted_out": 1, "unreachable": 1, "already_notified": 2, "may_qualify": 1}
    assert s["eligible"] == 9 and s["may_qualify"] == 1
