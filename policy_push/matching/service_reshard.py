"""A shard node taking up a change of the shard map while it runs: the profiles of the regions it
gained are read from the database and indexed, those of the regions it lost dropped, and its count of
the profiles held elsewhere adjusted (``MatchEngine.hand_over``), so its text weights stay the whole
corpus's.

The map is re-read at every look at the change feed (``follow_changes``: the poll every
``follow_changes_s`` seconds, and each notification; ``policy-push shards set`` and ``remove`` send one
on PostgreSQL). Only names and prefixes count (``ShardMap.fingerprint``): a changed URL needs nothing.

No wrong answer while nodes adjust: each shard's part of a match list carries the fingerprint of the
map its profiles were taken from (``part_map``), or none while they are changing, and the node merging
the parts refuses (503) unless every part is of the map it read for the request. Between a change of
the map and the last node having taken it up (seconds), a policy whose shards disagree is a 503, never a
list that counts a region twice or not at all.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from policy_push.storage import shards as shard_store
from policy_push.storage.contacts import profile_table
from policy_push.storage.shards import ShardMap

from .engines import AUDIENCES, Audience, engine_record
from .service_build import ServiceBuild
from .service_state import PLURAL
from .sync import iter_profiles

__all__ = ["ServiceReshard"]

log = logging.getLogger("policy_push.matching")


class ServiceReshard(ServiceBuild):
    """Following the shard map (a shard node only)."""

    def part_map(self, epoch: int) -> str | None:
        """The fingerprint of the map the profiles held were taken from, if they were not changed since
        ``epoch`` (``map_epoch`` read before an answer was computed); None if they were or are."""
        if self.shard is None or epoch != self.map_epoch or epoch % 2:
            return None
        return self.shard[1].fingerprint()

    async def follow_shard_map(self) -> bool:
        """Take up a change of the shard map; True when the profiles held changed. Called with the
        follow lock held, after the start."""
        if self.shard is None or not self.is_ready:
            return False
        async with self._sessions() as session:
            current = await shard_store.load(session)
        name, held = self.shard
        if current.fingerprint() == held.fingerprint():
            if current != held:
                self.shard = (name, current)  # only URLs changed: nothing moves
            return False
        if current.get(name) is None:
            # answering for the old map: the other nodes' fan-out finds the fingerprints differ (503)
            log.error("shard %r is no longer in the shard map; this node keeps what it holds until restarted", name)
            return False

        async def apply() -> None:
            await self._take_up(current)

        await self._mutate(apply)
        return True

    async def _take_up(self, current: ShardMap) -> None:
        assert self.shard is not None
        name = self.shard[0]
        self.map_epoch += 1  # odd: parts answered from now on say they are of no map
        try:
            moved = {a: await self._hand_over(a, current, name) for a in AUDIENCES}
            self.shard = (name, current)
            log.info("shard %s took up the new shard map: %s", name,
                     "; ".join(f"{PLURAL[a]} +{g} -{lost}" for a, (g, lost) in moved.items()))
        except Exception as exc:
            # half moved is not a state to answer from: rebuild under the new map
            log.error("shard %s could not take up the new map (%s); rebuilding", name, type(exc).__name__, exc_info=True)
            self.shard = (name, current)
            for audience in AUDIENCES:
                await self._rebuild(audience)
        finally:
            self.map_epoch += 1

    async def _hand_over(self, audience: Audience, current: ShardMap, name: str) -> tuple[int, int]:
        engine = self._engines[audience]
        table = profile_table(audience)
        async with self._sessions() as session:
            # the plain region column decides; no profile is decrypted but those gained
            rows = await session.execute(select(table.c.id, table.c.region))
            now_held = {pid for pid, region in rows if current.holder(region) == name}
        present = set(engine.rows_)
        gained, lost = now_held - present, present - now_held
        records = []
        if gained:
            async with self._sessions() as session:
                async for profile in iter_profiles(session, audience, self._cipher, self._ref, only=gained):
                    record = engine_record(profile, self._ref)
                    if current.holder(record.get("region")) == name:
                        records.append(record)
        await self._run(engine.hand_over, records, lost)
        return len(records), len(lost)
