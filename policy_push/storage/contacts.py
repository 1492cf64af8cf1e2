"""Profiles as the send rules see them: consent, channel preference, which addresses exist, opt-outs;
the addresses themselves (decrypted for one batch, in memory only); masked addresses for staff views;
and erasing contact data past retention.

``profile_table(kind)`` is the one map from a profile kind to its table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Table, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.errors import InvalidInput
from policy_push.reach import ALL_CHANNELS, CHANNELS, CONTACT_FIELD, Reach
from policy_push.security import PiiCipher, mask_contact
from policy_push.statuses import CAMPAIGN_OPEN, DELIVERY_UNSENT, OptOutSource

from .audit import AuditLog
from .campaign_tables import campaigns, deliveries, opt_outs, recipients
from .sql import among, chunks, insert_ignore
from .subscriber_tables import SubscriberAccountRow, SubscriberLinkRow, SubscriberPreferenceRow
from .tables import Base

__all__ = [
    "PROFILE_KINDS",
    "addresses",
    "contact_hashes",
    "load_reach",
    "masked_contacts",
    "opted_out_of_all",
    "policy_categories",
    "profile_exists",
    "profile_table",
    "profiles_by_hash",
    "purge_stale_contacts",
    "record_opt_out",
]

PROFILE_KINDS = ("enterprise", "resident")
_TABLES = {"enterprise": "enterprises", "resident": "residents"}
_o = opt_outs.c
_l = SubscriberLinkRow.__table__.c  # type: ignore[attr-defined]
_a = SubscriberAccountRow.__table__.c  # type: ignore[attr-defined]
_p = SubscriberPreferenceRow.__table__.c  # type: ignore[attr-defined]


def profile_table(kind: str) -> Table:
    """The table of a profile kind; an unknown kind is an error naming the known ones."""
    try:
        return Base.metadata.tables[_TABLES[kind]]
    except KeyError:
        raise InvalidInput(f"profile kind must be one of {', '.join(PROFILE_KINDS)}, got {kind!r}") from None


def _by_kind(profiles: Collection[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, set[str]] = {}
    for kind, pid in profiles:
        out.setdefault(kind, set()).add(pid)
    return {kind: sorted(ids) for kind, ids in out.items()}


async def _opt_outs(session: AsyncSession, profiles: Collection[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for kind, ids in _by_kind(profiles).items():
        for part in chunks(ids):
            for pid, channel in await session.execute(
                select(_o.profile_id, _o.channel).where(_o.profile_kind == kind, among(session, _o.profile_id, part))
            ):
                out.setdefault((kind, pid), set()).add(channel)
    return out


async def _subscribed(session: AsyncSession, kind: str, ids: Sequence[str]) -> dict[str, tuple[set[str], set[str]]]:
    """profile id -> (proven phone hashes, bound openid hashes) of the accounts actively linked to it;
    absent: no subscriber speaks for the profile."""
    out: dict[str, tuple[set[str], set[str]]] = {}
    for part in chunks(ids):
        rows = await session.execute(
            select(_l.profile_id, _a.phone_hash, _a.wechat_openid_hash)
            .join_from(SubscriberLinkRow, SubscriberAccountRow, _a.id == _l.account_id)
            .where(_l.profile_kind == kind, among(session, _l.profile_id, part), _l.state == "active", _a.state == "active")
        )
        for pid, phone_hash, openid_hash in rows:
            phones, openids = out.setdefault(pid, (set(), set()))
            if phone_hash:
                phones.add(phone_hash)
            if openid_hash:
                openids.add(openid_hash)
    return out


async def _weekly_max(session: AsyncSession, kind: str, ids: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in chunks(ids):
        rows = await session.execute(select(_p.profile_id, _p.weekly_max).where(
            _p.profile_kind == kind, among(session, _p.profile_id, part), _p.weekly_max.is_not(None)))  # fmt: skip
        out.update({pid: int(n) for pid, n in rows})
    return out


def _unproven(
    hashes: dict[str, str | None], proofs: tuple[set[str], set[str]] | None, phone_source: str | None
) -> frozenset[str]:
    """Channels whose address was never proven (``policy_push.reach``): by the profile's subscribers when
    any speaks for it; else its phone, unless the staff who imported it named the register it came from."""
    if proofs is None:
        return frozenset({"sms"}) if hashes.get("sms") and phone_source is None else frozenset()
    phones, openids = proofs
    out = set()
    if hashes.get("sms") and hashes["sms"] not in phones:
        out.add("sms")
    if hashes.get("wechat") and hashes["wechat"] not in openids:
        out.add("wechat")
    return frozenset(out)


async def load_reach(session: AsyncSession, profiles: Collection[tuple[str, str]]) -> dict[tuple[str, str], Reach]:
    """(kind, id) -> what the rules of ``policy_push.reach`` need; a deleted profile is absent."""
    blocked = await _opt_outs(session, profiles)
    out: dict[tuple[str, str], Reach] = {}
    for kind, ids in _by_kind(profiles).items():
        t = profile_table(kind)
        hashes = [t.c[f"{CONTACT_FIELD[ch]}_hash"] for ch in CHANNELS]
        subscribed = await _subscribed(session, kind, ids)
        weekly = await _weekly_max(session, kind, ids)
        for part in chunks(ids):
            for pid, consent, doc, phone_source, *present in await session.execute(
                select(t.c.id, t.c.consent, t.c.document, t.c.phone_source, *hashes).where(among(session, t.c.id, part))
            ):
                doc = doc or {}
                preference = tuple(ch for ch in doc.get("channels") or [] if ch in CONTACT_FIELD)
                by_channel = dict(zip(CHANNELS, present, strict=True))
                addressed = frozenset(ch for ch, h in by_channel.items() if h)
                out[(kind, pid)] = Reach(
                    kind, pid, bool(consent), preference, addressed, frozenset(blocked.get((kind, pid), ())),
                    unproven=_unproven(by_channel, subscribed.get(pid), phone_source),
                    categories=frozenset(c for c in doc.get("categories") or [] if isinstance(c, str)),
                    weekly_max=weekly.get(pid),
                )  # fmt: skip
    return out


async def addresses(
    session: AsyncSession, cipher: PiiCipher, wanted: Collection[tuple[str, str, str]]
) -> dict[tuple[str, str, str], str]:
    """(kind, id, channel) -> the decrypted address, for one batch; absent where there is none.
    Decrypted in memory only, for the caller to use at once and drop."""
    by_kind: dict[str, set[tuple[str, str]]] = {}
    for kind, pid, channel in wanted:
        by_kind.setdefault(kind, set()).add((pid, channel))
    out: dict[tuple[str, str, str], str] = {}
    for kind, pairs in by_kind.items():
        t = profile_table(kind)
        fields = sorted({CONTACT_FIELD[ch] for _, ch in pairs})
        cols = [t.c[f"{f}_enc"] for f in fields]
        for part in chunks(sorted({pid for pid, _ in pairs})):
            for pid, *blobs in await session.execute(select(t.c.id, *cols).where(among(session, t.c.id, part))):
                found = dict(zip(fields, blobs, strict=True))
                for channel in CHANNELS:
                    blob = found.get(CONTACT_FIELD[channel])
                    if (pid, channel) in pairs and blob is not None:
                        out[(kind, pid, channel)] = cipher.decrypt(CONTACT_FIELD[channel], blob)
    return out


async def masked_contacts(
    session: AsyncSession, cipher: PiiCipher, kind: str, ids: Sequence[str]
) -> dict[str, dict[str, str | None]]:
    """profile id -> {channel: masked address}; decrypted in memory only to be masked here."""
    plain = await addresses(session, cipher, {(kind, pid, ch) for pid in ids for ch in CHANNELS})
    return {pid: {ch: mask_contact(plain.get((kind, pid, ch))) for ch in CHANNELS} for pid in ids}


async def profile_exists(session: AsyncSession, kind: str, profile_id: str) -> bool:
    t = profile_table(kind)
    return await session.scalar(select(t.c.id).where(t.c.id == profile_id)) is not None


async def opted_out_of_all(session: AsyncSession, kind: str, profile_id: str) -> bool:
    found = await session.scalar(
        select(_o.channel).where(_o.profile_kind == kind, _o.profile_id == profile_id, _o.channel == ALL_CHANNELS)
    )
    return found is not None


async def record_opt_out(
    session: AsyncSession, *, profile_kind: str, profile_id: str, channel: str, source: OptOutSource, actor: str,
    at: dt.datetime,
) -> bool:  # fmt: skip
    """Record an opt-out (idempotent, audited); True when it is new."""
    stmt = insert_ignore(session, opt_outs, ["profile_kind", "profile_id", "channel"]).values(
        profile_kind=profile_kind, profile_id=profile_id, channel=channel, at=at, source=source.value
    )
    created = bool(getattr(await session.execute(stmt), "rowcount", 0))
    if created:
        await AuditLog(session).record(
            actor=actor, action="opt_out.create", entity_type=profile_kind, entity_id=profile_id,
            detail={"channel": channel, "source": source.value},
        )  # fmt: skip
    return created


async def purge_stale_contacts(session: AsyncSession, kind: str, *, cutoff: dt.datetime, detail: dict[str, Any]) -> list[str]:
    """Erase the contact data (ciphertexts and look-up hashes) of profiles not updated since ``cutoff``, in
    no open campaign and with no delivery still to send; audited per profile. Returns their ids."""
    t = profile_table(kind)
    r, c, d = recipients.c, campaigns.c, deliveries.c
    fields = list(CONTACT_FIELD.values())
    in_open = exists().where(r.profile_id == t.c.id, r.profile_kind == kind, r.campaign_id == c.id,
                             c.state.in_([s.value for s in CAMPAIGN_OPEN]))  # fmt: skip
    in_flight = exists().where(d.profile_id == t.c.id, d.profile_kind == kind, d.status.in_([s.value for s in DELIVERY_UNSENT]))
    has_contact = or_(*(t.c[f"{f}_enc"].is_not(None) for f in fields))
    ids = list((await session.execute(select(t.c.id).where(t.c.updated_at < cutoff, has_contact, ~in_open, ~in_flight))).scalars())
    cleared: dict[str, Any] = {f"{f}_{suffix}": None for f in fields for suffix in ("enc", "hash")} | {"phone_source": None}
    for part in chunks(ids):
        await session.execute(update(t).where(among(session, t.c.id, part)).values(**cleared))
    await AuditLog(session).record_many(
        [{"actor": "scheduler", "action": f"{kind}.contact_purged", "entity_type": kind, "entity_id": i, "detail": detail}
         for i in ids]
    )  # fmt: skip
    return ids


async def contact_hashes(session: AsyncSession, profiles: Collection[tuple[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
    """(kind, id) -> {channel: keyed look-up hash of its address}: tells apart the members of a batch send
    that share one provider message id, without decrypting anything."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for kind, ids in _by_kind(profiles).items():
        t = profile_table(kind)
        hashes = [t.c[f"{CONTACT_FIELD[ch]}_hash"] for ch in CHANNELS]
        for part in chunks(ids):
            for pid, *found in await session.execute(select(t.c.id, *hashes).where(among(session, t.c.id, part))):
                out[(kind, pid)] = {ch: h for ch, h in zip(CHANNELS, found, strict=True) if h}
    return out


async def profiles_by_hash(session: AsyncSession, channel: str, digest: str) -> list[tuple[str, str]]:
    """(kind, id) of every profile whose address on ``channel`` has this keyed look-up hash (an SMS reply's
    phone, a WeChat event's openid), enterprises and residents alike."""
    column = f"{CONTACT_FIELD[channel]}_hash"
    out: list[tuple[str, str]] = []
    for kind in PROFILE_KINDS:
        t = profile_table(kind)
        out += [(kind, pid) for pid in (await session.execute(select(t.c.id).where(t.c[column] == digest))).scalars()]
    return out


async def policy_categories(session: AsyncSession, policy_ids: Collection[str]) -> dict[str, list[str]]:
    """policy id -> its categories, held against what each person chose (``Reach.wants``)."""
    t = Base.metadata.tables["policies"]
    out: dict[str, list[str]] = {}
    for part in chunks(sorted(policy_ids)):
        rows = await session.execute(select(t.c.id, t.c.categories).where(among(session, t.c.id, part)))
        out.update({pid: list(cats or []) for pid, cats in rows})
    return out
