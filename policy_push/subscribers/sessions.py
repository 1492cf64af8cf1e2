"""Subscriber sessions: a bearer token for the app, an encrypted cookie (``pp_sub``) for the pages.

Both carry a random 32-byte token whose SHA-256 is the session row's key, so a session can be ended
(sign-out, erasure) and a copy of the table signs nobody in. The cookie wraps the token in AES-GCM
under a key derived (HKDF) from the PII key with its own label, together with its expiry, so a cookie
cannot be forged, altered or read, and one from another deployment is refused. Staff sessions
(``pp_staff``) are another thing entirely: nothing here reads or writes them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from policy_push.storage.subscriber_tables import (
    SubscriberAccountRow,
    SubscriberLinkRow,
    SubscriberSessionRow,
)
from policy_push.storage.tables import UTCDateTime

__all__ = [
    "COOKIE_NAME", "SESSION_TTL", "CookieSealer", "Signed", "end_sessions", "find_session", "open_session", "purge_sessions",
    "session_profiles",
]

COOKIE_NAME = "pp_sub"
SESSION_TTL = dt.timedelta(days=30)
_s = SubscriberSessionRow.__table__.c  # type: ignore[attr-defined]
_a = SubscriberAccountRow.__table__.c  # type: ignore[attr-defined]
_l = SubscriberLinkRow.__table__.c  # type: ignore[attr-defined]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Signed:
    """Who a request is: the account and the session row."""

    account_id: str
    session_id: int
    client: str


class CookieSealer:
    """AES-GCM over ``{"t": token, "exp": unix seconds}``; the key comes from the PII key (HKDF,
    label ``subscriber-cookie/v1``), so no second secret has to be configured and kept."""

    def __init__(self, pii_key_b64: str) -> None:
        master = base64.b64decode(pii_key_b64.strip())
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"policy_push/subscriber-cookie/v1").derive(master)
        self._aead = AESGCM(key)

    def seal(self, token: str, expires: dt.datetime) -> str:
        nonce = os.urandom(12)
        body = json.dumps({"t": token, "exp": int(expires.timestamp())}).encode()
        return base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, body, COOKIE_NAME.encode())).decode().rstrip("=")

    def open(self, value: str, now: dt.datetime) -> str | None:
        """The token inside a cookie, or None when it is not ours, altered or expired."""
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            if len(raw) < 12 + 16:
                return None
            body = json.loads(self._aead.decrypt(raw[:12], raw[12:], COOKIE_NAME.encode()))
        except (InvalidTag, binascii.Error, ValueError):
            return None
        if not isinstance(body, dict) or not isinstance(body.get("t"), str) or not isinstance(body.get("exp"), int):
            return None
        return body["t"] if body["exp"] > now.timestamp() else None


async def open_session(session: AsyncSession, account_id: str, *, client: str, now: dt.datetime) -> tuple[str, dt.datetime]:
    """A new session for the account: (the token, its expiry). The token is shown once, here."""
    token = secrets.token_urlsafe(32)
    expires = now + SESSION_TTL
    session.add(SubscriberSessionRow(account_id=account_id, token_hash=token_hash(token), client=client, created_at=now,
                                     expires_at=expires, revoked_at=None))  # fmt: skip
    await session.flush()
    return token, expires


async def find_session(session: AsyncSession, token: str, *, now: dt.datetime) -> Signed | None:
    """The live session of a token (not expired, not ended, its account not erased), or None."""
    if not token or len(token) > 128:
        return None
    row = (await session.execute(
        select(_s.id, _s.account_id, _s.client).join_from(SubscriberSessionRow, SubscriberAccountRow, _a.id == _s.account_id)
        .where(_s.token_hash == token_hash(token), _s.revoked_at.is_(None), _s.expires_at > now, _a.state == "active")
    )).first()  # fmt: skip
    return None if row is None else Signed(row.account_id, row.id, row.client)


async def end_sessions(session: AsyncSession, account_id: str, *, now: dt.datetime, only: int | None = None) -> None:
    """End one session (``only``) or every session of the account."""
    stmt = update(SubscriberSessionRow.__table__).where(_s.account_id == account_id, _s.revoked_at.is_(None))
    if only is not None:
        stmt = stmt.where(_s.id == only)
    await session.execute(stmt.values(revoked_at=now))


#: built once: building the statement per request cost more than the cached compilation it hits
_SESSION_PROFILES = (
    select(_s.id, _s.account_id, _s.client, _l.profile_kind, _l.profile_id, _l.state)
    .join_from(SubscriberSessionRow, SubscriberAccountRow, _a.id == _s.account_id)
    .outerjoin(SubscriberLinkRow, _l.account_id == _s.account_id)
    .where(_s.token_hash == bindparam("token_hash"), _s.revoked_at.is_(None), _s.expires_at > bindparam("now", type_=UTCDateTime()),
           _a.state == "active")
    .order_by(_l.id)
)  # fmt: skip


async def session_profiles(
    session: AsyncSession | AsyncConnection, token: str, *, now: dt.datetime
) -> tuple[Signed | None, list[tuple[str, str]]]:
    """The live session of a token and the profiles (kind, id) its account has active links to, in
    one query: the hot path of "policies for me" asks the database once."""
    if not token or len(token) > 128:
        return None, []
    rows = (await session.execute(_SESSION_PROFILES, {"token_hash": token_hash(token), "now": now})).all()
    if not rows:
        return None, []
    first = rows[0]
    links = [(r.profile_kind, r.profile_id) for r in rows if r.state == "active"]
    return Signed(first.account_id, first.id, first.client), links


async def purge_sessions(session: AsyncSession, *, now: dt.datetime) -> int:
    """Delete the sessions that can sign nobody in any more (expired, or ended by sign-out or erasure):
    the retention tick's sweep, so the table holds live sessions only. Returns how many went."""
    stmt = delete(SubscriberSessionRow.__table__).where(or_(_s.expires_at <= now, _s.revoked_at.is_not(None)))
    return int(getattr(await session.execute(stmt), "rowcount", 0) or 0)
