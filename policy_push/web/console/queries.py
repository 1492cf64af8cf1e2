"""Read-only queries of the console: the recipient table with names and districts, the district
breakdown, a campaign's progress, and the dashboard's counts.  Writes never happen here (they go
through ``policy_push.campaigns`` and ``policy_push.service``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.domain import LOCAL_TZ
from policy_push.statuses import CampaignState, DeliveryStatus, FeedbackKind, Purpose
from policy_push.storage.campaign_tables import (
    CampaignRecipientRow,
    CampaignRow,
    DeliveryEventRow,
    DeliveryRow,
    FeedbackRow,
)
from policy_push.storage.contacts import profile_table

__all__ = [
    "FAILED",
    "RecipientFilter",
    "campaign_funnel",
    "campaigns_by_state",
    "district_counts",
    "district_funnel",
    "local_midnight",
    "progress",
    "recent_failures",
    "recipient_table",
    "sends_today",
]

_r = CampaignRecipientRow
_d = DeliveryRow
FAILED = (DeliveryStatus.PERMANENT_FAILURE.value, DeliveryStatus.UNREACHABLE.value, DeliveryStatus.TECHNICAL_FAILURE.value)
_TOLD = (DeliveryStatus.SENT.value, DeliveryStatus.DELIVERED.value)


@dataclass(frozen=True, slots=True)
class RecipientFilter:
    eligible: bool | None = None
    channel: str | None = None
    #: a region code: the recipient's region is it or lies within it (prefix of the 6/9/12-digit code)
    district: str | None = None
    min_score: float | None = None
    #: "send": to be messaged; "skipped": not messaged; None: everyone
    send: str | None = None


#: delivery statuses not final yet
_UNFINISHED = frozenset({DeliveryStatus.CREATED.value, DeliveryStatus.SENDING.value, DeliveryStatus.SENT.value})


def _district_prefix(code: str) -> str:
    """211102000000 / 211102 -> 211102; a city 211100 -> 2111 (its districts share the prefix)."""
    code = code.rstrip("0") if len(code) > 6 else code
    while code.endswith("00") and len(code) > 2:
        code = code[:-2]
    return code


async def recipient_table(
    session: AsyncSession, campaign_id: str, kind: str, f: RecipientFilter, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    table = profile_table(kind)
    conds = [_r.campaign_id == campaign_id]
    if f.eligible is not None:
        conds.append(_r.eligible.is_(f.eligible))
    if f.channel:
        conds.append(_r.channel == f.channel)
    if f.min_score is not None:
        conds.append(_r.score >= f.min_score)
    if f.send == "send":
        conds.append(_r.skip_reason.is_(None))
    elif f.send == "skipped":
        conds.append(_r.skip_reason.is_not(None))
    if f.district:
        conds.append(table.c.region.startswith(_district_prefix(f.district), autoescape=True))
    joined = _r.__table__.outerjoin(table, table.c.id == _r.profile_id)
    total = await session.scalar(select(func.count()).select_from(joined).where(*conds))
    stmt = (
        select(_r, table.c.name, table.c.region).select_from(joined).where(*conds)
        .order_by(_r.score.desc(), _r.profile_id).limit(limit).offset(offset)
    )  # fmt: skip
    rows = []
    for rec, name, region in (await session.execute(stmt)).all():
        rows.append({
            "profile_id": rec.profile_id, "kind": rec.profile_kind, "eligible": rec.eligible, "score": rec.score,
            "reasons": list(rec.reasons or []), "missing": list(rec.missing or []), "channel": rec.channel,
            "skip_reason": rec.skip_reason, "excluded_by": rec.excluded_by, "name": name, "region": region,
        })  # fmt: skip
    return rows, int(total or 0)


async def district_counts(session: AsyncSession, campaign_id: str, kind: str) -> list[tuple[str, int, int]]:
    """(region code, recipients to message, all listed) per profile region, biggest first."""
    table = profile_table(kind)
    joined = _r.__table__.outerjoin(table, table.c.id == _r.profile_id)
    stmt = (
        select(table.c.region, func.count(), func.count().filter(_r.skip_reason.is_(None)))
        .select_from(joined).where(_r.campaign_id == campaign_id).group_by(table.c.region)
    )  # fmt: skip
    out = [(region or "", int(to_send), int(n)) for region, n, to_send in (await session.execute(stmt)).all()]
    return sorted(out, key=lambda t: (-t[2], t[0]))


async def progress(session: AsyncSession, campaign_id: str) -> dict[str, Any]:
    """Per channel and status the delivery count; fallbacks; receipts; the latest failures with reasons."""
    grouped = await session.execute(
        select(_d.channel, _d.status, func.count()).where(_d.campaign_id == campaign_id).group_by(_d.channel, _d.status)
    )
    by_channel: dict[str, dict[str, int]] = {}
    for channel, status, n in grouped.all():
        by_channel.setdefault(channel, {})[status] = int(n)
    fallbacks = await session.scalar(
        select(func.count()).select_from(_d).where(_d.campaign_id == campaign_id, _d.fallback_of.is_not(None))
    )
    ids = select(_d.id).where(_d.campaign_id == campaign_id).scalar_subquery()
    receipts = await session.scalar(
        select(func.count()).select_from(DeliveryEventRow)
        .where(DeliveryEventRow.delivery_id.in_(ids), DeliveryEventRow.source.like("%receipt%"))
    )  # fmt: skip
    failures = (await session.execute(
        select(_d.profile_id, _d.channel, _d.status, _d.provider_code, _d.provider_text, _d.updated_at)
        .where(_d.campaign_id == campaign_id, _d.status.in_(FAILED)).order_by(_d.updated_at.desc()).limit(50)
    )).all()  # fmt: skip
    total = sum(sum(v.values()) for v in by_channel.values())
    final = sum(n for v in by_channel.values() for s, n in v.items() if s not in _UNFINISHED)
    return {"by_channel": by_channel, "fallbacks": int(fallbacks or 0), "receipts": int(receipts or 0),
            "failures": [dict(r._mapping) for r in failures], "total": total, "final": final}  # fmt: skip


async def campaigns_by_state(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(CampaignRow.state, func.count()).group_by(CampaignRow.state))
    return {state: int(n) for state, n in rows.all()}


def local_midnight(now: dt.datetime | None = None) -> dt.datetime:
    now = (now or dt.datetime.now(dt.UTC)).astimezone(LOCAL_TZ)
    return now.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)


async def sends_today(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(_d.channel, func.count()).where(_d.sent_at >= local_midnight()).group_by(_d.channel)
    )
    return {channel: int(n) for channel, n in rows.all()}


async def recent_failures(session: AsyncSession, limit: int = 10) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(_d.campaign_id, _d.policy_id, _d.channel, _d.status, _d.provider_code, _d.provider_text, _d.updated_at)
        .where(_d.status.in_(FAILED)).order_by(_d.updated_at.desc()).limit(limit)
    )  # fmt: skip
    return [dict(r._mapping) for r in rows.all()]


async def _people(session: AsyncSession, kind_col: Any, id_col: Any, *conds: Any) -> int:
    """Distinct (kind, id) pairs matching ``conds`` (SQLite has no COUNT(DISTINCT a, b))."""
    inner = select(kind_col, id_col).where(*conds).distinct().subquery()
    return int(await session.scalar(select(func.count()).select_from(inner)) or 0)


def _opened(live: Any, feedback_conds: list[Any]) -> Any:
    """(k, p) of the people who opened the link: the page a message links to was opened
    (``deliveries.opened_at``), or feedback was given on it; a UNION, so each person once."""
    viewed = select(_d.profile_kind.label("k"), _d.profile_id.label("p")).where(
        _d.campaign_id.in_(live), _d.opened_at.is_not(None))
    acted = select(FeedbackRow.profile_kind.label("k"), FeedbackRow.profile_id.label("p")).where(*feedback_conds)
    return union(viewed, acted)


async def campaign_funnel(session: AsyncSession, *, policy_id: str | None = None) -> list[tuple[str, int]]:
    """eligible -> told -> delivered -> opened the link -> 已申报, counted in distinct people.  "Opened": the
    page a message links to was opened (``deliveries.opened_at``), or feedback was given on it."""
    live = select(CampaignRow.id).where(CampaignRow.state != CampaignState.CANCELLED.value, CampaignRow.purpose == Purpose.ANNOUNCE.value)
    if policy_id:
        live = live.where(CampaignRow.policy_id == policy_id)
    eligible = await _people(session, _r.profile_kind, _r.profile_id, _r.campaign_id.in_(live), _r.eligible.is_(True))
    told = await _people(session, _d.profile_kind, _d.profile_id, _d.campaign_id.in_(live), _d.status.in_(_TOLD))
    delivered = await _people(session, _d.profile_kind, _d.profile_id, _d.campaign_id.in_(live),
                              _d.status == DeliveryStatus.DELIVERED.value)  # fmt: skip
    fb = FeedbackRow
    fconds = [fb.delivery_id.is_not(None)] + ([fb.policy_id == policy_id] if policy_id else [])
    either = _opened(live, fconds).subquery()
    opened = int(await session.scalar(select(func.count()).select_from(either)) or 0)
    applied = await _people(session, fb.profile_kind, fb.profile_id, *fconds, fb.kind == FeedbackKind.APPLIED.value)
    return [("符合条件", eligible), ("已通知", told), ("已送达", delivered), ("打开链接", opened), ("已申报", applied)]


async def district_funnel(session: AsyncSession, *, policy_id: str | None = None, top: int = 12
                          ) -> list[tuple[str, int, int, int, int, int]]:  # fmt: skip
    """Per profile region: (region, eligible, told, delivered, opened the link, 已申报) in distinct people,
    biggest first; "opened" as in ``campaign_funnel``."""
    live = select(CampaignRow.id).where(CampaignRow.state != CampaignState.CANCELLED.value, CampaignRow.purpose == Purpose.ANNOUNCE.value)
    if policy_id:
        live = live.where(CampaignRow.policy_id == policy_id)
    rows: dict[str, list[int]] = {}

    def people(kind_col: Any, id_col: Any, *conds: Any) -> Any:
        return select(kind_col.label("k"), id_col.label("p")).where(*conds)

    async def count(kind: str, col: int, who: Any) -> None:
        table = profile_table(kind)
        found = who.subquery()
        stmt = (select(table.c.region, func.count()).select_from(found.join(table, table.c.id == found.c.p))
                .where(found.c.k == kind).group_by(table.c.region))  # fmt: skip
        for region, n in (await session.execute(stmt)).all():
            rows.setdefault(region or "", [0, 0, 0, 0, 0])[col] += int(n)

    fb = FeedbackRow
    fconds = [fb.delivery_id.is_not(None)] + ([fb.policy_id == policy_id] if policy_id else [])
    for kind in ("enterprise", "resident"):
        await count(kind, 0, people(_r.profile_kind, _r.profile_id, _r.campaign_id.in_(live), _r.eligible.is_(True)).distinct())
        await count(kind, 1, people(_d.profile_kind, _d.profile_id, _d.campaign_id.in_(live), _d.status.in_(_TOLD)).distinct())
        await count(kind, 2, people(_d.profile_kind, _d.profile_id, _d.campaign_id.in_(live),
                                    _d.status == DeliveryStatus.DELIVERED.value).distinct())  # fmt: skip
        await count(kind, 3, _opened(live, fconds))
        await count(kind, 4, people(fb.profile_kind, fb.profile_id, *fconds, fb.kind == FeedbackKind.APPLIED.value).distinct())
    ordered = sorted(rows.items(), key=lambda kv: (-kv[1][0], kv[0]))[:top]
    return [(region, *counts) for region, counts in ordered]  # type: ignore[misc]
