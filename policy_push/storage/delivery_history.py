"""What the outbox says about the past: who was told about which policy, on which channel and when (the
frequency cap, fallbacks, what a reminder repeats, who a new draft has already reached), and the counts
staff, the demo and ``/healthz`` read. Read-only; every write of ``deliveries`` is in :mod:`.deliveries`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.statuses import DELIVERY_IN_FLIGHT, DELIVERY_REACHED, DeliveryStatus, Purpose

from .campaign_tables import deliveries as _deliveries
from .campaign_tables import recipients as _recipients
from .sql import among, chunks

__all__ = [
    "counts",
    "fallbacks_made",
    "not_due",
    "notified_channels",
    "previous_sends",
    "previous_sends_of_recipients",
    "reached",
    "used_channels",
    "waiting",
]

_d = _deliveries.c
#: the rows the frequency cap counts: scheduled, on their way or sent
_CAP_COUNTS = [s.value for s in (DeliveryStatus.CREATED, *DELIVERY_IN_FLIGHT)]


async def used_channels(
    session: AsyncSession, profiles: Collection[tuple[str, str]]
) -> dict[tuple[str, str, str, str], set[str]]:
    """(policy, kind, profile, purpose) -> the channels with a row, whatever its fate: the unique constraint
    refuses a second row on a channel, so these can never be a fallback again."""
    wanted = set(profiles)
    kinds = sorted({k for k, _ in wanted})
    out: dict[tuple[str, str, str, str], set[str]] = {}
    for part in chunks(sorted({p for _, p in wanted})):
        rows = await session.execute(
            select(_d.policy_id, _d.profile_kind, _d.profile_id, _d.purpose, _d.channel).where(
                _d.profile_kind.in_(kinds), among(session, _d.profile_id, part)
            )
        )
        for pol, kind, pid, purpose, ch in rows:
            out.setdefault((pol, kind, pid, purpose), set()).add(ch)
    return out


async def notified_channels(
    session: AsyncSession, policy_id: str, kind: str, ids: Sequence[str], *, purpose: Purpose = Purpose.ANNOUNCE
) -> dict[str, dict[str, DeliveryStatus]]:
    """profile id -> {channel: status} of the rows of this policy and purpose."""
    out: dict[str, dict[str, DeliveryStatus]] = {}
    for part in chunks(list(ids)):
        rows = await session.execute(
            select(_d.profile_id, _d.channel, _d.status).where(
                _d.policy_id == policy_id, _d.profile_kind == kind, _d.purpose == purpose.value, among(session, _d.profile_id, part)
            )
        )
        for pid, channel, status in rows:
            out.setdefault(pid, {})[channel] = DeliveryStatus(status)
    return out


def _cap_time(sent_at: dt.datetime | None, not_before: dt.datetime) -> dt.datetime:
    return sent_at or not_before


async def previous_sends(
    session: AsyncSession, profiles: Collection[tuple[str, str]]
) -> dict[tuple[str, str], list[dt.datetime]]:
    """Per (kind, id): the times of the profile's messages sent, on their way or scheduled (all campaigns,
    all channels), which is what the frequency cap counts."""
    wanted = set(profiles)
    kinds = sorted({kind for kind, _ in wanted})
    out: dict[tuple[str, str], list[dt.datetime]] = {}
    for part in chunks(sorted({pid for _, pid in wanted})):
        # profile_kind first, so ix_deliveries_profile (kind, id, sent_at) serves the look-up
        rows = await session.execute(
            select(_d.profile_kind, _d.profile_id, _d.sent_at, _d.not_before).where(
                _d.profile_kind.in_(kinds), among(session, _d.profile_id, part), _d.status.in_(_CAP_COUNTS)
            )
        )
        for kind, pid, sent_at, not_before in rows:
            if (kind, pid) in wanted:
                out.setdefault((kind, pid), []).append(_cap_time(sent_at, not_before))
    return out


async def previous_sends_of_recipients(
    session: AsyncSession, campaign_id: str, after: str, last: str
) -> dict[tuple[str, str], list[dt.datetime]]:
    """:func:`previous_sends` for a campaign's recipients with ``after < profile_id <= last``: a join on a
    key range instead of a 1,000-item IN list, which PostgreSQL plans slowly at this size."""
    r = _recipients.c
    rows = await session.execute(
        select(_d.profile_kind, _d.profile_id, _d.sent_at, _d.not_before)
        .join(_recipients, and_(r.profile_id == _d.profile_id, r.profile_kind == _d.profile_kind))
        .where(r.campaign_id == campaign_id, r.profile_id > after, r.profile_id <= last, _d.status.in_(_CAP_COUNTS))
    )
    out: dict[tuple[str, str], list[dt.datetime]] = {}
    for kind, pid, sent_at, not_before in rows:
        out.setdefault((kind, pid), []).append(_cap_time(sent_at, not_before))
    return out


async def reached(session: AsyncSession, campaign_id: str, purpose: Purpose) -> list[tuple[str, str, str]]:
    """(kind, profile id, channel) of the campaign's rows the provider took, by profile id."""
    rows = await session.execute(
        select(_d.profile_kind, _d.profile_id, _d.channel)
        .where(_d.campaign_id == campaign_id, _d.purpose == purpose.value, _d.status.in_([s.value for s in DELIVERY_REACHED]))
        .order_by(_d.profile_id)
    )
    return [(k, p, c) for k, p, c in rows]


async def counts(session: AsyncSession) -> dict[tuple[str, str], int]:
    """(channel, status) -> rows."""
    out: dict[tuple[str, str], int] = {}
    for channel, status, n in await session.execute(
        select(_d.channel, _d.status, func.count()).group_by(_d.channel, _d.status)
    ):
        out[(channel, status)] = int(n)
    return out


async def waiting(session: AsyncSession) -> dict[str, int]:
    """Why ``created`` rows wait (``waiting_for``; "due" when nothing holds them)."""
    rows = await session.execute(
        select(_d.waiting_for, func.count()).where(_d.status == DeliveryStatus.CREATED.value).group_by(_d.waiting_for)
    )
    return {(reason or "due"): int(n) for reason, n in rows}


async def fallbacks_made(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).where(_d.fallback_of.is_not(None))) or 0)


async def not_due(session: AsyncSession, *, now: dt.datetime) -> int:
    """``created`` rows not due yet at ``now`` (quiet hours, the cap, a retry's backoff)."""
    n = await session.scalar(select(func.count()).where(_d.status == DeliveryStatus.CREATED.value, _d.not_before > now))
    return int(n or 0)


async def sent_since(
    session: AsyncSession, profiles: Collection[tuple[str, str]], since: dt.datetime
) -> dict[tuple[str, str], list[dt.datetime]]:
    """Per (kind, id): when each message on its way or sent since ``since`` went (all campaigns and
    channels), oldest first: what a person's own weekly cap counts at claim time."""
    wanted = set(profiles)
    kinds = sorted({kind for kind, _ in wanted})
    out: dict[tuple[str, str], list[dt.datetime]] = {}
    went = func.coalesce(_d.sent_at, _d.claimed_at)
    for part in chunks(sorted({pid for _, pid in wanted})):
        rows = await session.execute(
            select(_d.profile_kind, _d.profile_id, went).where(
                _d.profile_kind.in_(kinds), among(session, _d.profile_id, part),
                _d.status.in_([s.value for s in DELIVERY_IN_FLIGHT]), went >= since,
            )
        )  # fmt: skip
        for kind, pid, at in rows:
            if (kind, pid) in wanted:
                out.setdefault((kind, pid), []).append(at)
    return {k: sorted(v) for k, v in out.items()}
