"""The writes of ``MatchService``: what this process committed (profiles, policies, feedback
marks) and what any process wrote (the change feed, ``follow_changes``), each applied to the
index in one queue under the service's lock, forgetting the answers it can change.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Collection

from matchers import FEEDBACK_KINDS
from policy_push.domain import EnterpriseProfile, Policy, ResidentProfile
from policy_push.statuses import ChangeOp
from policy_push.storage import PolicyRepository, changes
from policy_push.storage import feedback as feedback_store

from .engines import AUDIENCES, Audience, audience_of, engine_record
from .service_build import apply_changes
from .service_reshard import ServiceReshard
from .sync import iter_profiles

__all__ = ["ServiceWrites"]

log = logging.getLogger("policy_push.matching")


class ServiceWrites(ServiceReshard):
    """Call after the transaction committed; writes arriving during the start are queued."""

    async def profile_written(self, profile: EnterpriseProfile | ResidentProfile) -> None:
        audience, record = audience_of(profile), engine_record(profile, self._ref)

        async def apply() -> None:
            if self.holds(record):
                await self._run(self._engines[audience].upsert, record)
            else:  # another shard's region (perhaps it just moved there)
                await self._run(self._engines[audience].remove, profile.id)

        await self._mutate(apply, profiles=[(audience, str(record["id"]))])

    async def profile_deleted(self, audience: str, profile_id: str) -> None:
        async def apply() -> None:
            await self._run(self._engines[audience].remove, profile_id)

        await self._mutate(apply, profiles=[(audience, profile_id)])

    async def policy_written(self, policy: Policy) -> None:
        async def apply() -> None:
            await self._put_policy(policy, policy.content_hash())

        await self._mutate(apply)

    async def feedback_given(self, audience: str, profile_id: str, policy_id: str, kind: str) -> None:
        """Teach the ranking a person's mark (有用 / 不相关 / 已申报), after it was committed: the match
        engine moves that profile's scores for similar policies, bounded (``matchers`` feedback).  Other
        kinds (退订) say nothing about relevance and are ignored."""
        if kind not in FEEDBACK_KINDS or audience not in self._engines:
            return

        async def apply() -> None:
            await self._mark(audience, profile_id, policy_id, kind)

        await self._mutate(apply, profiles=[(audience, profile_id)])

    async def _mark(self, audience: str, profile_id: str, policy_id: str, kind: str) -> None:
        try:
            await self._run(
                functools.partial(self._engines[audience].record_feedback, profile_id, policy_id, kind)
            )
        except KeyError:  # the profile or the policy left the index since: nothing to teach
            log.debug("feedback on a policy or profile the index does not hold; ignored")

    async def _replay_feedback(self) -> None:
        # marks live in the database; an index built afresh (or saved before a mark) learns them again here
        async with self._sessions() as session:
            marks = await feedback_store.marks(session, FEEDBACK_KINDS)
        for policy_id, audience, profile_id, kind in marks:
            if audience in self._engines:
                await self._mark(audience, profile_id, policy_id, kind)

    async def policy_deleted(self, policy_id: str) -> None:
        async def apply() -> None:
            self._policies.pop(policy_id, None)
            for engine in self._engines.values():
                await self._run(engine.remove_policy, policy_id)

        await self._mutate(apply)

    async def follow_changes(self, *, limit: int = 10_000) -> list[str]:
        """Apply what any process wrote since the last change number this index saw (a CLI import, another
        node); returns the ids of the policies among them. Safe to run often: a change this process already
        applied is applied again at the cost of a comparison."""
        if not self.is_ready:
            return []
        async with self._follow_lock:  # the poll tick and a notification may both call: one at a time
            await self.follow_shard_map()  # a shard node: the map first, then writes by the map it holds
            return await self._follow(limit)

    async def _follow(self, limit: int) -> list[str]:
        async with self._sessions() as session:
            batch = await changes.since(session, self.feed_seq, limit=limit)
        if not batch:
            return []

        async def apply() -> None:
            for audience in AUDIENCES:
                ids = {c.entity_id for c in batch if c.kind == audience}
                if ids:
                    await self._apply_profiles(audience, ids)
            policy_ids = {c.entity_id for c in batch if c.kind == "policy"}
            if policy_ids:
                await self._apply_policies(
                    policy_ids,
                    deleted={c.entity_id for c in batch if c.kind == "policy" and c.op is ChangeOp.DELETE},
                )

        # profiles alone: only their answers go; any policy among the changes: every answer goes
        touched = None if any(c.kind == "policy" for c in batch) else [(c.kind, c.entity_id) for c in batch]
        await self._mutate(apply, profiles=touched)
        self.feed_seq = batch[-1].seq
        return sorted({c.entity_id for c in batch if c.kind == "policy"})

    async def _apply_profiles(self, audience: Audience, ids: set[str]) -> None:
        records = []
        async with self._sessions() as session:
            async for profile in iter_profiles(session, audience, self._cipher, self._ref, only=ids):
                record = engine_record(profile, self._ref)
                if self.holds(record):
                    records.append(record)
        gone = ids - {r["id"] for r in records}
        await self._run(
            apply_changes, self._engines[audience], records, gone & set(self._engines[audience].rows_)
        )

    async def _apply_policies(self, ids: set[str], *, deleted: set[str]) -> None:
        async with self._sessions() as session:
            repo = PolicyRepository(session)
            stored = {pid: await repo.get(pid) for pid in sorted(ids)}
        for policy_id, found in stored.items():
            if found is None:
                self._policies.pop(policy_id, None)
                for engine in self._engines.values():
                    await self._run(engine.remove_policy, policy_id)
            else:
                await self._put_policy(found.policy, found.policy.content_hash())

    async def _mutate(
        self, apply: Callable[[], Awaitable[None]], *, profiles: Collection[tuple[str, str]] | None = None
    ) -> None:
        """Apply a change under the lock. ``profiles``: the only (audience, id) whose answers it can
        change; None: it may change any answer (a policy, a rebuild)."""
        if not self._ready.is_set():
            self._pending.append(apply)  # applied by ``start`` once the index is up
            return
        if self._error is not None:
            return  # no index to keep current; the next start rebuilds from the database
        async with self._lock:
            try:
                await apply()
            finally:
                self._version += 1
                self._dirty = True
                if profiles is None:
                    self.answers.forget_all()
                else:
                    for profile in profiles:
                        self.answers.forget_profile(profile)
