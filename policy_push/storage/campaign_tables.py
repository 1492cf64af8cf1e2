"""Tables of the send pipeline: campaigns, their recipients and messages, the delivery outbox,
its event trail, opt-outs, feedback and provider switches.

Statuses are the enums of :mod:`policy_push.statuses`, stored as their string values and held to them by
CHECK constraints (migration 0004).
The unique constraint on deliveries is invariant 2 in the database itself: nobody hears about
the same policy twice on the same channel (per purpose: the announcement and one reminder).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from policy_push.reach import OPT_OUT_CHANNELS
from policy_push.statuses import (
    CampaignState,
    DeliveryStatus,
    EventSource,
    FeedbackKind,
    InboundKind,
    OptOutSource,
    Purpose,
    SkipReason,
    Waiting,
)

from .tables import Base, BigId, JSONDoc, UTCDateTime, one_of

__all__ = [
    "CampaignMessageRow",
    "CampaignRecipientRow",
    "CampaignRow",
    "DeliveryEventRow",
    "DeliveryRow",
    "EarlyReceiptRow",
    "FeedbackRow",
    "InboundMessageRow",
    "OptOutRow",
    "ProviderSwitchRow",
    "campaigns",
    "deliveries",
    "delivery_events",
    "early_receipts",
    "feedback",
    "messages",
    "opt_outs",
    "provider_switches",
    "recipients",
]


class CampaignRow(Base):
    __tablename__ = "campaigns"
    __table_args__ = (one_of("campaigns", "state", CampaignState), one_of("campaigns", "purpose", Purpose))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    policy_id: Mapped[str] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"), index=True)
    policy_version: Mapped[int] = mapped_column(Integer)
    audience: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(16))  #: Purpose
    state: Mapped[str] = mapped_column(String(16), index=True)  #: CampaignState
    urgent: Mapped[bool] = mapped_column(Boolean)
    prepared_by: Mapped[str] = mapped_column(String(128))
    approved_by: Mapped[str | None] = mapped_column(String(128))
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: SHA-256 of the recipient list and the message texts the approver saw
    approval_sha256: Mapped[str | None] = mapped_column(String(64))
    #: the same hash of the list and texts as they are now, kept so a preview need not read a million
    #: rows to show it; None once they change (``campaigns.editing``), then computed again when shown
    list_sha256: Mapped[str | None] = mapped_column(String(64))
    #: when sending may start (UTC); None = as soon as approved and scheduled
    send_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    #: counts of the match run and the recipient list (eligible, may_qualify, skipped by reason …)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CampaignRecipientRow(Base):
    __tablename__ = "campaign_recipients"
    __table_args__ = (one_of("campaign_recipients", "skip_reason", SkipReason, nullable=True),)

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    profile_kind: Mapped[str] = mapped_column(String(16))
    eligible: Mapped[bool] = mapped_column(Boolean)  #: False: may qualify, missing data
    score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(JSONDoc)
    missing: Mapped[list[str]] = mapped_column(JSONDoc)
    #: the one line a message to this recipient may quote (never a sensitive or may-qualify line); None: none
    message_reason: Mapped[str | None] = mapped_column(Text)
    #: the reasons a public page may show (sensitive lines left out); None for rows drafted before
    public_reasons: Mapped[list[str] | None] = mapped_column(JSONDoc)
    #: the first channel of the recipient's preference that can reach them, or None
    channel: Mapped[str | None] = mapped_column(String(16))
    #: why this recipient gets nothing (SkipReason), or None when they will be messaged
    skip_reason: Mapped[str | None] = mapped_column(String(32))
    excluded_by: Mapped[str | None] = mapped_column(String(128))


# the preview's order (best score first, ties by id): a keyset page reads only its own rows
Index(
    "ix_campaign_recipients_rank",
    CampaignRecipientRow.campaign_id, CampaignRecipientRow.score.desc(), CampaignRecipientRow.profile_id,
)
# the same order within the eligible or the may-qualify ones (the preview's may-qualify list sits at the
# end of the rank order: found through the first index it would cost a scan of every eligible row)
Index(
    "ix_campaign_recipients_eligible_rank",
    CampaignRecipientRow.campaign_id, CampaignRecipientRow.eligible, CampaignRecipientRow.score.desc(),
    CampaignRecipientRow.profile_id,
)


class CampaignMessageRow(Base):
    """The rendered message per channel, as the approver saw it."""

    __tablename__ = "campaign_messages"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONDoc)


class DeliveryRow(Base):
    """The outbox: one row per recipient, channel and purpose, created before any provider call."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("policy_id", "profile_kind", "profile_id", "channel", "purpose", name="uq_deliveries_once"),
        Index("ix_deliveries_due", "status", "not_before"),
        Index("ix_deliveries_profile", "profile_kind", "profile_id", "sent_at"),
        Index("ix_deliveries_lease", "status", "lease_until"),
        one_of("deliveries", "status", DeliveryStatus),
        one_of("deliveries", "purpose", Purpose),
        one_of("deliveries", "waiting_for", Waiting, nullable=True),
    )

    #: also the idempotency key sent to providers (Aliyun OutId, WeChat client_msg_id, JPush sendno)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    policy_id: Mapped[str] = mapped_column(String(64))
    profile_kind: Mapped[str] = mapped_column(String(16))
    profile_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: earliest send time (UTC): quiet hours, the frequency cap and retry backoff push it on
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: why not_before was pushed ("quiet_hours", "frequency_cap", "retry"), for the funnel
    waiting_for: Mapped[str | None] = mapped_column(String(32))
    #: when the last claim was made (database clock)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: the worker holding the last claim
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    #: the last claim; a sender acts on the row (renews, records) only while it still holds this claim
    claim_id: Mapped[str | None] = mapped_column(String(32))
    #: database time until which the claim's worker is known alive; renewed while it sends, and
    #: settle takes over only rows whose lease has ended
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: database time of the earliest provider call whose outcome is not known yet (None: none is);
    #: a provider that drops repeats of our id does so only for a while after that call
    unsure_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    final_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(128), index=True)
    provider_code: Mapped[str | None] = mapped_column(String(64))
    provider_text: Mapped[str | None] = mapped_column(Text)
    #: the delivery on the previous channel whose permanent failure started this one
    fallback_of: Mapped[str | None] = mapped_column(String(36))
    #: the code of the SMS short link (``/s/<code>``, 8 characters, random): not unique by itself, a
    #: look-up that finds two rows opens neither
    link_code: Mapped[str | None] = mapped_column(String(8), index=True)
    #: when the person first opened the page the message links to (the take-up funnel's 打开链接)
    opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class DeliveryEventRow(Base):
    """Every status change and receipt of a delivery (duplicates and late receipts included)."""

    __tablename__ = "delivery_events"
    __table_args__ = (
        one_of("delivery_events", "from_status", DeliveryStatus, nullable=True),
        one_of("delivery_events", "to_status", DeliveryStatus, nullable=True),
        one_of("delivery_events", "source", EventSource),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(36), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    source: Mapped[str] = mapped_column(String(32))  #: dispatch, receipt, settle, cancel …
    code: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str | None] = mapped_column(Text)


