"""Erasing contact data past the retention period (design.md invariant 6: keep no more than needed).

A profile not updated for ``retention_days`` and in no open campaign (draft … sending) and with no
delivery still in flight loses its phone, openid and registration id: the ``*_enc`` ciphertexts and
their look-up hashes are set to NULL, with an audit entry per profile. The rest of the record stays
(it still matches policies; it just cannot be messaged until the person registers contact data again).
Idempotent: profiles already without contact data are not touched again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.statuses import CampaignState, DeliveryStatus
from policy_push.storage import AuditLog
from policy_push.storage.campaign_tables import CampaignRecipientRow

from .outbox import begin_write, campaigns, chunks, deliveries, profile_table

__all__ = ["purge_contact_data"]

log = logging.getLogger("policy_push.retention")
_CONTACT = ("phone", "wechat_openid", "app_registration_id")
_OPEN = [s.value for s in (CampaignState.DRAFT, CampaignState.APPROVED, CampaignState.SCHEDULED, CampaignState.SENDING)]
_IN_FLIGHT = [DeliveryStatus.CREATED.value, DeliveryStatus.SENDING.value]


async def purge_contact_data(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, retention_days: int
) -> int:
    """Erase the contact data of stale profiles; returns how many profiles lost it."""
    cutoff = now - timedelta(days=retention_days)
    r = CampaignRecipientRow.__table__.c
    c, d = campaigns.c, deliveries.c
    total = 0
    for kind in ("enterprise", "resident"):
        t = profile_table(kind)
        in_open = exists().where(r.profile_id == t.c.id, r.profile_kind == kind, r.campaign_id == c.id, c.state.in_(_OPEN))
        in_flight = exists().where(d.profile_id == t.c.id, d.profile_kind == kind, d.status.in_(_IN_FLIGHT))
        has_contact = or_(*(t.c[f"{k}_enc"].is_not(None) for k in _CONTACT))
        async with sessions() as s, s.begin():
            await begin_write(s)
            ids = list(
                (await s.execute(select(t.c.id).where(t.c.updated_at < cutoff, has_contact, ~in_open, ~in_flight))).scalars()
            )
            cleared = {f"{k}_{suffix}": None for k in _CONTACT for suffix in ("enc", "hash")}
            for part in chunks(ids):
                await s.execute(update(t).where(t.c.id.in_(part)).values(**cleared))
            await AuditLog(s).record_many(
                [{"actor": "scheduler", "action": f"{kind}.contact_purged", "entity_type": kind, "entity_id": i,
                  "detail": {"retention_days": retention_days}} for i in ids]
            )  # fmt: skip
        total += len(ids)
    if total:
        log.info("erased the contact data of %d profile(s) past %d days", total, retention_days)
    return total
