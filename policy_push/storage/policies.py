"""Policies, versioned: re-importing an id with changed content makes a new version and keeps
the old one; identical content changes nothing (formats.md, "Policy")."""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.domain import Policy, ValidationContext, local_today, parse_policy
from policy_push.errors import RecordConflict
from policy_push.statuses import ChangeOp

from . import changes
from .audit import AuditLog
from .records import PolicyVersion, StoredPolicy, UpsertResult, detached
from .region_codes import area_prefix, codes_covering, policy_region_codes
from .sql import TWICE_IN_A_BATCH, chunks, once_each
from .tables import Base, PolicyCategoryRow, PolicyRegionRow, PolicyRow, PolicyVersionRow, utcnow

__all__ = ["PolicyRepository"]

_policies: Table = Base.metadata.tables["policies"]
_versions: Table = Base.metadata.tables["policy_versions"]
_regions: Table = Base.metadata.tables["policy_regions"]
_categories: Table = Base.metadata.tables["policy_categories"]

# ids per IN (...) query; far below SQLite's and asyncpg's parameter limits
_ID_CHUNK = 500


class PolicyRepository:
    """Policies over one session.  Never commits: the caller's transaction decides."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._audit = AuditLog(session)
        # records read back are trusted: a code withdrawn since must not break reads
        self._read_ctx = ValidationContext(trusted=True)

    # -- writes ----------------------------------------------------------------------------------
    async def upsert(self, policy: Policy, *, actor: str) -> UpsertResult:
        """Create, update (version + 1, old version kept) or leave unchanged; audited."""
        return (await self.upsert_many([policy], actor=actor))[0]

    async def upsert_many(self, policies: Sequence[Policy], *, actor: str) -> builtins.list[UpsertResult]:
        once_each((p.id for p in policies), lambda i: RecordConflict("policy", i, "id", TWICE_IN_A_BATCH))
        return [r for part in chunks(policies, _ID_CHUNK) for r in await self._upsert_chunk(part, actor)]

    async def _upsert_chunk(self, policies: Sequence[Policy], actor: str) -> builtins.list[UpsertResult]:
        # FOR UPDATE serialises concurrent writers of one policy on PostgreSQL, so two updates
        # cannot both become version n+1 (SQLite has a single writer anyway)
        existing = {
            row.id: (row.version, row.content_hash)
            for row in await self.session.execute(
                select(_policies.c.id, _policies.c.version, _policies.c.content_hash)
                .where(_policies.c.id.in_([p.id for p in policies]))
                .with_for_update()
            )
        }
        now = utcnow()
        results: builtins.list[UpsertResult] = []
        created: builtins.list[dict[str, Any]] = []
        updated: builtins.list[dict[str, Any]] = []
        changed: builtins.list[tuple[Policy, dict[str, Any]]] = []
        for policy in policies:
            content_hash = policy.content_hash()
            old = existing.get(policy.id)
            if old is not None and old[1] == content_hash:
                results.append(UpsertResult(policy.id, "unchanged", old[0]))
                continue
            version = 1 if old is None else old[0] + 1
            row = _policy_row(policy, version, content_hash, now)
            (created if old is None else updated).append(row)
            changed.append((policy, row))
            results.append(UpsertResult(policy.id, "created" if old is None else "updated", version))
        if not changed:
            return results
        try:
            await self._write(created, updated, changed, actor, now)
        except IntegrityError as exc:
            # another transaction created one of these ids between our SELECT and INSERT
            raise RecordConflict(
                "policy", changed[0][0].id, "id", "was written concurrently; retry the request"
            ) from exc
        return results

    async def _write(
        self,
        created: builtins.list[dict[str, Any]],
        updated: builtins.list[dict[str, Any]],
        changed: builtins.list[tuple[Policy, dict[str, Any]]],
        actor: str,
        now: dt.datetime,
    ) -> None:
        if created:
            await self.session.execute(insert(_policies), [{**r, "created_at": now} for r in created])
        if updated:
            ids = [r["id"] for r in updated]
            await self.session.execute(
                update(_policies).where(_policies.c.id == bindparam("b_id")),
                [{"b_id": r["id"], **{k: v for k, v in r.items() if k != "id"}} for r in updated],
            )
            await self.session.execute(delete(_regions).where(_regions.c.policy_id.in_(ids)))
            await self.session.execute(delete(_categories).where(_categories.c.policy_id.in_(ids)))
        await self.session.execute(
            insert(_versions),
            [
                {
                    "policy_id": r["id"],
                    "version": r["version"],
                    "content_hash": r["content_hash"],
                    "document": r["document"],
                    "actor": actor,
                    "created_at": now,
                }
                for _, r in changed
            ],
        )
        region_rows = [
            {"policy_id": p.id, "region_code": code}
            for p, _ in changed
            for code in sorted(policy_region_codes(p.criteria))
        ]
        if region_rows:
            await self.session.execute(insert(_regions), region_rows)
        category_rows = [{"policy_id": p.id, "category": c} for p, _ in changed for c in p.categories]
        if category_rows:
            await self.session.execute(insert(_categories), category_rows)
        await self._audit.record_many(
            [
                {
                    "actor": actor,
                    "action": "policy.create" if r["version"] == 1 else "policy.update",
                    "entity_type": "policy",
                    "entity_id": r["id"],
                    "detail": {"version": r["version"], "content_hash": r["content_hash"]},
                }
                for _, r in changed
            ]
        )
        await changes.record(self.session, "policy", [r["id"] for _, r in changed], ChangeOp.PUT)

    # -- reads -----------------------------------------------------------------------------------
    def _stored(self, row: PolicyRow) -> StoredPolicy:
        return StoredPolicy(
            policy=parse_policy(row.document, self._read_ctx),
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    async def get(self, policy_id: str) -> StoredPolicy | None:
        row = await self.session.get(PolicyRow, policy_id, populate_existing=True)
        return None if row is None else self._stored(row)

    async def exists(self, policy_id: str) -> bool:
        found = await self.session.scalar(select(_policies.c.id).where(_policies.c.id == policy_id))
        return found is not None

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(_policies)) or 0)

    async def history(self, policy_id: str) -> builtins.list[PolicyVersion]:
        """Every version, newest first (the current one included)."""
        rows = await self.session.execute(
            select(PolicyVersionRow)
            .where(PolicyVersionRow.policy_id == policy_id)
            .order_by(PolicyVersionRow.version.desc())
        )
        return [detached(PolicyVersion, r, policy=parse_policy(r.document, self._read_ctx)) for r in rows.scalars()]

    async def list(
        self,
        *,
        audience: str | None = None,
        category: str | None = None,
        region: str | None = None,
        status: Literal["open", "closed"] | None = None,
        today: dt.date | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[builtins.list[StoredPolicy], int]:
        """A page of current policies and the total matching the filters.

        ``region``: policies without a region condition, or whose region conditions name the
        code, an area containing it, or an area inside it.  ``status``: ``open`` when
        ``apply_until`` is null or not before ``today`` (local date by default).
        """
        conditions = _filters(audience=audience, category=category, region=region, status=status, today=today)
        total = await self.session.scalar(select(func.count()).select_from(_policies).where(*conditions))
        stmt: Select[tuple[PolicyRow]] = (
            select(PolicyRow)
            .where(*conditions)
            .order_by(PolicyRow.published_on.desc().nulls_last(), PolicyRow.id)
            .limit(limit)
            .offset(offset)
            .execution_options(populate_existing=True)
        )
        rows = (await self.session.execute(stmt)).scalars().all()
        return [self._stored(r) for r in rows], int(total or 0)


def _filters(
    *,
    audience: str | None,
    category: str | None,
    region: str | None,
    status: str | None,
    today: dt.date | None,
) -> builtins.list[ColumnElement[bool]]:
    out: builtins.list[ColumnElement[bool]] = []
    if audience is not None:
        out.append(_policies.c.audience == audience)
    if category is not None:
        out.append(
            exists().where(
                PolicyCategoryRow.policy_id == _policies.c.id, PolicyCategoryRow.category == category
            )
        )
    if region is not None:
        has_region = exists().where(PolicyRegionRow.policy_id == _policies.c.id)
        # "%" and "_" cannot occur in a region code the domain accepted, but a caller's filter
        # value is not validated here: escape it so it stays a literal prefix
        prefix = area_prefix(region).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matches = exists().where(
            PolicyRegionRow.policy_id == _policies.c.id,
            or_(
                PolicyRegionRow.region_code.in_(codes_covering(region)),
                PolicyRegionRow.region_code.like(prefix + "%", escape="\\"),
            ),
        )
        out.append(or_(~has_region, matches))
    if status is not None:
        day = today or local_today()
        if status == "open":
            out.append(or_(_policies.c.apply_until.is_(None), _policies.c.apply_until >= day))
        elif status == "closed":
            out.append(_policies.c.apply_until < day)
        else:
            raise ValueError(f"status must be 'open' or 'closed', got {status!r}")
    return out


def _policy_row(policy: Policy, version: int, content_hash: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": policy.id,
        "version": version,
        "audience": policy.audience,
        "title": policy.title,
        "categories": list(policy.categories),
        "published_on": policy.published_on,
        "apply_from": policy.apply_from,
        "apply_until": policy.apply_until,
        "urgent": policy.urgent,
        "content_hash": content_hash,
        "document": policy.to_json(),
        "updated_at": now,
    }
