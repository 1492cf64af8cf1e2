"""Filling the match index: loading the saved one and catching up on what changed since, or reading
every profile and building; keeping the policy catalogue equal to the stored policies; saving.
Called with the index's lock held.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from matchers import MatchEngine
from policy_push.domain import Policy
from policy_push.storage import changes

from .engines import AUDIENCES, Audience, Hierarchies, engine_record, new_engine, policy_source
from .index_state import _PLURAL, _REFIT_MIN, _YIELD_EVERY, IndexState, StartReport, _PolicyEntry
from .index_store import Manifest
from .sync import Mark, all_policies, count_profiles, iter_profiles, read_changes, read_mark

__all__ = ["IndexBuild", "apply_changes"]

log = logging.getLogger("policy_push.matching")


class IndexBuild(IndexState):
    async def _load_or_build(self) -> StartReport:
        # the feed's number first: whatever is written while the tables are read is applied again later
        async with self._sessions() as session:
            self.feed_seq = await changes.latest(session)
        self._hier = await self._run(Hierarchies.from_ref, self._ref)
        self._checkpoint()
        loaded = None
        if self._store is not None:
            loaded = await self._run(self._store.load, self._database, self._hier, self.tokenizer)
        caught_up = dict.fromkeys(AUDIENCES, 0)
        if loaded is None:
            mode: Literal["built", "loaded"] = "built"
            saved_policies: dict[str, str] = {}
            for audience in AUDIENCES:
                await self._rebuild(audience)
                self._checkpoint()
        else:
            mode = "loaded"
            self._engines, manifest = loaded
            self._marks = dict(manifest.marks)
            saved_policies = manifest.policies
            for audience in AUDIENCES:
                caught_up[audience] = await self._catch_up(audience)
                self._checkpoint()
        changed_policies = await self._sync_policies(saved_policies)
        if mode == "built" or any(caught_up.values()) or changed_policies:
            await self._save()
        return StartReport(mode, {a: len(self._engines[a]) for a in AUDIENCES}, caught_up,
                           len(self._policies), 0, 0.0)

    async def _rebuild(self, audience: Audience) -> None:
        assert self._hier is not None
        phase = f"indexing {_PLURAL[audience]}"
        records: list[dict[str, Any]] = []
        async with self._sessions() as session:
            # the mark first: a write landing during the scan is then caught up next time
            mark = await read_mark(session, audience)
            total = await count_profiles(session, audience, self._cipher, self._ref)
            step = max(1000, total // 20 // 1000 * 1000)
            self.progress(phase, 0, total)
            async for profile in iter_profiles(session, audience, self._cipher, self._ref):
                records.append(engine_record(profile, self._ref))
                if len(records) % _YIELD_EVERY == 0:
                    self._checkpoint()
                    await asyncio.sleep(0)  # decrypting and parsing rows is CPU work: let others in
                if len(records) % step == 0:
                    self.progress(phase, len(records), total)
        self.progress(phase, len(records), max(total, len(records)))
        engine = new_engine(audience, self._hier, self.tokenizer, n_jobs=self._n_jobs)
        await self._run(engine.fit, records)
        await self._run(engine.set_policies, [e.compiled for e in self._policies.values() if e.policy.audience == audience])
        self._engines[audience] = engine
        self._marks[audience] = mark

    async def _catch_up(self, audience: Audience) -> int:
        """Apply what changed in the table since the index's mark; the number of profiles touched."""
        engine = self._engines[audience]
        mark = self._marks.get(audience, Mark())
        async with self._sessions() as session:
            changes = await read_changes(session, audience, mark, set(engine.rows_))
        touched = len(changes.changed) + len(changes.removed)
        if not touched:
            self._marks[audience] = changes.mark
            return 0
        if len(changes.changed) > max(_REFIT_MIN, changes.n_rows // 2):
            log.info("match index: %d of %d %s changed; rebuilding", len(changes.changed), changes.n_rows, _PLURAL[audience])
            await self._rebuild(audience)
            return touched
        records = []
        async with self._sessions() as session:
            async for profile in iter_profiles(session, audience, self._cipher, self._ref, only=changes.changed):
                records.append(engine_record(profile, self._ref))
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
                self._policies[policy.id] = _PolicyEntry(policy, restored, digest)  # tokens from disk
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
        self._policies[policy.id] = _PolicyEntry(policy, compiled, digest)

    async def _save(self) -> None:
        if self._store is None:
            return
        manifest = Manifest(
            self._database, dict(self._marks), {pid: e.content_hash for pid, e in self._policies.items()}
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
