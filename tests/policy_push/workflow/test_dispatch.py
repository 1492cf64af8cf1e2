"""Dispatch end to end against the simulators on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from policy_push.statuses import CampaignState, DeliveryStatus
from policy_push.storage.campaign_tables import CampaignRow, DeliveryEventRow, DeliveryRow
from policy_push.workflow.outbox import SendRules
from policy_push.workflow.starting import start_due_campaigns

from .dispatch_fixtures import DAYTIME, dispatch_settings, http, make_dispatcher, sims  # noqa: F401
from .seed import address, always_approved, by_share, seed_campaign


async def _statuses(sessions, campaign_id=None) -> Counter[str]:
    async with sessions() as s:
        stmt = select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)
        if campaign_id:
            stmt = stmt.where(DeliveryRow.campaign_id == campaign_id)
        return Counter(dict((await s.execute(stmt)).all()))


async def test_a_campaign_goes_out_once_per_recipient_on_their_channel(
    dispatch_settings, session_factory, cipher, sims, http
) -> None:
    seeded = await seed_campaign(
        session_factory, cipher, dispatch_settings, n=300, channel_of=by_share({"sms": 0.5, "wechat": 0.3, "app": 0.2})
    )
    d = make_dispatcher(dispatch_settings, session_factory, cipher, http)
    started = await start_due_campaigns(
        session_factory, now=d.clock.now(), rules=SendRules.from_settings(dispatch_settings), verify=always_approved
    )
    assert started == [seeded.campaign_id]
    claimed = await d.send_due()
    assert claimed == 300
    assert await _statuses(session_factory) == Counter({"sent": 300})
    wanted = Counter((first, address(first, seeded.index_of(pid))) for pid, (first, _) in seeded.recipients.items())
    got = Counter()
    for provider, channel in (("aliyun", "sms"), ("wechat", "wechat"), ("jpush", "app")):
        got.update((channel, rec.recipient) for rec in sims.records[provider])
    assert got == wanted
    async with session_factory() as s:
        # claim + result: two events per row, all from sending/created as the table allows
        events = Counter((await s.execute(select(DeliveryEventRow.from_status, DeliveryEventRow.to_status))).all())
        assert events == Counter({("created", "sending"): 300, ("sending", "sent"): 300})
        state = await s.scalar(select(CampaignRow.state).where(CampaignRow.id == seeded.campaign_id))
    # sent SMS and WeChat rows still wait for their receipts
    assert state == CampaignState.SENDING
    # a second run finds nothing: nothing is sent twice
    assert await d.send_due() == 0
    assert len(sims.records["aliyun"]) + len(sims.records["wechat"]) + len(sims.records["jpush"]) == 300
    assert DeliveryStatus.SENT == "sent"
