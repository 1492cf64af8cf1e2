"""Inbound messages: SMS replies and WeChat follows, unfollows and messages, as ``sending.inbound`` records
them; the sender kept as a keyed hash and encrypted, the text encrypted (``InboundMessageRow``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.security import PiiCipher, mask_contact
from policy_push.statuses import InboundKind

from .campaign_tables import InboundMessageRow
from .sql import insert_ignore

__all__ = ["SENDER_FIELD", "TEXT_FIELD", "listed", "purge_before", "record"]

inbound: Table = InboundMessageRow.__table__  # type: ignore[assignment]
_i = inbound.c
#: the ``PiiCipher`` field names the sender and the text are encrypted under
SENDER_FIELD = {"sms": "phone", "wechat": "wechat_openid"}
TEXT_FIELD = "inbound_text"


async def record(
    session: AsyncSession, cipher: PiiCipher, *, provider: str, channel: str, kind: InboundKind, sender: str,
    text: str, dedupe: str, profiles: int, sent_at: dt.datetime | None, now: dt.datetime,
) -> bool:  # fmt: skip
    """Store one inbound message; False when the same push was recorded before (``dedupe``)."""
    field = SENDER_FIELD[channel]
    stmt = insert_ignore(session, inbound, ["dedupe_key"]).values(
        provider=provider, channel=channel, kind=kind.value, sender_hash=cipher.lookup_hash(field, sender),
        sender_enc=cipher.encrypt(field, sender), text_enc=cipher.encrypt(TEXT_FIELD, text) if text else None,
        profiles=profiles, dedupe_key=cipher.lookup_hash("inbound", dedupe), sent_at=sent_at, received_at=now,
    )  # fmt: skip
    return bool(getattr(await session.execute(stmt), "rowcount", 0))


async def listed(
    session: AsyncSession, cipher: PiiCipher, *, kind: InboundKind | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """Newest first, for staff: the sender masked, the text decrypted."""
    where = [_i.kind == kind.value] if kind is not None else []
    total = int(await session.scalar(select(func.count()).select_from(inbound).where(*where)) or 0)
    rows = await session.execute(select(inbound).where(*where).order_by(_i.received_at.desc(), _i.id.desc()).limit(limit).offset(offset))
    out = []
    for r in rows.mappings():
        out.append({
            "id": r["id"], "provider": r["provider"], "channel": r["channel"], "kind": r["kind"],
            "sender": mask_contact(cipher.decrypt(SENDER_FIELD[r["channel"]], r["sender_enc"])),
            "text": cipher.decrypt(TEXT_FIELD, r["text_enc"]) if r["text_enc"] is not None else "",
            "profiles": r["profiles"], "sent_at": r["sent_at"], "received_at": r["received_at"],
        })  # fmt: skip
    return out, total


async def purge_before(session: AsyncSession, cutoff: dt.datetime) -> int:
    """Delete inbound messages received before ``cutoff`` (retention); the opt-outs they made stay."""
    result = await session.execute(delete(inbound).where(_i.received_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
