"""Helpers for the campaign tests: a test double of the match service and data set-up.

``FakeMatcher`` implements ``MatchService.match_policy`` (policy_push.matching) from a table the
test fills in, so the who-gets-what rules are tested on exact inputs; the web tests use the real
service.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.render import link_code
from policy_push.domain import EnterpriseProfile, Policy
from policy_push.matching.results import PolicyMatchResult, score_histogram
from policy_push.security import PiiCipher
from policy_push.statuses import DeliveryStatus, Purpose
from policy_push.storage import EnterpriseRepository, PolicyRepository
from policy_push.storage.campaign_tables import DeliveryRow
from policy_push.storage.tables import utcnow

REASONS = ["注册地 兴隆台区 属于 盘锦市", "资质 高新技术企业 符合"]


class FakeMatcher:
    """Test double of ``MatchService.match_policy``: per policy id, the eligible
    ``(profile_id, score)`` and the may-qualify ``(profile_id, missing)`` it answers."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[list[tuple[str, float]], list[tuple[str, list[str]]]]] = {}
        self.calls: list[tuple[str, dt.date]] = []

    def set(self, policy_id: str, eligible: Sequence[tuple[str, float]], unknown: Sequence[tuple[str, list[str]]] = ()) -> None:
        self.answers[policy_id] = (list(eligible), list(unknown))

    async def match_policy(
        self, policy: Policy, *, on: dt.date, top_k: int | None = None, min_score: float | None = None
    ) -> PolicyMatchResult:
        self.calls.append((policy.id, on))
        eligible, unknown = self.answers.get(policy.id, ([], []))
        eligible = sorted(eligible, key=lambda e: -e[1])
        return PolicyMatchResult(
            policy_id=policy.id,
            eligible=[{"policy_id": policy.id, "profile_id": p, "eligible": True, "score": s, "reasons": REASONS, "missing": []}
                      for p, s in eligible],
            unknown=[{"policy_id": policy.id, "profile_id": p, "eligible": False, "score": 0.0, "reasons": REASONS[:1],
                      "missing": m} for p, m in unknown],
            counts={"eligible": len(eligible), "unknown": len(unknown), "profiles": len(eligible) + len(unknown) + 3},
            histogram=score_histogram(s for _, s in eligible),
            no_criteria=policy.criteria is None,
        )  # fmt: skip


async def store_policy(sessions: async_sessionmaker[AsyncSession], policy: Policy, actor: str = "editor") -> int:
    async with sessions() as session, session.begin():
        result = await PolicyRepository(session).upsert(policy, actor=actor)
    assert result.version is not None
    return result.version


async def store_enterprises(
    sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher, profiles: Sequence[EnterpriseProfile]
) -> None:
    async with sessions() as session, session.begin():
        # as an import naming its register would: these phones may be sent to (policy_push.reach)
        await EnterpriseRepository(session, cipher).upsert_many(profiles, actor="test", phone_source="测试名册")


async def add_delivery(
    session: AsyncSession, *, campaign_id: str, policy_id: str, profile_id: str, channel: str,
    kind: str = "enterprise", purpose: Purpose = Purpose.ANNOUNCE, status: DeliveryStatus = DeliveryStatus.DELIVERED,
    code: str | None = None, created_at: dt.datetime | None = None,
) -> str:
    """A delivery row; its SMS link code is ``code`` (default: a fresh one, as ``new_row`` gives)."""
    delivery_id = str(uuid.uuid4())
    now = created_at or utcnow()
    row: dict[str, Any] = {
        "id": delivery_id, "campaign_id": campaign_id, "policy_id": policy_id, "profile_kind": kind,
        "profile_id": profile_id, "channel": channel, "purpose": purpose.value, "status": status.value,
        "attempts": 1, "not_before": now, "created_at": now, "updated_at": now, "link_code": code or link_code(),
    }  # fmt: skip
    await session.execute(insert(DeliveryRow).values(**row))
    return delivery_id
