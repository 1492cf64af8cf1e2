"""Tables of the people who sign up themselves (``policy_push.subscribers``): accounts proven by an SMS
code, their one-time codes, sessions, links to profiles, consent records and push preferences.

Personal values follow the profiles' rule: the phone and the WeChat openid are stored only as AES-GCM
ciphertexts with a keyed look-up hash beside them; codes and session tokens only as hashes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base, JSONDoc, UTCDateTime, one_of

__all__ = [
    "LINK_ROLES",
    "LINK_STATES",
    "SubscriberAccountRow",
    "SubscriberCodeRow",
    "SubscriberConsentRow",
    "SubscriberLinkRow",
    "SubscriberPreferenceRow",
    "SubscriberSessionRow",
]

_BIGID = BigInteger().with_variant(Integer, "sqlite")
LINK_ROLES = ("owner", "contact")
LINK_STATES = ("active", "pending", "refused")


class SubscriberAccountRow(Base):
    """One person who proved a phone. Erased on request: the ciphertexts and hashes are nulled,
    ``state`` becomes ``deleted`` and the id stays so the audit log keeps its meaning."""

    __tablename__ = "subscriber_accounts"
    __table_args__ = (one_of("subscriber_accounts", "state", ("active", "deleted")),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: unique: one account per proven phone (NULLs of erased accounts do not collide)
    phone_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    phone_proven_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    wechat_openid_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    wechat_openid_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    wechat_bound_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SubscriberCodeRow(Base):
    """A one-time SMS code (or a WeChat binding link code): only its keyed hash is stored. Rows also
    count requests for the rate limits (per phone, per client address), so they are kept a day (each
    new request deletes the older ones)."""

    __tablename__ = "subscriber_codes"
    __table_args__ = (
        Index("ix_subscriber_codes_phone", "phone_hash", "created_at"),
        Index("ix_subscriber_codes_client", "client_hash", "created_at"),
    )

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    phone_hash: Mapped[str] = mapped_column(String(64))
    client_hash: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: sent, or the provider's refusal code (the code is then unusable)
    sent: Mapped[str] = mapped_column(String(64))


class SubscriberSessionRow(Base):
    """A signed-in session: a page cookie (``pp_sub``) or an app bearer token. The token itself is
    never stored, only its SHA-256 (it is 32 random bytes: no brute force to fear)."""

    __tablename__ = "subscriber_sessions"
    __table_args__ = (one_of("subscriber_sessions", "client", ("web", "app")),)

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(32), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class _AccountProfileRow:
    """The columns of a row an account keeps about one profile (its links, its consents), first in each
    such table as the migrations create them (a mixin's columns would otherwise come last)."""

    id: Mapped[int] = mapped_column(_BIGID, primary_key=True, autoincrement=True, sort_order=-4)
    account_id: Mapped[str] = mapped_column(String(32), index=True, sort_order=-3)
    profile_kind: Mapped[str] = mapped_column(String(16), sort_order=-2)
    profile_id: Mapped[str] = mapped_column(String(64), sort_order=-1)


class SubscriberLinkRow(_AccountProfileRow, Base):
    """Which profile an account speaks for. A resident has one ``owner`` link to their profile; an
    enterprise's first contact is its ``owner``, later contacts are ``contact`` links that stay
    ``pending`` until the owner or staff approves them."""

    __tablename__ = "subscriber_links"
    __table_args__ = (
        UniqueConstraint("account_id", "profile_kind", "profile_id", name="uq_subscriber_links_once"),
        Index("ix_subscriber_links_profile", "profile_kind", "profile_id"),
        one_of("subscriber_links", "role", LINK_ROLES),
        one_of("subscriber_links", "state", LINK_STATES),
    )

    role: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(128))


class SubscriberConsentRow(_AccountProfileRow, Base):
    """Every consent given or withdrawn: what (``scope``), when, through which channel, and the
    version of the wording the person was shown. Never updated: the latest row is the state."""

    __tablename__ = "subscriber_consents"
    __table_args__ = (
        Index("ix_subscriber_consents_profile", "profile_kind", "profile_id", "at"),
        one_of("subscriber_consents", "action", ("give", "withdraw")),
    )

    scope: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    text_version: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SubscriberPreferenceRow(Base):
    """How a profile wants to be told: categories of interest (empty: all) and at most ``weekly_max``
    messages in any 7 days (None: the service's cap alone). Channel order lives in the profile's own
    ``channels`` field, which the send rules already read."""

    __tablename__ = "subscriber_preferences"

    profile_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    categories: Mapped[list[Any]] = mapped_column(JSONDoc)
    weekly_max: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
