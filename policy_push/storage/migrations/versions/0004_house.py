"""Leases on claimed deliveries, CHECK constraints on every status column, and the change feed.

* ``deliveries``: ``claim_id`` (the claim a sender holds), ``lease_until`` (database time until which that
  sender is known alive; renewed while it sends) and ``unsure_since`` (the earliest provider call whose
  outcome is not known yet). Rows left ``sending`` by an older version get a lease that has already ended
  and count as unsure since their claim, so settle takes them over and asks their provider (an older
  version never marked its calls, so none of its rows may pass for "never called").
* CHECK constraints hold every status, state, purpose, reason and source column to the values of
  ``policy_push/statuses.py`` as of this revision (spelled out here, so a later change of the code cannot
  rewrite history: a new value needs a new migration).
* ``changes`` and ``change_counter``: the change feed a running service follows.

Hand-written; types spelled out as in 0002.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 15:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_DELIVERY = ("created", "sending", "sent", "delivered", "permanent_failure", "unreachable", "technical_failure", "cancelled")
_CAMPAIGN = ("draft", "approved", "scheduled", "sending", "done", "cancelled")
_PURPOSE = ("announce", "reminder")
_WAITING = ("quiet_hours", "frequency_cap", "retry", "throttled")
_SOURCE = ("claim", "dispatch", "receipt", "settle", "cancel", "close", "opt_out")
_SKIP = ("no_consent", "opted_out", "unreachable", "already_notified", "excluded", "may_qualify", "feedback")
_FEEDBACK = ("useful", "irrelevant", "applied", "unsubscribe")
_OPT_OUT_SOURCE = ("feedback_link", "sms_uplink", "staff", "api")
_OPT_OUT_CHANNEL = ("*", "sms", "wechat", "app")
_CHANGE_OP = ("put", "delete")

#: table -> [(constraint name, column, allowed values, NULL allowed)]
CHECKS: dict[str, list[tuple[str, str, tuple[str, ...], bool]]] = {
    "campaigns": [("ck_campaigns_state", "state", _CAMPAIGN, False), ("ck_campaigns_purpose", "purpose", _PURPOSE, False)],
    "campaign_recipients": [("ck_campaign_recipients_skip_reason", "skip_reason", _SKIP, True)],
    "deliveries": [
        ("ck_deliveries_status", "status", _DELIVERY, False),
        ("ck_deliveries_purpose", "purpose", _PURPOSE, False),
        ("ck_deliveries_waiting_for", "waiting_for", _WAITING, True),
    ],
    "delivery_events": [
        ("ck_delivery_events_from_status", "from_status", _DELIVERY, True),
        ("ck_delivery_events_to_status", "to_status", _DELIVERY, True),
        ("ck_delivery_events_source", "source", _SOURCE, False),
    ],
    "feedback": [("ck_feedback_kind", "kind", _FEEDBACK, False)],
    "opt_outs": [("ck_opt_outs_source", "source", _OPT_OUT_SOURCE, False), ("ck_opt_outs_channel", "channel", _OPT_OUT_CHANNEL, False)],
}


def one_of(column: str, values: Sequence[str], nullable: bool) -> str:
    listed = ", ".join(f"'{v}'" for v in values)
    return f"{column} IS NULL OR {column} IN ({listed})" if nullable else f"{column} IN ({listed})"


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("lease_until", _TS, nullable=True))
        batch_op.add_column(sa.Column("unsure_since", _TS, nullable=True))
        batch_op.create_index("ix_deliveries_lease", ["status", "lease_until"], unique=False)
    # rows an older version left sending: their lease has already ended, settle takes them over and asks
    op.execute("UPDATE deliveries SET lease_until = claimed_at, unsure_since = claimed_at WHERE status = 'sending'")

    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, column, values, nullable in checks:
                batch_op.create_check_constraint(name, one_of(column, values, nullable))

    op.create_table(
        "changes",
        sa.Column("id", _BIGID, autoincrement=True, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("op", sa.String(length=8), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.CheckConstraint(one_of("op", _CHANGE_OP, False), name="ck_changes_op"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_changes")),
    )
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_changes_seq"), ["seq"], unique=False)
        batch_op.create_index(batch_op.f("ix_changes_at"), ["at"], unique=False)
    counter = op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_counter")),
    )
    op.bulk_insert(counter, [{"id": 1, "seq": 0}])


def downgrade() -> None:
    op.drop_table("change_counter")
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_changes_at"))
        batch_op.drop_index(batch_op.f("ix_changes_seq"))
    op.drop_table("changes")
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, *_ in checks:
                batch_op.drop_constraint(name, type_="check")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_lease")
        batch_op.drop_column("unsure_since")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claim_id")
