"""Building the index of ``MatchService`` from the database, catching it up on what changed
since a saved index's marks, keeping its policy catalogue equal to the stored policies, and
saving it.  Called with the service's lock held.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from matchers import MatchEngine, TextStats
from policy_push.domain import Policy

from .engines import Audience, engine_record, new_engine, policy_source
from .index_store import Manifest
from .service_state import PLURAL, PolicyEntry, ServiceState
from .sync import Mark, all_policies, count_profiles, iter_profiles, read_changes, read_mark

__all__ = ["ServiceBuild", "apply_changes"]

log = logging.getLogger("policy_push.matching")

# a catch-up touching more than half the rows (and at least this many) re-reads them all instead
_REFIT_MIN = 1000
# rows read between two yields to the event loop while scanning profiles
_YIELD_EVERY = 100
# profiles of other shards cut and counted at a time while a shard builds (never kept)
_OUTSIDE_CHUNK = 5000


class ServiceBuild(ServiceState):
    """Rebuild, catch up, sync policies, save."""

    async def _rebuild(self, audience: Audience) -> None:
        assert self._hier is not None
        phase = f"indexing {PLURAL[audience]}"
        records: list[dict[str, Any]] = []
        engine = new_engine(audience, self._hier, self.tokenizer, n_jobs=self._n_jobs)
        # a shard cuts the text of the profiles it does not hold only to count their terms, a chunk at a time
        outside, elsewhere = (TextStats(), []) if self.shard is not None else (None, None)
        seen = 0
        async with self._sessions() as session:
            # the mark first: a write landing during the scan is then caught up next time
            mark = await read_mark(session, audience)
            total = await count_profiles(session, audience, self._cipher, self._ref)
            step = max(1000, total // 20 // 1000 * 1000)
            self.progress(phase, 0, total)
            async for profile in iter_profiles(session, audience, self._cipher, self._ref):
                record = engine_record(profile, self._ref)
                if elsewhere is None or self.holds(record):
                    records.append(record)
                else:
                    elsewhere.append(record)
                    if len(elsewhere) >= _OUTSIDE_CHUNK:
                        await self._run(engine.count_outside, outside, elsewhere)
                        elsewhere = []
                seen += 1
                if seen % _YIELD_EVERY == 0:
                    self._checkpoint()
                    await asyncio.sleep(0)  # decrypting and parsing rows is CPU work: let others in
                if seen % step == 0:
                    self.progress(phase, seen, total)
        if elsewhere:
            await self._run(engine.count_outside, outside, elsewhere)
        self.progress(phase, seen, max(total, seen))
        await self._run(functools.partial(engine.fit, records, outside=outside))
        await self._run(
            engine.set_policies,
            [e.compiled for e in self._policies.values() if e.policy.audience == audience],
        )
        self._engines[audience] = engine
        self._marks[audience] = mark

    async def _catch_up(self, audience: Audience) -> int:
        """Apply what changed in the table since the index's mark; the number of profiles touched."""
        engine = self._engines[audience]
        mark = self._marks.get(audience, Mark())
        async with self._sessions() as session:
            changes = await read_changes(session, audience, mark, set(engine.rows_), held=self.holds_region)
        touched = len(changes.changed) + len(changes.removed)
        if not touched:
            self._marks[audience] = changes.mark
            return 0
        if len(changes.changed) > max(_REFIT_MIN, changes.n_rows // 2):
            log.info(
                "match index: %d of %d %s changed; rebuilding",
                len(changes.changed),
                changes.n_rows,
                PLURAL[audience],
            )
            await self._rebuild(audience)
            return touched
        records = []
        async with self._sessions() as session:
            async for profile in iter_profiles(
                session, audience, self._cipher, self._ref, only=changes.changed
            ):
                record = engine_record(profile, self._ref)
                if self.holds(record):
                    records.append(record)
                if len(records) % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        await self._run(apply_changes, engine, records, changes.removed)
        self._marks[audience] = changes.mark
        return touched

    async def _sync_policies(self, saved: dict[str, str]) -> int:
        """Make the catalogue equal the stored policies; ``saved`` (id -> content hash) names the
        policies whose tokens the loaded engines already hold.  Returns the number changed."""
        async with self._sessions() as session:
            stored = await all_policies(session)
        changed = 0
        for policy in stored:
            digest = policy.content_hash()
            entry = self._policies.get(policy.id)
            if entry is not None and entry.content_hash == digest:
                continue
            restored = self._engines[policy.audience].policies_.policies.get(policy.id)
            if restored is not None and saved.get(policy.id) == digest:
                self._policies[policy.id] = PolicyEntry(policy, restored, digest)  # tokens from disk
                continue
            await self._put_policy(policy, digest)
            changed += 1
        live = {p.id for p in stored}
        for engine in self._engines.values():
            for policy_id in set(engine.policies_.policies) - live:
                await self._run(engine.remove_policy, policy_id)
                changed += 1
        for policy_id in set(self._policies) - live:
            del self._policies[policy_id]
        return changed

    async def _put_policy(self, policy: Policy, digest: str) -> None:
        entry = self._policies.get(policy.id)
        if entry is not None and entry.content_hash == digest:
            return
        engine = self._engines[policy.audience]
        compiled = await self._run(engine.compile_policy, policy_source(policy))
        for audience, other in self._engines.items():
            if audience != policy.audience:  # the audience of a policy can change between versions
                await self._run(other.remove_policy, policy.id)
        await self._run(engine.put_policy, compiled)
        self._policies[policy.id] = PolicyEntry(policy, compiled, digest)

    async def _save(self) -> None:
        if self._store is None:
            return
        manifest = Manifest(
            self._database, dict(self._marks), {pid: e.content_hash for pid, e in self._policies.items()},
            shard=self.shard_key,
        )
        try:
            await self._run(self._store.save, dict(self._engines), manifest)
        except OSError as exc:  # the index in memory is fine; the next start catches up more
            log.warning("match index not saved: %s", type(exc).__name__)
            return
        self._dirty = False


def apply_changes(engine: MatchEngine, records: list[dict[str, Any]], removed: set[str]) -> None:
    for record in records:
        engine.upsert(record)  # text re-cut only when it changed
    for profile_id in removed:
        engine.remove(profile_id)
    if len(records) + len(removed) > max(100, len(engine) // 10):
        # many new rows were weighed with the idf frozen at the last build: refresh it
        engine.compact()
