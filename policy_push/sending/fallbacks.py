"""Fallbacks: after a channel failed for good, the recipient's next channel (invariant 2).

The next channel is the first of the recipient's own preference that ``policy_push.reach`` allows now
(consent, opt-outs, an address), that has an approved text in the campaign (the approver saw every
channel's text up front, invariant 1), and that has carried nothing about this policy and purpose yet
(whatever that row's fate: ``uq_deliveries_once`` would refuse a second row anyway). Its send time is
planned like any new row's (quiet hours, the cap).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.statuses import DELIVERY_FAILED_FOR_GOOD, DeliveryStatus
from policy_push.storage import campaigns as campaign_store
from policy_push.storage import contacts, deliveries, delivery_history
from policy_push.storage.deliveries import Delivery

from .rules import SendRules

__all__ = ["failed_for_good", "fall_back"]


def failed_for_good(rows: Sequence[Delivery], applied: dict[str, DeliveryStatus], moves: Sequence[deliveries.Move]) -> list[Delivery]:
    """The rows of ``moves`` that took effect (``applied``) and failed for good."""
    by_id = {r.id: r for r in rows}
    return [by_id[m.delivery_id] for m in moves if m.delivery_id in applied and m.to in DELIVERY_FAILED_FOR_GOOD]


async def fall_back(session: AsyncSession, failed: Sequence[Delivery], *, now: datetime, rules: SendRules) -> int:
    """Create a delivery on each failed recipient's next channel; returns how many were created."""
    if not failed:
        return 0
    campaign_ids = {f.campaign_id for f in failed}
    urgent = await campaign_store.urgent(session, campaign_ids)
    texts = await campaign_store.channels_with_text(session, campaign_ids)
    people = {(f.profile_kind, f.profile_id) for f in failed}
    reach = await contacts.load_reach(session, people)
    used = await delivery_history.used_channels(session, people)
    previous = await delivery_history.previous_sends(session, people)
    rows = []
    for f in failed:
        person = reach.get((f.profile_kind, f.profile_id))
        if person is None:
            continue
        taken = used.setdefault((f.policy_id, f.profile_kind, f.profile_id, f.purpose), set())
        taken.add(f.channel)
        nxt = person.next_channel(used=taken, allowed=texts.get(f.campaign_id, set()))
        if nxt is None:
            continue
        taken.add(nxt)
        at, waiting = rules.plan(now, nxt, previous.get((f.profile_kind, f.profile_id), []), urgent=f.campaign_id in urgent)
        rows.append(deliveries.new_row(
            f.campaign_id, f.policy_id, f.profile_kind, f.profile_id, nxt, f.purpose, at, waiting, now, fallback_of=f.id
        ))  # fmt: skip
    await deliveries.insert(session, rows)
    return len(rows)
