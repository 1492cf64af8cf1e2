"""The audit chain's anchor (``audit_head``: row count and newest hash, outside the chain), and the
rows written before the chain existed (``row_hash`` NULL, from before ``i9_console``) chained in.

Chaining the older rows puts them at the start of the chain, so every later row's ``prev_hash`` and
``row_hash`` change too.  That would also launder an edit made to an already-chained row, so the
existing chain is checked first; if it is broken, nothing is rewritten (``audit verify`` then names the
problem as before, and the unchained rows as rows without a hash) and only the anchor is written.

The hash formula is frozen here (as :func:`policy_push.storage.audit.row_digest` stood at this
revision), so later changes to the application cannot rewrite history.

Revision ID: i9b_audit_anchor
Revises: 0011_opened
Create Date: 2026-11-30 21:40:00.000000
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "i9b_audit_anchor"
down_revision: str | None = "0011_opened"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_GENESIS = "0" * 64
_log = logging.getLogger("alembic.runtime.migration")
_audit = sa.table(
    "audit_log",
    sa.column("id", sa.BigInteger), sa.column("at", sa.DateTime(timezone=True)), sa.column("actor", sa.String),
    sa.column("action", sa.String), sa.column("entity_type", sa.String), sa.column("entity_id", sa.String),
    sa.column("detail", sa.JSON), sa.column("prev_hash", sa.String), sa.column("row_hash", sa.String),
)  # fmt: skip


def _digest(prev_hash: str, row: Any) -> str:
    at = row.at if isinstance(row.at, dt.datetime) else dt.datetime.fromisoformat(str(row.at))
    at = at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
    detail = json.loads(row.detail) if isinstance(row.detail, str) else row.detail
    content = {"at": at.strftime("%Y-%m-%dT%H:%M:%S.%f"), "actor": row.actor, "action": row.action,
               "entity_type": row.entity_type, "entity_id": row.entity_id, "detail": detail}  # fmt: skip
    body = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def _chained_part_intact(rows: list[Any]) -> bool:
    prev: str | None = None
    for row in rows:
        if row.row_hash is None:
            if prev is not None:
                return False  # a row without a hash inside the chain: not ours to bless
            continue
        if row.prev_hash != (prev or _GENESIS) or _digest(row.prev_hash, row) != row.row_hash:
            return False
        prev = row.row_hash
    return True


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(_audit).order_by(_audit.c.id)).all()
    if not rows:
        return
    if any(r.row_hash is None for r in rows):
        if _chained_part_intact(rows):
            prev = _GENESIS
            for row in rows:
                digest = _digest(prev, row)
                if (row.prev_hash, row.row_hash) != (prev, digest):
                    bind.execute(sa.update(_audit).where(_audit.c.id == row.id).values(prev_hash=prev, row_hash=digest))
                prev = digest
            _log.info("audit log: %d older rows chained in", sum(1 for r in rows if r.row_hash is None))
        else:
            _log.warning("audit log: the chain is broken, so the older rows were left unchained; run `policy-push audit verify`")
    last = bind.execute(sa.select(_audit.c.row_hash).order_by(_audit.c.id.desc()).limit(1)).scalar()
    chained = bind.execute(sa.select(sa.func.count()).select_from(_audit).where(_audit.c.row_hash.is_not(None))).scalar()
    head = sa.table("audit_head", sa.column("id"), sa.column("rows"), sa.column("last_hash"), sa.column("updated_at"))
    bind.execute(sa.insert(head).values(id=1, rows=int(chained or 0), last_hash=last or _GENESIS,
                                        updated_at=dt.datetime.now(dt.UTC)))  # fmt: skip


def downgrade() -> None:
    # the chained-in older rows keep their hashes: harmless to the code before this revision
    op.drop_table("audit_head")
