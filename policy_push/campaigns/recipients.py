"""Who of a match run gets the message, on which channel, and the counts staff see.

A recipient is messaged on the first channel of their own preference that ``policy_push.reach`` allows
(consent, opt-outs, an address), unless they were told about this policy before: a delivery row for
this policy and purpose exists on some channel and has not failed for good. Moving on to another
channel is a fallback, and a fallback comes only after the first channel failed for good (invariant 2);
every open channel tried already also means ``already_notified``. A may-qualify profile keeps its
channel but is skipped as ``may_qualify`` until staff include it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.reach import Reach
from policy_push.statuses import DELIVERY_FAILED_FOR_GOOD, DeliveryStatus, SkipReason
from policy_push.storage import campaigns as campaign_store

__all__ = ["choose_channel", "list_counts", "recount_summary", "summary_counts"]


def choose_channel(
    reach: Reach | None, *, eligible: bool, told: Mapping[str, DeliveryStatus] | None = None,
    categories: Collection[str] | None = None,
) -> tuple[str | None, SkipReason | None]:
    """The channel to message and the skip reason (None when the recipient will be messaged).

    ``reach`` None: the profile was deleted after the match ran. ``told``: channel -> status of this
    policy's rows for the profile. ``categories``: the policy's, held against the person's interests."""
    if reach is None:
        return None, SkipReason.UNREACHABLE
    usable, why = reach.open_channels(categories)
    if why is not None:
        return None, why
    told = told or {}
    if any(status not in DELIVERY_FAILED_FOR_GOOD for status in told.values()):
        return None, SkipReason.ALREADY_NOTIFIED
    fresh = [ch for ch in usable if ch not in told]
    if not fresh:
        return None, SkipReason.ALREADY_NOTIFIED
    return fresh[0], (None if eligible else SkipReason.MAY_QUALIFY)


def summary_counts(groups: Iterable[tuple[str | None, str | None, int]]) -> dict[str, Any]:
    """Summary counts from (channel, skip_reason, number of recipients) groups."""
    to_message: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    total = 0
    for channel, skip, n in groups:
        total += n
        if skip is None and channel is not None:
            to_message[channel] += n
        elif skip is not None:
            skipped[skip] += n
    return {
        "recipients": total,
        "to_message": {c: to_message[c] for c in sorted(to_message)},
        "to_message_total": sum(to_message.values()),
        "skipped": {s.value: skipped[s.value] for s in SkipReason if skipped[s.value]},
    }


async def list_counts(session: AsyncSession, campaign_id: str) -> dict[str, Any]:
    """The summary's counts of a campaign's list, counted by the database: by channel and skip reason, and
    the SMS recipients per quoted line (``sms_reasons``, what the preview bills by), so that showing a
    campaign of a million recipients counts nothing."""
    counts = summary_counts(await campaign_store.recount(session, campaign_id))
    counts["sms_reasons"] = [[reason, n] for reason, n in await campaign_store.sms_reason_counts(session, campaign_id)]
    return counts


async def recount_summary(session: AsyncSession, campaign_id: str) -> dict[str, Any]:
    """Recompute the recipient counts of a campaign's summary (after exclude/include) and store them."""
    counts = await list_counts(session, campaign_id)
    campaign = await campaign_store.get(session, campaign_id)
    summary = {**(campaign.summary or {}), **counts}
    campaign.summary = summary
    return summary
