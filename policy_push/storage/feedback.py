"""What recipients said about a policy (有用 / 不相关 / 已申报 / 退订), one row per policy, profile and kind."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.statuses import FeedbackKind

from .campaign_tables import feedback
from .sql import insert_ignore

__all__ = ["answered", "given", "marks", "record"]

_f = feedback.c


async def record(
    session: AsyncSession, *, policy_id: str, profile_kind: str, profile_id: str, kind: FeedbackKind, delivery_id: str,
    at: dt.datetime,
) -> bool:  # fmt: skip
    """Record one answer (idempotent: a double click records once); True when it is new."""
    stmt = insert_ignore(session, feedback, ["policy_id", "profile_kind", "profile_id", "kind"]).values(
        policy_id=policy_id, profile_kind=profile_kind, profile_id=profile_id, kind=kind.value, delivery_id=delivery_id, at=at
    )
    return bool(getattr(await session.execute(stmt), "rowcount", 0))


async def given(session: AsyncSession, policy_id: str, profile_kind: str, profile_id: str) -> frozenset[str]:
    rows = await session.scalars(
        select(_f.kind).where(_f.policy_id == policy_id, _f.profile_kind == profile_kind, _f.profile_id == profile_id)
    )
    return frozenset(rows)


async def answered(session: AsyncSession, policy_id: str, kinds: Collection[FeedbackKind]) -> set[tuple[str, str]]:
    """(kind, profile id) of everyone who gave one of ``kinds`` about the policy."""
    rows = await session.execute(
        select(_f.profile_kind, _f.profile_id).where(_f.policy_id == policy_id, _f.kind.in_([k.value for k in kinds]))
    )
    return {(k, p) for k, p in rows}


async def marks(session: AsyncSession, kinds: Collection[str]) -> list[tuple[str, str, str, str]]:
    """(policy id, profile kind, profile id, kind) of every answer of ``kinds``, oldest first (a later
    mark on a policy replaces an earlier one in the ranking)."""
    rows = await session.execute(
        select(_f.policy_id, _f.profile_kind, _f.profile_id, _f.kind).where(_f.kind.in_(list(kinds))).order_by(_f.at, _f.id)
    )
    return [(p, k, i, kind) for p, k, i, kind in rows]
