"""Tables of staff identity: accounts (argon2id hashes, lockout state) and the API tokens of machine
clients (only a SHA-256 of each secret is kept)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base, UTCDateTime

__all__ = ["StaffAccountRow", "StaffTokenRow"]


class StaffAccountRow(Base):
    """One officer.  ``id`` is what campaigns and the audit log record (four eyes compares it); the
    login ``name`` is unique.  ``session_epoch`` goes up on disable and password reset, which ends
    every cookie session issued before."""

    __tablename__ = "staff_accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class StaffTokenRow(Base):
    """An API token of one client, scoped to a role no higher than its account's."""

    __tablename__ = "staff_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("staff_accounts.id", ondelete="CASCADE"), index=True)
    client: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
