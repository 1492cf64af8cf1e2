"""A campaign may be ``drafting`` (its recipients still being written chunk by chunk, each chunk its own
short transaction) before it is a ``draft``; and the recipients get the preview's order as an index
(campaign, score descending, profile id; and the same within eligible / may qualify), so a keyset page costs the same at row 900,000 as at row 0;
and ``campaigns.list_sha256`` keeps the hash of the list and texts as they are now, so a preview does not
hash a million rows each time it is shown.
The CHECK constraint is re-created with the values spelled out, as 0004 and 0016 do.

Revision ID: draft16_campaign_drafting
Revises: unfollow11_not_following
Create Date: 2026-12-01 04:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "draft16_campaign_drafting"
down_revision: str | None = "unfollow11_not_following"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = ("draft", "approved", "scheduled", "sending", "done", "cancelled")
_AFTER = ("drafting", *_BEFORE)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_constraint("ck_campaigns_state", type_="check")
        batch_op.create_check_constraint("ck_campaigns_state", _in("state", _AFTER))
        batch_op.add_column(sa.Column("list_sha256", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_campaign_recipients_rank", "campaign_recipients",
        [sa.column("campaign_id"), sa.desc(sa.column("score")), sa.column("profile_id")],
    )  # fmt: skip
    op.create_index(
        "ix_campaign_recipients_eligible_rank", "campaign_recipients",
        [sa.column("campaign_id"), sa.column("eligible"), sa.desc(sa.column("score")), sa.column("profile_id")],
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_campaign_recipients_eligible_rank", table_name="campaign_recipients")
    op.drop_index("ix_campaign_recipients_rank", table_name="campaign_recipients")
    # a draft never finished has an incomplete list: it could not have been approved, and is dropped
    op.execute("UPDATE campaigns SET state = 'cancelled' WHERE state = 'drafting'")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_constraint("ck_campaigns_state", type_="check")
        batch_op.create_check_constraint("ck_campaigns_state", _in("state", _BEFORE))
        batch_op.drop_column("list_sha256")
