"""Seeding a sending campaign fast: raw bulk inserts of profiles, recipients and messages.

Used by the dispatch tests, the fault tests (20,000 recipients) and ``bench/dispatch`` (100,000),
where going through the API per profile would measure the import rather than dispatch. The rows are
what the repositories and campaigns/drafting.py write (encrypted contacts with look-up hashes,
bodies from ``build_message_bodies``), minus the validation those already test.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.campaigns import MessageSettings, approval_hash, build_message_bodies
from policy_push.config import Settings
from policy_push.security import PiiCipher
from policy_push.statuses import CampaignState, Purpose
from policy_push.storage import PolicyRepository
from policy_push.storage.campaign_tables import CampaignMessageRow, CampaignRecipientRow, CampaignRow
from policy_push.storage.tables import ResidentRow
from tests.factories import make_policy

CHANNELS = ("sms", "wechat", "app")
#: the register the seeded phones are vouched for by
SEED_REGISTER = "测试名册"


def phone(i: int) -> str:
    return f"139{i % 10**8:08d}"


def openid(i: int) -> str:
    return f"oSim{i:024d}"  # o + 27 characters: a follower in the WeChat simulator


def reg_id(i: int) -> str:
    return f"reg{i:013d}"


def address(channel: str, i: int) -> str:
    return {"sms": phone, "wechat": openid, "app": reg_id}[channel](i)


@dataclass(frozen=True)
class Seeded:
    campaign_id: str
    policy_id: str
    #: profile id -> (first channel, the full preference)
    recipients: dict[str, tuple[str, list[str]]]

    def index_of(self, profile_id: str) -> int:
        return int(profile_id.split("-")[1])


def by_share(shares: dict[str, float]) -> Callable[[int], str]:
    """Channel of recipient i from shares, deterministic and interleaved (e.g. {"sms": .5, "app": .5})."""
    cum: list[tuple[float, str]] = []
    total = 0.0
    for ch, share in shares.items():
        total += share
        cum.append((total, ch))

    def pick(i: int) -> str:
        x = ((i * 0.6180339887) % 1.0) * total
        return next(ch for bound, ch in cum if x < bound)

    return pick


async def seed_campaign(
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    settings: Settings,
    *,
    n: int,
    channel_of: Callable[[int], str] = lambda i: "sms",
    fallbacks: bool = True,
    start: int = 1,
    policy_seq: int = 1,
    urgent: bool = False,
    state: CampaignState = CampaignState.SCHEDULED,
    send_at: dt.datetime | None = None,
    purpose: Purpose = Purpose.ANNOUNCE,
    apply_until: str = "2099-12-31",
    existing_profiles: bool = False,
    policy_overrides: dict[str, Any] | None = None,
    indices: Sequence[int] | None = None,
    texts: Sequence[str] = CHANNELS,
) -> Seeded:
    """A campaign (approved by a second person, ``state``) for ``n`` residents r-<start..start+n-1>, or for
    r-<i> of each of ``indices``; ``texts``: the channels the campaign has a text for (a fallback needs one)."""
    now = dt.datetime.now(dt.UTC)
    policy = make_policy(
        policy_seq, audience="resident", apply_until=apply_until, urgent=urgent, criteria=None, **(policy_overrides or {})
    )
    campaign_id = str(uuid.uuid4())
    chosen: dict[str, tuple[str, list[str]]] = {}
    profiles: list[dict[str, Any]] = []
    recips: list[dict[str, Any]] = []
    for i in range(start, start + n) if indices is None else indices:
        pid = f"r-{i:07d}"
        first = channel_of(i)
        prefs = [first, *(c for c in CHANNELS if c != first)] if fallbacks else [first]
        chosen[pid] = (first, prefs)
        if not existing_profiles:
            row: dict[str, Any] = {
                "id": pid, "name": f"居民{i}", "region": "211102", "consent": True,
                "document": {"id": pid, "name": f"居民{i}", "channels": prefs, "consent": True},
                "content_hash": f"{i:064x}", "created_at": now, "updated_at": now,
                "hukou_region": "211102", "id_number_enc": None, "id_number_hash": None,
                # what an import naming its register writes: these phones may be sent to (policy_push.reach)
                "phone_source": SEED_REGISTER,
            }  # fmt: skip
            for ch in CHANNELS:
                col = {"sms": "phone", "wechat": "wechat_openid", "app": "app_registration_id"}[ch]
                value = address(ch, i)
                row[f"{col}_enc"] = cipher.encrypt(col, value)
                row[f"{col}_hash"] = cipher.lookup_hash(col, value)
            profiles.append(row)
        recips.append({
            "campaign_id": campaign_id, "profile_id": pid, "profile_kind": "resident", "eligible": True,
            "score": 1.0, "reasons": ["身份标签：退役军人"], "message_reason": "身份标签：退役军人",
            "public_reasons": ["身份标签：退役军人"], "missing": [], "channel": first,
            "skip_reason": None, "excluded_by": None,
        })  # fmt: skip
    bodies = build_message_bodies(
        policy, tuple(texts), MessageSettings.from_settings(settings), sample_reasons=["身份标签：退役军人"]
    )
    async with sessions() as s, s.begin():
        await PolicyRepository(s).upsert(policy, actor="seed")
        for part in _parts(profiles):
            await s.execute(insert(ResidentRow.__table__), part)
        await s.execute(
            insert(CampaignRow.__table__),
            [{
                "id": campaign_id, "policy_id": policy.id, "policy_version": 1, "audience": "resident",
                "purpose": purpose.value, "state": state.value, "urgent": urgent, "prepared_by": "alice",
                "approved_by": "bob", "approved_at": now, "approval_sha256": "0" * 64, "send_at": send_at,
                "summary": {}, "created_at": now, "updated_at": now,
            }],
        )  # fmt: skip
        for part in _parts(recips):
            await s.execute(insert(CampaignRecipientRow.__table__), part)
        await s.execute(
            insert(CampaignMessageRow.__table__),
            [{"campaign_id": campaign_id, "channel": ch, "body": body} for ch, body in bodies.items()],
        )
    async with sessions() as s, s.begin():
        # the real approval hash, so campaigns.approval.verify_approval accepts the campaign
        digest = await approval_hash(s, campaign_id)
        await s.execute(update(CampaignRow.__table__).where(CampaignRow.id == campaign_id).values(approval_sha256=digest))
    return Seeded(campaign_id, policy.id, chosen)


def _parts(rows: Sequence[dict[str, Any]], size: int = 2000) -> list[list[dict[str, Any]]]:
    return [list(rows[i : i + size]) for i in range(0, len(rows), size)]

