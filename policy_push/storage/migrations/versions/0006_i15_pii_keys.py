"""PII key fingerprints: which key the stored personal data is encrypted with (key rotation).

Revision ID: i15_pii_keys
Revises: 0005
Create Date: 2026-11-30 18:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'i15_pii_keys'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # the first process to start after this records its key's fingerprint, once stored data decrypts with it
    op.create_table('pii_keys',
    sa.Column('fingerprint', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('active', 'rotating', 'retired')", name='ck_pii_keys_role'),
    sa.PrimaryKeyConstraint('fingerprint', name=op.f('pk_pii_keys'))
    )


def downgrade() -> None:
    op.drop_table('pii_keys')
