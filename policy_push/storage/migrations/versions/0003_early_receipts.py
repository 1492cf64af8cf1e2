"""Early receipts: provider receipts that arrived before our record of their send, kept (with
the recipient as a keyed hash only) until the send is recorded.  Hand-written; types spelled
out as in 0002.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:

    op.create_table('early_receipts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('provider_message_id', sa.String(length=128), nullable=False),
    sa.Column('recipient_hash', sa.String(length=64), nullable=True),
    sa.Column('delivered', sa.Boolean(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('reported_at', _TS, nullable=True),
    sa.Column('received_at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_early_receipts'))
    )
    with op.batch_alter_table('early_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_early_receipts_provider_message_id'), ['provider_message_id'], unique=False)


def downgrade() -> None:

    with op.batch_alter_table('early_receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_early_receipts_provider_message_id'))

    op.drop_table('early_receipts')
