"""Recording a provider's answers: the move each answer means for its row (``sending.outcomes``), and the
one write transaction that applies them, starts the fallbacks of failures for good, records a WeChat
"require subscribe" (43004) as the unfollow it is (``sending.inbound``), applies receipts that outran the
record, and stores the router's provider switches.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from channels import ProviderSwitch, SendResult
from policy_push.statuses import Code, DeliveryStatus, EventSource
from policy_push.storage import deliveries
from policy_push.storage.deliveries import Delivery, Move
from policy_push.storage.sql import begin_write

from .fallbacks import failed_for_good, fall_back
from .inbound import WECHAT_NOT_FOLLOWING, apply_not_following
from .outcomes import after_send
from .receipts import apply_early_receipts
from .rules import SendRules

__all__ = ["moves_after_send", "record_results"]


def moves_after_send(
    rows: Sequence[Delivery], results: Mapping[str, SendResult], *, now: dt.datetime, rules: SendRules,
    rng: random.Random, sim_per_real: float,
) -> tuple[list[Move], list[str]]:  # fmt: skip
    """The move of each row after its provider's answer, and the rows whose answer leaves them to settle."""
    moves: list[Move] = []
    unsure: list[str] = []
    for row in rows:
        mv = after_send(row, results[row.id], now=now, rules=rules, rng=rng, sim_per_real=sim_per_real)
        if mv is None:
            unsure.append(row.id)
        else:
            moves.append(mv)
    return moves, unsure


async def record_results(
    s: AsyncSession, rows: Sequence[Delivery], moves: list[Move], unsure: list[str], switches: list[ProviderSwitch],
    *, now: dt.datetime, rules: SendRules,
) -> dict[str, DeliveryStatus]:  # fmt: skip
    """Apply one provider's results in the caller's transaction; the moves applied, by row id (a move of a
    row that left the claim meanwhile is refused by its guard)."""
    await begin_write(s)
    applied = await deliveries.move(s, moves, allowed_from={DeliveryStatus.SENDING}, source=EventSource.DISPATCH, now=now)
    await fall_back(s, failed_for_good(rows, applied, moves), now=now, rules=rules)
    # WeChat's "require subscribe": an unfollow whose event may never have reached us, recorded as one
    wechat = {r.id: (r.profile_kind, r.profile_id) for r in rows if r.channel == "wechat"}
    gone = {wechat[mv.delivery_id] for mv in moves if mv.delivery_id in wechat and mv.code == WECHAT_NOT_FOLLOWING}
    if gone:
        await apply_not_following(s, sorted(gone), now=now)
    # receipts that outran this record can match now that the message ids are known; in
    # this transaction, so no receipt tick sees the row sent without them
    message_ids = {mv.values["provider_message_id"] for mv in moves
                   if mv.to is DeliveryStatus.SENT and mv.delivery_id in applied and mv.values.get("provider_message_id")}  # fmt: skip
    if message_ids:
        await apply_early_receipts(s, now=now, rules=rules, provider_message_ids=message_ids)
    await deliveries.record_events(s, [
        {"delivery_id": i, "at": now, "from_status": DeliveryStatus.SENDING.value, "to_status": None,
         "source": EventSource.DISPATCH.value, "code": Code.MAYBE_SENT.value, "text": "left for settle"}
        for i in unsure
    ])  # fmt: skip
    await deliveries.record_switches(s, switches)
    return applied
