"""Inbound messages (SMS replies, WeChat follows, unfollows and messages) and two more opt-out sources.

* ``inbound_messages``: what people sent us through a provider; sender as a keyed hash and encrypted, text
  encrypted; unique ``dedupe_key`` so a provider's repeated push is recorded once.
* ``opt_outs.source`` may also be ``wechat_unfollow`` and ``wechat_message`` (the CHECK constraint is
  re-created with the values spelled out, as 0004 does).

Hand-written; types spelled out as in 0002.

Revision ID: i11b_inbound
Revises: i10_privacy
Create Date: 2026-11-30 18:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "i11b_inbound"
down_revision: str | None = "i10_privacy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_OPT_OUT_SOURCE_BEFORE = ("feedback_link", "sms_uplink", "staff", "api")
_OPT_OUT_SOURCE = (*_OPT_OUT_SOURCE_BEFORE, "wechat_unfollow", "wechat_message")
_INBOUND_KIND = ("opt_out", "message", "follow", "unfollow", "subscription")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "inbound_messages",
        sa.Column("id", _BIGID, autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sender_hash", sa.String(length=64), nullable=False),
        sa.Column("sender_enc", sa.LargeBinary(), nullable=False),
        sa.Column("text_enc", sa.LargeBinary(), nullable=True),
        sa.Column("profiles", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("sent_at", _TS, nullable=True),
        sa.Column("received_at", _TS, nullable=False),
        sa.CheckConstraint(_in("kind", _INBOUND_KIND), name="ck_inbound_messages_kind"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint("dedupe_key", name="uq_inbound_messages_dedupe"),
    )
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.create_index("ix_inbound_messages_received", ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_inbound_messages_sender_hash"), ["sender_hash"], unique=False)
    with op.batch_alter_table("opt_outs", schema=None) as batch_op:
        batch_op.drop_constraint("ck_opt_outs_source", type_="check")
        batch_op.create_check_constraint("ck_opt_outs_source", _in("source", _OPT_OUT_SOURCE))


def downgrade() -> None:
    op.execute(f"DELETE FROM opt_outs WHERE NOT ({_in('source', _OPT_OUT_SOURCE_BEFORE)})")
    with op.batch_alter_table("opt_outs", schema=None) as batch_op:
        batch_op.drop_constraint("ck_opt_outs_source", type_="check")
        batch_op.create_check_constraint("ck_opt_outs_source", _in("source", _OPT_OUT_SOURCE_BEFORE))
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_messages_sender_hash"))
        batch_op.drop_index("ix_inbound_messages_received")
    op.drop_table("inbound_messages")
