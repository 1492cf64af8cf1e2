"""The PII keys the stored data is encrypted with, by fingerprint (never the key itself).

One row is ``active`` (what new data is written with); rows ``rotating`` name keys whose data
``policy-push keys rotate`` has not finished re-encrypting; ``retired`` keys hold no data any more.
Every process compares its configured key with the active row before it reads or writes personal
data, so a different key is refused instead of silently writing a second key into the tables.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base, UTCDateTime, one_of

__all__ = ["KEY_ROLES", "PiiKeyRow"]

KEY_ROLES = ("active", "rotating", "retired")


class PiiKeyRow(Base):
    __tablename__ = "pii_keys"
    __table_args__ = (one_of("pii_keys", "role", KEY_ROLES),)

    fingerprint: Mapped[str] = mapped_column(String(32), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
