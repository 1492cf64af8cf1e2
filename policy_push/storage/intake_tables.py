"""Tables of intake: documents fetched from configured sources (with their versions), the
conditional-GET state of every address polled, and the review queue where staff confirm or
reject what the suggester proposed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base, BigId, JSONDoc, UTCDateTime

__all__ = ["FetchStateRow", "IntakeDocumentRow", "IntakeDocumentVersionRow", "ReviewItemRow"]


class FetchStateRow(Base):
    """What the last request to an address returned, for the next conditional GET."""

    __tablename__ = "intake_fetch_state"

    url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    etag: Mapped[str | None] = mapped_column(String(512))
    last_modified: Mapped[str | None] = mapped_column(String(128))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    checked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class IntakeDocumentRow(Base):
    """One published document, by address; ``content_hash`` is its current text's."""

    __tablename__ = "intake_documents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    title: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class IntakeDocumentVersionRow(Base):
    """Every text a document has had; a change is a new version with a diff from the previous."""

    __tablename__ = "intake_document_versions"

    document_id: Mapped[int] = mapped_column(ForeignKey("intake_documents.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    published_on: Mapped[str | None] = mapped_column(String(10))
    diff: Mapped[str | None] = mapped_column(Text)
    fetched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ReviewItemRow(Base):
    """A policy text waiting for a person: pasted by staff or fetched from a source, with the
    suggestions made for it.  pending → confirmed (a policy was written) | rejected."""

    __tablename__ = "review_items"
    __table_args__ = (
        UniqueConstraint("document_id", "document_version"),
        Index("ix_review_items_status_created", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  #: ReviewStatus
    origin: Mapped[str] = mapped_column(String(16))  #: "paste" or "feed"
    source: Mapped[str | None] = mapped_column(String(64))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("intake_documents.id", ondelete="SET NULL"))
    document_version: Mapped[int | None] = mapped_column(Integer)
    url: Mapped[str | None] = mapped_column(String(2048))
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    #: the policy record as suggested (valid), and the suggestions with their sentences
    suggested: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    suggestions: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc)
    #: for a changed document: what changed since the version before
    diff: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: what the reviewer decided per suggestion, and any field they wrote themselves
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    policy_id: Mapped[str | None] = mapped_column(String(64))
    policy_version: Mapped[int | None] = mapped_column(Integer)