class EarlyReceiptRow(Base):
    """A provider receipt that arrived before our record of its send (``sending.receipts``).

    Providers give up re-pushing after a few tries (WeChat: three, within seconds) and WeChat has
    no query API, so such a receipt is kept here and applied once the send is recorded, instead of
    being refused and lost. The recipient is kept only as its keyed look-up hash (personal data is
    never stored in clear), which is all that matching members of a shared Aliyun BizId needs.
    """

    __tablename__ = "early_receipts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    provider_message_id: Mapped[str] = mapped_column(String(128), index=True)
    #: ``PiiCipher.lookup_hash`` of the phone ("phone") or openid ("wechat_openid"); None if absent
    recipient_hash: Mapped[str | None] = mapped_column(String(64))
    delivered: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(16))  #: channels.Outcome
    code: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class OptOutRow(Base):
    """Opt-outs per profile and channel ("*" for every channel), e.g. from SMS 回复TD退订."""

    __tablename__ = "opt_outs"
    __table_args__ = (one_of("opt_outs", "source", OptOutSource), one_of("opt_outs", "channel", OPT_OUT_CHANNELS))

    profile_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(32))


class InboundMessageRow(Base):
    """What people sent us through a provider: SMS replies (up-messages), WeChat follows, unfollows and
    messages. The sender is kept as its keyed look-up hash and encrypted (staff see it masked); the text is
    encrypted too, since a free-text reply may carry anything. ``dedupe_key`` (a keyed hash of the
    provider's identity of the push) makes a repeated push record nothing twice."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_inbound_messages_dedupe"),
        Index("ix_inbound_messages_received", "received_at"),
        one_of("inbound_messages", "kind", InboundKind),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  #: InboundKind
    #: ``PiiCipher.lookup_hash`` of the phone ("phone") or openid ("wechat_openid")
    sender_hash: Mapped[str] = mapped_column(String(64), index=True)
    sender_enc: Mapped[bytes] = mapped_column(LargeBinary)
    text_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: profiles whose opt-out this recorded (0 when the sender matches no profile)
    profiles: Mapped[int] = mapped_column(Integer, default=0)
    dedupe_key: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class FeedbackRow(Base):
    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("policy_id", "profile_kind", "profile_id", "kind", name="uq_feedback_once"),
        one_of("feedback", "kind", FeedbackKind),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    policy_id: Mapped[str] = mapped_column(String(64), index=True)
    profile_kind: Mapped[str] = mapped_column(String(16))
    profile_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  #: FeedbackKind
    delivery_id: Mapped[str | None] = mapped_column(String(36))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ProviderSwitchRow(Base):
    """Every provider failover, with its reason (GOV.UK Notify records these too)."""

    __tablename__ = "provider_switches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    channel: Mapped[str] = mapped_column(String(16))
    from_provider: Mapped[str] = mapped_column(String(32))
    to_provider: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)


# -- the same tables as SQLAlchemy Core handles, for the query modules: made here, once ------------------
def _core(row: type[Base]) -> Table:
    return row.__table__  # type: ignore[return-value]


campaigns = _core(CampaignRow)
recipients = _core(CampaignRecipientRow)
messages = _core(CampaignMessageRow)
deliveries = _core(DeliveryRow)
delivery_events = _core(DeliveryEventRow)
early_receipts = _core(EarlyReceiptRow)
opt_outs = _core(OptOutRow)
feedback = _core(FeedbackRow)
provider_switches = _core(ProviderSwitchRow)
