"""Profiles remember the official register a phone was imported from (an unproven phone is never
pushed to), and a campaign recipient can be skipped as ``phone_unproven``.

Revision ID: i12b_phone_source
Revises: nodes_shards
Create Date: 2026-11-30 21:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "i12b_phone_source"
down_revision: str | None = "nodes_shards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SKIP_BEFORE = ("no_consent", "opted_out", "unreachable", "already_notified", "excluded", "may_qualify", "feedback")
_SKIP = (*_SKIP_BEFORE, "phone_unproven")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IS NULL OR {column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    for table in ("enterprises", "residents"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("phone_source", sa.String(200), nullable=True))
    with op.batch_alter_table("campaign_recipients") as batch:
        batch.drop_constraint("ck_campaign_recipients_skip_reason", type_="check")
        batch.create_check_constraint("ck_campaign_recipients_skip_reason", _in("skip_reason", _SKIP))


def downgrade() -> None:
    op.execute("UPDATE campaign_recipients SET skip_reason = 'unreachable' WHERE skip_reason = 'phone_unproven'")
    with op.batch_alter_table("campaign_recipients") as batch:
        batch.drop_constraint("ck_campaign_recipients_skip_reason", type_="check")
        batch.create_check_constraint("ck_campaign_recipients_skip_reason", _in("skip_reason", _SKIP_BEFORE))
    for table in ("enterprises", "residents"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("phone_source")
