"""Erasing contact data past the retention period, except for people a campaign still needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from policy_push.sending.retention import purge_contact_data
from policy_push.statuses import CampaignState
from policy_push.storage import AuditLog
from policy_push.storage.campaign_tables import CampaignRow
from policy_push.storage.subscriber_tables import SubscriberCodeRow, SubscriberSessionRow
from policy_push.storage.tables import ResidentRow

from .seed import seed_campaign


async def test_stale_contact_data_is_erased_unless_a_campaign_is_open(db_settings, session_factory, cipher) -> None:
    open_campaign = await seed_campaign(session_factory, cipher, db_settings, n=2)
    done = await seed_campaign(session_factory, cipher, db_settings, n=3, start=10, policy_seq=2)
    long_ago = datetime.now(UTC) - timedelta(days=400)
    async with session_factory() as s, s.begin():
        await s.execute(update(ResidentRow).values(updated_at=long_ago))
        await s.execute(update(ResidentRow).where(ResidentRow.id == "r-0000012").values(updated_at=datetime.now(UTC)))
        await s.execute(update(CampaignRow).where(CampaignRow.id == done.campaign_id).values(state=CampaignState.DONE))
    now = datetime.now(UTC)
    assert await purge_contact_data(session_factory, now=now, retention_days=365) == 2  # r-10, r-11
    assert await purge_contact_data(session_factory, now=now, retention_days=365) == 0  # idempotent
    async with session_factory() as s:
        rows = {r.id: r for r in (await s.execute(select(ResidentRow))).scalars()}
        audit = await AuditLog(s).list(entity_type="resident")
    for pid in ("r-0000010", "r-0000011"):
        assert rows[pid].phone_enc is None and rows[pid].phone_hash is None and rows[pid].wechat_openid_enc is None
    for pid in ("r-0000001", "r-0000002", "r-0000012"):  # in an open campaign, or recently updated
        assert rows[pid].phone_enc is not None
    assert {a.entity_id for a in audit if a.action == "resident.contact_purged"} == {"r-0000010", "r-0000011"}
    assert open_campaign.campaign_id


async def test_inbound_messages_past_retention_are_deleted_but_their_opt_outs_stay(db_settings, session_factory, cipher) -> None:
    from channels import Reply, ReplyKind
    from policy_push.sending.inbound import apply_replies
    from policy_push.storage import inbound as inbound_store
    from policy_push.storage.campaign_tables import OptOutRow

    from .seed import phone

    await seed_campaign(session_factory, cipher, db_settings, n=1)
    now = datetime.now(UTC)
    old, new = now - timedelta(days=400), now - timedelta(days=1)
    reply = Reply("aliyun_sms", phone(1), "TD", ReplyKind.OPT_OUT, None, provider_id="1")
    await apply_replies(session_factory, cipher, [reply], now=old)
    await apply_replies(session_factory, cipher, [Reply("aliyun_sms", phone(1), "谢谢", ReplyKind.MESSAGE, None, provider_id="2")],
                        now=new)  # fmt: skip
    await purge_contact_data(session_factory, now=now, retention_days=365)
    async with session_factory() as s:
        left, total = await inbound_store.listed(s, cipher)
        opt_outs = (await s.execute(select(OptOutRow))).scalars().all()
    assert total == 1 and left[0]["text"] == "谢谢"
    assert [(o.profile_id, o.channel) for o in opt_outs] == [("r-0000001", "sms")]


async def test_ended_sessions_and_day_old_codes_are_purged(db_settings, session_factory, cipher) -> None:
    now = datetime.now(UTC)
    hour, day = timedelta(hours=1), timedelta(days=1)
    sessions = {  # token hash -> (expires, revoked)
        "live": (now + day, None), "expired": (now - hour, None), "signed-out": (now + day, now - hour),
    }
    codes = {  # code hash -> (created, used)
        "young-used": (now - hour, now - hour), "young-expired": (now - 2 * hour, None),
        "old-unused": (now - day - hour, None), "old-used": (now - 3 * day, now - 3 * day),
    }
    async with session_factory() as s, s.begin():
        for token, (expires, revoked) in sessions.items():
            s.add(SubscriberSessionRow(account_id="acc-1", token_hash=token, client="app", created_at=now - 2 * day,
                                       expires_at=expires, revoked_at=revoked))  # fmt: skip
        for code, (created, used) in codes.items():
            s.add(SubscriberCodeRow(phone_hash="p", client_hash="c", code_hash=code, created_at=created,
                                    expires_at=created + timedelta(minutes=5), attempts=1, used_at=used, sent="aliyun"))  # fmt: skip
    for _ in range(2):  # the second run finds nothing more to do
        await purge_contact_data(session_factory, now=now, retention_days=365)
        async with session_factory() as s:
            assert set((await s.execute(select(SubscriberSessionRow.token_hash))).scalars()) == {"live"}
            # a day of requests stays, used or expired: the per-phone and per-address limits count them
            assert set((await s.execute(select(SubscriberCodeRow.code_hash))).scalars()) == {"young-used", "young-expired"}
