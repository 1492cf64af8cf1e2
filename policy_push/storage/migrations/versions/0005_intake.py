"""Intake: fetched documents and their versions, conditional-GET state, the review queue.
Hand-written; types spelled out as in 0002.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), 'postgresql')
_BIGID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('intake_fetch_state',
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('etag', sa.String(length=512), nullable=True),
    sa.Column('last_modified', sa.String(length=128), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('checked_at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('url', name=op.f('pk_intake_fetch_state'))
    )
    op.create_table('intake_documents',
    sa.Column('id', _BIGID, autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('first_seen_at', _TS, nullable=False),
    sa.Column('changed_at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intake_documents')),
    sa.UniqueConstraint('url', name=op.f('uq_intake_documents_url'))
    )
    with op.batch_alter_table('intake_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intake_documents_source'), ['source'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_documents_content_hash'), ['content_hash'], unique=False)
    op.create_table('intake_document_versions',
    sa.Column('document_id', _BIGID, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('published_on', sa.String(length=10), nullable=True),
    sa.Column('diff', sa.Text(), nullable=True),
    sa.Column('fetched_at', _TS, nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['intake_documents.id'], name=op.f('fk_intake_document_versions_document_id_intake_documents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('document_id', 'version', name=op.f('pk_intake_document_versions'))
    )
    op.create_table('review_items',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=True),
    sa.Column('document_id', _BIGID, nullable=True),
    sa.Column('document_version', sa.Integer(), nullable=True),
    sa.Column('url', sa.String(length=2048), nullable=True),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('suggested', _JSON, nullable=False),
    sa.Column('suggestions', _JSON, nullable=False),
    sa.Column('diff', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', _TS, nullable=False),
    sa.Column('decided_by', sa.String(length=128), nullable=True),
    sa.Column('decided_at', _TS, nullable=True),
    sa.Column('decision', _JSON, nullable=True),
    sa.Column('policy_id', sa.String(length=64), nullable=True),
    sa.Column('policy_version', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['document_id'], ['intake_documents.id'], name=op.f('fk_review_items_document_id_intake_documents'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_items')),
    sa.UniqueConstraint('document_id', 'document_version', name=op.f('uq_review_items_document_id_document_version'))
    )
    with op.batch_alter_table('review_items', schema=None) as batch_op:
        batch_op.create_index('ix_review_items_status_created', ['status', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('review_items', schema=None) as batch_op:
        batch_op.drop_index('ix_review_items_status_created')
    op.drop_table('review_items')
    op.drop_table('intake_document_versions')
    with op.batch_alter_table('intake_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intake_documents_content_hash'))
        batch_op.drop_index(batch_op.f('ix_intake_documents_source'))
    op.drop_table('intake_documents')
    op.drop_table('intake_fetch_state')
