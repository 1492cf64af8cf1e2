"""Privacy (issue 10): resident names encrypted at rest, short link codes, reasons a message may quote.

- ``residents.name_enc``: the name as an AES-GCM ciphertext; ``name`` and the document keep only the
  masked form (``张*``).  Names stored before this revision are sealed here, which needs the PII key
  (``POLICY_PUSH_PII_KEY``, or the demo key with ``POLICY_PUSH_DEMO=1``) when there are any.
- ``deliveries.link_code``: the 8-character code of the SMS link (``/s/<code>``), not the delivery id;
  rows stored before get a fresh code.
- ``campaign_recipients.message_reason`` / ``public_reasons``: the one line a message may quote and
  the lines a public page may show (never a sensitive fact), fixed when the campaign is drafted.

Revision ID: i10_privacy
Revises: i15_pii_keys
Create Date: 2026-11-30 18:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'i10_privacy'
down_revision: str | None = 'i15_pii_keys'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), 'postgresql')
_BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table('residents') as batch:
        batch.add_column(sa.Column('name_enc', sa.LargeBinary(), nullable=True))
    with op.batch_alter_table('deliveries') as batch:
        batch.add_column(sa.Column('link_code', sa.String(length=8), nullable=True))
        batch.create_index('ix_deliveries_link_code', ['link_code'], unique=False)
    with op.batch_alter_table('campaign_recipients') as batch:
        batch.add_column(sa.Column('message_reason', sa.Text(), nullable=True))
        batch.add_column(sa.Column('public_reasons', _JSON, nullable=True))
    _seal_names()
    _give_link_codes()


def downgrade() -> None:
    with op.batch_alter_table('campaign_recipients') as batch:
        batch.drop_column('public_reasons')
        batch.drop_column('message_reason')
    with op.batch_alter_table('deliveries') as batch:
        batch.drop_index('ix_deliveries_link_code')
        batch.drop_column('link_code')
    # names sealed by the upgrade stay masked in ``name``: a downgrade cannot decrypt without the key,
    # and must not put personal data back in plain text
    with op.batch_alter_table('residents') as batch:
        batch.drop_column('name_enc')


def _seal_names() -> None:
    bind = op.get_bind()
    residents = sa.table('residents', sa.column('id', sa.String), sa.column('name', sa.Text),
                         sa.column('name_enc', sa.LargeBinary), sa.column('document', _JSON))
    rows = bind.execute(sa.select(residents.c.id, residents.c.name, residents.c.document)
                        .where(residents.c.name_enc.is_(None))).all()
    if not rows:
        return
    from policy_push.config import Settings
    from policy_push.security.masking import mask_name
    from policy_push.security.pii import PiiCipher

    cipher = PiiCipher.from_settings(Settings())  # ConfigurationError names the setting when absent
    for start in range(0, len(rows), _BATCH):
        values = []
        for rid, name, document in rows[start:start + _BATCH]:
            doc = dict(document or {})
            masked = mask_name(name)
            doc['name'] = masked
            values.append({'rid': rid, 'n': masked, 'e': cipher.encrypt('name', name), 'd': doc})
        bind.execute(
            residents.update().where(residents.c.id == sa.bindparam('rid'))
            .values(name=sa.bindparam('n'), name_enc=sa.bindparam('e'), document=sa.bindparam('d')),
            values,
        )


def _give_link_codes() -> None:
    from channels.render import link_code

    bind = op.get_bind()
    deliveries = sa.table('deliveries', sa.column('id', sa.String), sa.column('link_code', sa.String))
    ids = list(bind.execute(sa.select(deliveries.c.id).where(deliveries.c.link_code.is_(None))).scalars())
    for start in range(0, len(ids), _BATCH):
        bind.execute(
            deliveries.update().where(deliveries.c.id == sa.bindparam('did')).values(link_code=sa.bindparam('c')),
            [{'did': i, 'c': link_code()} for i in ids[start:start + _BATCH]],
        )
