"""What the match index reads from the database: every profile (for a build), the profiles that
changed since a mark (for a catch-up), and every policy.

A *mark* says how far a saved index is in step with a profile table: the newest ``updated_at``
seen, and the content hash of every row stamped within ``MARGIN`` of it.  Catching up reads the
rows stamped since ``mark - MARGIN`` and keeps those whose hash is not the one remembered, plus
ids the index lacks; ids the table lacks are removals.  Only (id, hash, time) cross the wire
for that; whole profiles (decrypted) only for the rows that really changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.domain import EnterpriseProfile, Policy, ResidentProfile
from policy_push.refdata import ReferenceData
from policy_push.security import PiiCipher
from policy_push.storage import PolicyRepository, profile_repository
from policy_push.storage.contacts import profile_table

from .engines import Audience

__all__ = ["MARGIN", "Changes", "Mark", "all_policies", "iter_profiles", "read_changes", "read_mark"]

#: ``updated_at`` is stamped before the transaction commits; a commit landing up to this long after
#: its stamp is still seen by the next catch-up (re-reading an unchanged row costs no tokenising)
MARGIN = dt.timedelta(minutes=10)

# one page of policies per query while loading the catalogue
_POLICY_PAGE = 500

Profile = EnterpriseProfile | ResidentProfile


@dataclass(slots=True)
class Mark:
    """How far an index is in step with one profile table (see the module docstring)."""

    watermark: dt.datetime | None = None
    recent: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"watermark": None if self.watermark is None else self.watermark.isoformat(), "recent": self.recent}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Mark:
        raw = data.get("watermark")
        return cls(None if raw is None else dt.datetime.fromisoformat(raw), dict(data.get("recent") or {}))


@dataclass(slots=True)
class Changes:
    changed: set[str]
    removed: set[str]
    n_rows: int
    #: the mark to remember once these changes are applied
    mark: Mark


def _window(table: Table, since: dt.datetime | None) -> Any:
    stmt = select(table.c.id, table.c.content_hash, table.c.updated_at)
    return stmt if since is None else stmt.where(table.c.updated_at >= since - MARGIN)


def _mark_from(rows: list[Any], fallback: dt.datetime | None) -> Mark:
    newest = max((r.updated_at for r in rows), default=fallback)
    if newest is None:
        return Mark()
    return Mark(newest, {r.id: r.content_hash for r in rows if r.updated_at >= newest - MARGIN})


async def read_mark(session: AsyncSession, audience: Audience) -> Mark:
    """The mark of the table as it is now (taken before a full build reads the rows)."""
    table = profile_table(audience)
    newest = await session.scalar(select(func.max(table.c.updated_at)))
    if newest is None:
        return Mark()
    rows = (await session.execute(_window(table, newest))).all()
    return _mark_from(list(rows), newest)


async def read_changes(session: AsyncSession, audience: Audience, mark: Mark, index_ids: Collection[str],
                       held: Callable[[str | None], bool] | None = None) -> Changes:
    """What changed in the table since ``mark``, for an index holding ``index_ids``; ``held`` (a shard's):
    whether the index holds the profiles of a region, read from the table's plain ``region`` column, so
    that the profiles of other shards are neither missing nor changed."""
    table = profile_table(audience)
    rows = list((await session.execute(_window(table, mark.watermark).add_columns(table.c.region))).all())
    ids = await session.execute(select(table.c.id, table.c.region))
    db_ids = {i for i, region in ids if held is None or held(region)}
    changed = {r.id for r in rows if mark.recent.get(r.id) != r.content_hash and (held is None or held(r.region))}
    present = set(index_ids)
    changed |= db_ids - present
    return Changes(changed, present - db_ids, len(db_ids), _mark_from(rows, mark.watermark))


def _repository(audience: Audience, session: AsyncSession, cipher: PiiCipher, ref: ReferenceData) -> Any:
    return profile_repository(audience, session, cipher, ref=ref)


async def count_profiles(session: AsyncSession, audience: Audience, cipher: PiiCipher, ref: ReferenceData) -> int:
    return int(await _repository(audience, session, cipher, ref).count())


async def iter_profiles(
    session: AsyncSession,
    audience: Audience,
    cipher: PiiCipher,
    ref: ReferenceData,
    *,
    only: Collection[str] | None = None,
    chunk: int = 1000,
) -> AsyncIterator[Profile]:
    """Every profile of the audience (decrypted), or only the ids in ``only``.

    A few ids are read one by one; many are picked out of one keyset scan, which costs fewer
    round trips than thousands of single reads."""
    repo = _repository(audience, session, cipher, ref)
    if only is not None and len(only) <= chunk // 5:
        for profile_id in sorted(only):
            found = await repo.get(profile_id)
            if found is not None:
                yield found
        return
    wanted = None if only is None else set(only)
    async for profile in repo.iter_all(chunk=chunk):
        if wanted is None or profile.id in wanted:
            yield profile


async def all_policies(session: AsyncSession) -> list[Policy]:
    """Every current policy, any audience, open or not (matching ignores apply windows)."""
    repo = PolicyRepository(session)
    out: list[Policy] = []
    while True:
        page, total = await repo.list(limit=_POLICY_PAGE, offset=len(out))
        out.extend(s.policy for s in page)
        if not page or len(out) >= total:
            return out
