"""The database tables (SQLAlchemy 2 declarative).  Schema changes go through Alembic
(``migrations/versions``); this module and the newest migration must describe the same schema,
which ``tests/policy_push/storage/test_schema.py`` checks.

Portable types only: JSON becomes JSONB on PostgreSQL, ciphertexts are ``LargeBinary``, and
timestamps are stored in UTC and always read back timezone-aware (SQLite keeps no offset).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from policy_push.statuses import ChangeOp

__all__ = [
    "AuditHeadRow",
    "AuditRow",
    "Base",
    "BigId",
    "ChangeCounterRow",
    "ChangeRow",
    "EnterpriseRow",
    "PolicyCategoryRow",
    "PolicyRegionRow",
    "PolicyRow",
    "PolicyVersionRow",
    "ResidentRow",
    "ShardRow",
    "UTCDateTime",
    "one_of",
    "utcnow",
]

# stable constraint names, so migrations can refer to them on both dialects
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONDoc = JSON().with_variant(JSONB(), "postgresql")
#: an auto-numbered id: BIGINT on PostgreSQL; on SQLite only INTEGER is the auto-incrementing rowid
BigId = BigInteger().with_variant(Integer, "sqlite")


def one_of(table: str, column: str, values: type[enum.StrEnum] | tuple[str, ...], *, nullable: bool = False) -> CheckConstraint:
    """``CHECK (column IN (...))`` over an enum's values, named ``ck_<table>_<column>``."""
    listed = ", ".join(f"'{v}'" for v in (v.value if isinstance(v, enum.Enum) else v for v in values))
    sql = f"{column} IS NULL OR {column} IN ({listed})" if nullable else f"{column} IN ({listed})"
    return CheckConstraint(sql, name=f"ck_{table}_{column}")



def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware datetime stored in UTC on every dialect."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a time zone")
        value = value.astimezone(dt.UTC)
        # SQLite stores text without an offset; keep it naive-UTC there
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class PolicyRow(Base):
    """The current version of each policy; older versions live in ``policy_versions``."""

    __tablename__ = "policies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    audience: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(Text)
    categories: Mapped[list[str]] = mapped_column(JSONDoc)
    published_on: Mapped[dt.date | None] = mapped_column(Date)
    apply_from: Mapped[dt.date | None] = mapped_column(Date)
    apply_until: Mapped[dt.date | None] = mapped_column(Date, index=True)
    urgent: Mapped[bool] = mapped_column(Boolean)
    content_hash: Mapped[str] = mapped_column(String(64))
    #: the formats.md record, as validated
    document: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class PolicyVersionRow(Base):
    """Every version of every policy, the current one included (history is one query)."""

    __tablename__ = "policy_versions"

    policy_id: Mapped[str] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class PolicyRegionRow(Base):
    """Region codes named by a policy's positive ``region`` conditions, for the list filter."""

    __tablename__ = "policy_regions"

    policy_id: Mapped[str] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"), primary_key=True)
    region_code: Mapped[str] = mapped_column(String(16), primary_key=True, index=True)


class PolicyCategoryRow(Base):
    """One row per category of a policy: a portable, indexable "has category" filter
    (JSON containment differs between SQLite and PostgreSQL)."""

    __tablename__ = "policy_categories"

    policy_id: Mapped[str] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


class _ProfileColumns:
    """Columns shared by enterprises and residents.  ``document`` is the formats.md record with
    every personal value nulled; the values live only in the ``*_enc`` columns, and the keyed
    ``*_hash`` columns answer look-ups and duplicate checks without decrypting."""

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    region: Mapped[str | None] = mapped_column(String(16), index=True)
    consent: Mapped[bool] = mapped_column(Boolean)
    document: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    wechat_openid_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    wechat_openid_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    app_registration_id_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    app_registration_id_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    #: the official register the importing staff named for the phone (``policy_push.reach``: a phone
    #: no subscriber proved is pushed to only with one); NULL: nobody vouched for it
    phone_source: Mapped[str | None] = mapped_column(String(200))
    #: keyed (HMAC) hash of the full record, personal values included: an unkeyed hash would
    #: let anyone holding the table brute-force the phone number back out of it
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class EnterpriseRow(_ProfileColumns, Base):
    __tablename__ = "enterprises"

    industry: Mapped[str | None] = mapped_column(String(8), index=True)
    #: the effective size (declared, else derived by the SME standard)
    size: Mapped[str | None] = mapped_column(String(8))


class ResidentRow(_ProfileColumns, Base):
    __tablename__ = "residents"

    #: effective hukou region (given, else the ID number's first six digits)
    hukou_region: Mapped[str | None] = mapped_column(String(16))
    #: the name, encrypted (a resident's name is personal data); ``name`` and the document hold it masked
    name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: unique: two residents with one ID number is a conflict (NULLs do not collide)
    id_number_hash: Mapped[str | None] = mapped_column(String(64), unique=True)


class AuditRow(Base):
    """Who did what to which record.  ``detail`` never holds personal values."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    #: the chain (storage.audit): SHA-256 of the row before's hash and this row's content
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str | None] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The audit chain's anchor, outside the chain: how many rows it holds and the newest one's hash,
    written in the transaction that appends them (storage.audit).  A chain proves only the rows that are
    there; this lets ``audit verify`` see the newest ones deleted."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rows: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ChangeRow(Base):
    """The change feed: one row per policy or profile written or deleted, numbered by the transaction
    that wrote it (``seq``, from :class:`ChangeCounterRow`), so a running service can apply what any
    process changed since the last number it saw (``storage.changes``)."""

    __tablename__ = "changes"
    __table_args__ = (one_of("changes", "op", ChangeOp),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(16))  #: policy, enterprise, resident
    entity_id: Mapped[str] = mapped_column(String(64))
    op: Mapped[str] = mapped_column(String(8))  #: statuses.ChangeOp
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class ChangeCounterRow(Base):
    """One row: the last change number handed out. Taking the next one locks the row until the writing
    transaction ends, so numbers become visible in the order they were taken."""

    __tablename__ = "change_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)


class ShardRow(Base):
    """The shard map: which ``serve`` node holds the profiles of which regions (``storage.shards``).
    No row: every node holds every profile."""

    __tablename__ = "shards"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: the node's base URL as the other nodes reach it (``http://10.0.0.5:8080``)
    url: Mapped[str] = mapped_column(String(500))
    #: region code prefixes (``["2111", "2112"]``); ``[""]`` holds every region
    region_prefixes: Mapped[list[str]] = mapped_column(JSONDoc)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RateWindowRow(Base):
    """Requests counted per bucket (what is limited, and a keyed hash of who asks) and one-minute window,
    shared by every process on the database: N processes must not mean N times the budget."""

    __tablename__ = "rate_windows"

    bucket: Mapped[str] = mapped_column(String(96), primary_key=True)
    #: minutes since the epoch (UTC)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)
    hits: Mapped[int] = mapped_column(Integer)
