"""The shard map: which ``serve`` node holds the profiles of which regions.

Each shard names region code prefixes and the base URL its node answers on. A profile belongs to the
shard with the longest prefix of its region code (``region``: 注册地 of an enterprise, 居住地 of a
resident); a profile whose region no prefix covers, or which has none, belongs to the first shard in
name order, so every profile has exactly one home whatever the map says. An empty map (no row) means
no sharding: every node holds every profile.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.errors import InvalidInput

from .changes import CHANNEL
from .contacts import profile_table
from .tables import ShardRow, utcnow

__all__ = ["Shard", "ShardMap", "home_of", "load", "put", "remove", "validate"]

shards: Table = ShardRow.__table__  # type: ignore[assignment]

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_PREFIX = re.compile(r"\d{0,9}")


@dataclass(frozen=True, slots=True)
class Shard:
    name: str
    url: str
    prefixes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ShardMap:
    """The shards in name order (see the module docstring for who holds what)."""

    shards: tuple[Shard, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.shards)

    def fingerprint(self) -> str:
        """What decides who holds which profile (names and prefixes, not URLs): two maps with the same
        fingerprint put every profile on the same shard."""
        held = [[s.name, list(s.prefixes)] for s in self.shards]
        return hashlib.sha256(json.dumps(held).encode()).hexdigest()[:16]

    def get(self, name: str) -> Shard | None:
        return next((s for s in self.shards if s.name == name), None)

    def holder(self, region: str | None) -> str:
        """The name of the shard holding profiles of ``region`` (the map must not be empty)."""
        best, best_len = self.shards[0].name, -1
        for shard in self.shards:
            for prefix in shard.prefixes:
                if region is not None and region.startswith(prefix) and len(prefix) > best_len:
                    best, best_len = shard.name, len(prefix)
        return best

    def holders(self, regions: Iterable[str]) -> list[str]:
        """The shards holding any profile whose region is one of ``regions``, or has no region (a
        criterion on the region is unknown for those, and they may qualify): in name order."""
        names = {self.holder(r) for r in regions} | {self.holder(None)}
        return [s.name for s in self.shards if s.name in names]


def validate(name: str, url: str, prefixes: Iterable[str]) -> Shard:
    """A shard entry, or ``InvalidInput`` naming what is wrong."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"shard name {name[:70]!r} must be 1-64 of a-z, 0-9, '_' and '-', starting with a letter or digit", loc=["name"])
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise InvalidInput(f"shard URL {url[:200]!r} must be a base URL like http://10.0.0.5:8080", loc=["url"])
    given = [p.strip() for p in prefixes]
    if not given:
        raise InvalidInput("a shard needs at least one region code prefix ('' for every region)", loc=["region_prefixes"])
    for prefix in given:
        if not _PREFIX.fullmatch(prefix):
            raise InvalidInput(f"region code prefix {prefix[:20]!r} must be up to 9 digits", loc=["region_prefixes"])
    return Shard(name, url.rstrip("/"), tuple(sorted(set(given))))


async def load(session: AsyncSession) -> ShardMap:
    rows = await session.execute(select(shards.c.name, shards.c.url, shards.c.region_prefixes).order_by(shards.c.name))
    return ShardMap(tuple(Shard(name, url, tuple(prefixes)) for name, url, prefixes in rows))


async def home_of(session: AsyncSession, kind: str, profile_id: str) -> Shard | None:
    """The shard holding a profile (``ShardMap.holder`` of its plain region column, as the shards
    themselves decide), or None: no map (every node holds every profile) or no such profile."""
    current = await load(session)
    table = profile_table(kind)
    found = (await session.execute(select(table.c.region).where(table.c.id == profile_id))).first()
    if not current or found is None:
        return None
    return current.get(current.holder(found[0]))


async def put(session: AsyncSession, shard: Shard) -> bool:
    """Add the shard or replace its entry; True when it is new.  A prefix may belong to one shard only."""
    current = await load(session)
    for other in current.shards:
        taken = set(other.prefixes) & set(shard.prefixes)
        if other.name != shard.name and taken:
            raise InvalidInput(f"region code prefix {sorted(taken)[0]!r} already belongs to shard {other.name!r}", loc=["region_prefixes"])
    values = {"url": shard.url, "region_prefixes": list(shard.prefixes), "updated_at": utcnow()}
    await _wake_nodes(session)
    if current.get(shard.name) is None:
        await session.execute(shards.insert().values(name=shard.name, **values))
        return True
    await session.execute(shards.update().where(shards.c.name == shard.name).values(**values))
    return False


async def remove(session: AsyncSession, name: str) -> bool:
    result = await session.execute(delete(shards).where(shards.c.name == name))
    await _wake_nodes(session)
    return bool(getattr(result, "rowcount", 0))


async def _wake_nodes(session: AsyncSession) -> None:
    # the running nodes re-read the map when the change feed's notification wakes them (delivered at
    # commit), rather than at their next poll; SQLite has no notifications: the poll alone finds it
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_notify(CHANNEL, "shards")))
