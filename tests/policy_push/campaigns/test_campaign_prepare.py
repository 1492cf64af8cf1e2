"""Preparing campaigns: messages, counts, material-change detection, pending campaigns."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.campaigns import (
    best_reason,
    is_material_change,
    prepare_campaign,
    prepare_pending_campaigns,
    render_for_recipient,
)
from policy_push.config import Settings
from policy_push.errors import InvalidInput as BadWorkflowInput
from policy_push.errors import NotFound as CampaignNotFound
from policy_push.errors import WrongState
from policy_push.security import PiiCipher
from policy_push.storage import AuditLog
from policy_push.storage.campaign_tables import CampaignMessageRow, CampaignRecipientRow, CampaignRow
from tests.factories import make_enterprise, make_id_number, make_policy

from .support import REASONS, FakeMatcher, store_enterprises, store_policy

TODAY = dt.date(2026, 4, 1)


async def _setup(sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher, **policy_kw: object):
    policy = make_policy(**policy_kw)
    await store_policy(sessions, policy)
    profiles = [make_enterprise(channels=["sms", "wechat", "app"]), make_enterprise(channels=["wechat"]),
                make_enterprise(channels=["app"])]  # fmt: skip
    await store_enterprises(sessions, cipher, profiles)
    matcher = FakeMatcher()
    matcher.set(policy.id, [(p.id, 0.8 - i / 10) for i, p in enumerate(profiles)])
    return policy, profiles, matcher


async def _campaigns(sessions: async_sessionmaker[AsyncSession], policy_id: str) -> list[CampaignRow]:
    async with sessions() as session:
        return list(await session.scalars(
            select(CampaignRow).where(CampaignRow.policy_id == policy_id).order_by(CampaignRow.created_at)))


async def test_messages_are_rendered_per_channel_with_sms_length(
    session_factory: async_sessionmaker[AsyncSession], cipher: PiiCipher, settings: Settings
) -> None:
    policy, profiles, matcher = await _setup(session_factory, cipher)
    prepared = await prepare_campaign(session_factory, matcher, policy.id, prepared_by="alice", settings=settings, on=TODAY)
    assert prepared is not None
    async with session_factory() as session:
        bodies = dict((await session.execute(select(CampaignMessageRow.channel, CampaignMessageRow.body).where(
            CampaignMessageRow.campaign_id == prepared.id))).all())
        recipients = list(await session.scalars(select(CampaignRecipientRow).where(
            CampaignRecipientRow.campaign_id == prepared.id)))
        audit = await AuditLog(session).list(entity_type="campaign", entity_id=prepared.id)
    assert set(bodies) == {"sms", "wechat", "app"}
    sms = bodies["sms"]["preview"]
    assert sms["text"].startswith("【盘锦政务】") and sms["text"].endswith("回复TD退订")
    assert sms["length"] == len(sms["text"]) and sms["segments"] == (1 if sms["length"] <= 70 else -(-sms["length"] // 67))
    assert sms["segments"] == 1 and sms["max_segments"] == 1
    assert bodies["wechat"]["link"] == f"http://127.0.0.1:8080/p/{policy.id}?t={{token}}"
    assert "资质 高新技术企业 符合" in bodies["wechat"]["preview"]["text"]  # the telling reason, not the region line
    assert [a.action for a in audit] == ["campaign.prepare"]
    assert prepared.summary["to_message"] == {"app": 1, "sms": 1, "wechat": 1}
    # no personal value in any campaign row
    stored = json.dumps([bodies, [(r.profile_id, r.reasons, r.channel) for r in recipients]], ensure_ascii=False)
    for p in profiles:
        assert p.contact.phone not in stored and (p.contact.wechat_openid or "@@") not in stored

    # dispatch fills in the recipient's reason and link: the code in an SMS, a signed token elsewhere
    msg = render_for_recipient(bodies["sms"], reason=REASONS[1], delivery_id="0f8e4b8a1c1d4a3b9f001234567890ab",
                               address="13912345678", code="Ab3dEf7h", token="tok")
    assert "https://s.pj.gov.cn/Ab3dEf7h" in msg.text and msg.recipient == "13912345678"
    assert "0f8e4b8a" not in msg.text and len(msg.text) <= 70
    wechat = render_for_recipient(bodies["wechat"], reason=REASONS[1], delivery_id="d-1", address="oOpenid123",
                                  code="Ab3dEf7h", token="Ab3dEf7h.abc.sig")
    assert wechat.url == f"http://127.0.0.1:8080/p/{policy.id}?t=Ab3dEf7h.abc.sig" and wechat.template == "policy_notice"
    app = render_for_recipient(bodies["app"], reason=None, delivery_id="d-2", address="app123456", code="c", token="t")
    assert "您可能符合该项政策的条件" in app.text  # no quotable line: the neutral one
    low = render_for_recipient(bodies["app"], reason="身份标签 低保 符合", delivery_id="d-3", address="a", code="c", token="t")
    assert "低保" not in low.text  # a sensitive line is never quoted, even if one was stored


def test_best_reason_prefers_telling_lines() -> None:
    assert best_reason(["注册地 兴隆台区 属于 盘锦市", "企业规模 小型 符合"]) == "企业规模 小型 符合"
    assert best_reason(["注册地 兴隆台区 属于 盘锦市"]) == "注册地 兴隆台区 属于 盘锦市"
    assert best_reason(["年龄 70岁 符合"]) is None
    assert best_reason([]) is None
    assert best_reason(["身份标签 低保 符合", "居住地 兴隆台区 属于 盘锦市"]) == "居住地 兴隆台区 属于 盘锦市"
    assert best_reason(["缺少：企业规模"]) is None


async def test_a_message_with_an_id_number_is_refused(
    session_factory: async_sessionmaker[AsyncSession], cipher: PiiCipher, settings: Settings
) -> None:
    policy, _, matcher = await _setup(session_factory, cipher, title=f"关于{make_id_number(7)}的通知")
    with pytest.raises(BadWorkflowInput, match="ID number"):
        await prepare_campaign(session_factory, matcher, policy.id, prepared_by="alice", settings=settings, on=TODAY)
    assert await _campaigns(session_factory, policy.id) == []


async def test_unknown_closed_and_outdated_policies(
    session_factory: async_sessionmaker[AsyncSession], cipher: PiiCipher, settings: Settings
) -> None:
    policy, _, matcher = await _setup(session_factory, cipher, apply_until="2026-03-31")
    with pytest.raises(CampaignNotFound):
        await prepare_campaign(session_factory, matcher, "nope", prepared_by="a", settings=settings, on=TODAY)
    with pytest.raises(WrongState, match="closed"):
        await prepare_campaign(session_factory, matcher, policy.id, prepared_by="a", settings=settings, on=TODAY)
    with pytest.raises(WrongState, match="version 1"):
        await prepare_campaign(session_factory, matcher, policy.id, prepared_by="a", settings=settings, version=2)


def test_material_fields() -> None:
    base = make_policy(seq=1)
    assert not is_material_change(base, base.model_copy(update={"issuer": "另一个局", "categories": ["x"]}))
    for change in ({"title": "新标题"}, {"text": "新"}, {"summary": "新"}, {"apply_until": dt.date(2027, 1, 1)},
                   {"criteria": None}, {"benefit_max_yuan": 1.0}):
        assert is_material_change(base, base.model_copy(update=change)), change


async def test_material_change_makes_a_new_draft_and_cancels_the_old(
    session_factory: async_sessionmaker[AsyncSession], cipher: PiiCipher, settings: Settings
) -> None:
    policy, _, matcher = await _setup(session_factory, cipher)
    made = await prepare_pending_campaigns(session_factory, matcher, settings=settings, on=TODAY)
    assert [m.policy_id for m in made] == [policy.id]
    assert await prepare_pending_campaigns(session_factory, matcher, settings=settings, on=TODAY) == []  # idempotent

    # an immaterial change (issuer) makes a version but no campaign
    await store_policy(session_factory, policy.model_copy(update={"issuer": "盘锦市财政局"}))
    assert await prepare_pending_campaigns(session_factory, matcher, settings=settings, on=TODAY) == []
    assert len(await _campaigns(session_factory, policy.id)) == 1

    # a new deadline is material: a new draft; the old draft is cancelled
    await store_policy(session_factory, policy.model_copy(update={"apply_until": dt.date(2026, 11, 30)}))
    made = await prepare_pending_campaigns(session_factory, matcher, settings=settings, on=TODAY)
    assert [m.policy_version for m in made] == [3]
    rows = await _campaigns(session_factory, policy.id)
    assert [(r.policy_version, r.state) for r in rows] == [(1, "cancelled"), (3, "draft")]


async def test_pending_skips_closed_policies(
    session_factory: async_sessionmaker[AsyncSession], cipher: PiiCipher, settings: Settings
) -> None:
    closed, _, matcher = await _setup(session_factory, cipher, apply_from="2026-01-01", apply_until="2026-01-31")
    assert await prepare_pending_campaigns(session_factory, matcher, settings=settings, on=TODAY) == []
    assert matcher.calls == []
    assert re.fullmatch(r"pol-\d+", closed.id)
