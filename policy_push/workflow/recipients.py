"""Who gets what: consent, opt-outs, reachability, channel preference and "told before".

The rules, in order (the first that applies wins; :func:`choose_channel` is the one place):

1. no consent                                   -> ``no_consent``
2. opted out of every channel ("*"), or of every channel they are reachable on -> ``opted_out``
3. no channel of their preference has an address -> ``unreachable``
4. told before: a delivery row for this policy and purpose exists on some channel and has not
   failed for good (delivered, sent or still on its way) -> ``already_notified``.  Moving on to
   another channel is a fallback, and a fallback comes only after the first channel failed for
   good (design.md, invariant 2); every reachable channel tried already -> ``already_notified``
5. otherwise the first such channel in preference order; a may-qualify profile keeps it but is
   skipped as ``may_qualify`` until staff include it.

Deciding needs no personal value: reachability is read from the presence of the keyed contact
hashes, so preparing a campaign decrypts nothing.  Masked contacts for staff views are decrypted
one page at a time, in memory, and masked before they leave this module.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.security import PiiCipher, mask_openid, mask_phone
from policy_push.statuses import DELIVERY_FAILED_FOR_GOOD, DeliveryStatus, Purpose, SkipReason
from policy_push.storage.campaign_tables import DeliveryRow, OptOutRow
from policy_push.storage.tables import Base

__all__ = [
    "ALL_CHANNELS",
    "CONTACT_FIELD",
    "ProfileFacts",
    "choose_channel",
    "load_profile_facts",
    "masked_contacts",
    "notified_channels",
    "opted_out_channels",
    "profile_table",
]

#: the channel -> contact field of a profile (formats.md ``contact``)
CONTACT_FIELD = {"sms": "phone", "wechat": "wechat_openid", "app": "app_registration_id"}
#: an opt-out row with this channel covers every channel
ALL_CHANNELS = "*"
# ids per IN (...) list: far below SQLite's and asyncpg's parameter limits
_CHUNK = 500


def profile_table(kind: str) -> Table:
    if kind == "enterprise":
        return Base.metadata.tables["enterprises"]
    if kind == "resident":
        return Base.metadata.tables["residents"]
    raise ValueError(f"profile kind must be enterprise or resident, got {kind!r}")


@dataclass(frozen=True, slots=True)
class ProfileFacts:
    """What the rules need to know of a profile, without any personal value."""

    profile_id: str
    consent: bool
    #: the profile's channels in preference order that have an address
    reachable: tuple[str, ...]


def choose_channel(
    facts: ProfileFacts | None,
    *,
    eligible: bool,
    opted_out: Iterable[str] = (),
    used: Mapping[str, str] | None = None,
) -> tuple[str | None, SkipReason | None]:
    """The channel to message and the skip reason (None when the recipient will be messaged).

    ``facts`` None: the profile was deleted after the match ran (unreachable).  The channel is
    kept for a may-qualify profile so that including it later needs no new decision."""
    if facts is None:
        return None, SkipReason.UNREACHABLE
    if not facts.consent:
        return None, SkipReason.NO_CONSENT
    blocked = set(opted_out)
    if ALL_CHANNELS in blocked:
        return None, SkipReason.OPTED_OUT
    if not facts.reachable:
        return None, SkipReason.UNREACHABLE
    allowed = [c for c in facts.reachable if c not in blocked]
    if not allowed:
        return None, SkipReason.OPTED_OUT
    used = used or {}
    if any(DeliveryStatus(status) not in DELIVERY_FAILED_FOR_GOOD for status in used.values()):
        return None, SkipReason.ALREADY_NOTIFIED
    fresh = [c for c in allowed if c not in used]
    if not fresh:
        return None, SkipReason.ALREADY_NOTIFIED
    return fresh[0], (None if eligible else SkipReason.MAY_QUALIFY)


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


async def load_profile_facts(session: AsyncSession, kind: str, ids: Sequence[str]) -> dict[str, ProfileFacts]:
    t = profile_table(kind)
    hashes = [t.c[f"{field}_hash"] for field in CONTACT_FIELD.values()]
    out: dict[str, ProfileFacts] = {}
    for chunk in _chunks(ids):
        rows = await session.execute(select(t.c.id, t.c.consent, t.c.document, *hashes).where(t.c.id.in_(chunk)))
        for row in rows:
            preference = (row.document or {}).get("channels") or []
            reachable = tuple(c for c in preference if c in CONTACT_FIELD and getattr(row, f"{CONTACT_FIELD[c]}_hash"))
            out[row.id] = ProfileFacts(row.id, bool(row.consent), reachable)
    return out


async def opted_out_channels(session: AsyncSession, kind: str, ids: Sequence[str]) -> dict[str, set[str]]:
    """profile id -> the channels it opted out of ("*" for all); profiles with none are absent."""
    out: dict[str, set[str]] = defaultdict(set)
    for chunk in _chunks(ids):
        rows = await session.execute(
            select(OptOutRow.profile_id, OptOutRow.channel).where(
                OptOutRow.profile_kind == kind, OptOutRow.profile_id.in_(chunk)
            )
        )
        for profile_id, channel in rows:
            out[profile_id].add(channel)
    return dict(out)


async def notified_channels(
    session: AsyncSession, policy_id: str, kind: str, ids: Sequence[str], *, purpose: Purpose = Purpose.ANNOUNCE
) -> dict[str, dict[str, str]]:
    """profile id -> {channel: status} of the delivery rows that exist for this policy and
    purpose (the unique constraint refuses a second row on a channel whatever the first one's fate)."""
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for chunk in _chunks(ids):
        rows = await session.execute(
            select(DeliveryRow.profile_id, DeliveryRow.channel, DeliveryRow.status).where(
                DeliveryRow.policy_id == policy_id,
                DeliveryRow.profile_kind == kind,
                DeliveryRow.purpose == purpose.value,
                DeliveryRow.profile_id.in_(chunk),
            )
        )
        for profile_id, channel, status in rows:
            out[profile_id][channel] = status
    return dict(out)


async def masked_contacts(
    session: AsyncSession, cipher: PiiCipher, kind: str, ids: Sequence[str]
) -> dict[str, dict[str, str | None]]:
    """profile id -> {channel: masked address}; decrypted in memory only to be masked here."""
    t = profile_table(kind)
    encs = [t.c[f"{field}_enc"] for field in CONTACT_FIELD.values()]
    out: dict[str, dict[str, str | None]] = {}
    for chunk in _chunks(ids):
        for row in await session.execute(select(t.c.id, *encs).where(t.c.id.in_(chunk))):
            masked: dict[str, str | None] = {}
            for channel, field in CONTACT_FIELD.items():
                blob = getattr(row, f"{field}_enc")
                value = None if blob is None else cipher.decrypt(field, blob)
                masked[channel] = mask_phone(value) if channel == "sms" else mask_openid(value)
            out[row.id] = masked
    return out
