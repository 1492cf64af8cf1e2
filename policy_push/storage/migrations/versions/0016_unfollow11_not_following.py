"""``opt_outs.source`` may also be ``wechat_not_following``: a WeChat send answered 43004 "require subscribe"
is recorded as the unfollow whose event never reached us (the CHECK constraint is re-created with the values
spelled out, as 0004 and 0008 do).

Revision ID: unfollow11_not_following
Revises: i10b_rate_windows
Create Date: 2026-12-01 01:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "unfollow11_not_following"
down_revision: str | None = "i10b_rate_windows"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = ("feedback_link", "sms_uplink", "staff", "api", "wechat_unfollow", "wechat_message")
_AFTER = (*_BEFORE, "wechat_not_following")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    with op.batch_alter_table("opt_outs", schema=None) as batch_op:
        batch_op.drop_constraint("ck_opt_outs_source", type_="check")
        batch_op.create_check_constraint("ck_opt_outs_source", _in("source", _AFTER))


def downgrade() -> None:
    # such an opt-out is an unfollow all the same: kept, under the source an unfollow event records
    op.execute("UPDATE opt_outs SET source = 'wechat_unfollow' WHERE source = 'wechat_not_following'")
    with op.batch_alter_table("opt_outs", schema=None) as batch_op:
        batch_op.drop_constraint("ck_opt_outs_source", type_="check")
        batch_op.create_check_constraint("ck_opt_outs_source", _in("source", _BEFORE))
