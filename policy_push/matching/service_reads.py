"""The reads of ``MatchService``: profiles for a policy (answers kept per policy version and
index version, shared by concurrent callers), policies for a profile, and shaped answers kept
per profile (``AnswerCache``).  A shard answers only for the profiles it holds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from matchers import MatchEngine, MatchRecord, PolicyMatches
from policy_push.domain import Policy
from policy_push.errors import HeldByAnotherShard

from .engines import AUDIENCES, policy_source
from .results import PolicyMatchResult
from .service_state import ServiceState

__all__ = ["ServiceReads"]

T = TypeVar("T")

# policy -> profiles answers kept, uncut, for paging and for several previews of one policy
_RESULT_CACHE = 4


class ServiceReads(ServiceState):
    """Answers from the index; each waits until the index is ready."""

    async def match_policy(
        self, policy: Policy, *, on: dt.date, top_k: int | None = None, min_score: float | None = None
    ) -> PolicyMatchResult:
        """Profiles eligible for ``policy`` (stored or not: a draft can be previewed) on day ``on``,
        and those that may qualify but lack data.  ``top_k`` cuts each list; ``min_score`` the
        eligible one."""
        if self.fan_out is not None:  # a shard: the other shards holding the policy's regions answer too
            return await self.fan_out(policy, on=on, top_k=top_k, min_score=min_score)
        await self.wait_ready()
        full = await self._full_matches(policy, on)
        return PolicyMatchResult.from_matches(full, top_k=top_k, min_score=min_score)

    async def full_matches(self, policy: Policy, *, on: dt.date) -> PolicyMatches:
        """The engine's uncut answer (a shard's part of a policy's answer is cut from it)."""
        await self.wait_ready()
        return await self._full_matches(policy, on)

    async def policies_for_profile(
        self,
        audience: str,
        profile_id: str,
        *,
        on: dt.date,
        top_k: int | None = None,
        include_unknown: bool = False,
    ) -> list[dict[str, Any]]:
        """Match records of the policies open on ``on`` that fit the profile, best first; with
        ``include_unknown`` those it may qualify for follow (``eligible: false``, ``missing``).
        Raises ``matchers.UnknownProfileError`` (a ``KeyError``) for an id not indexed."""
        await self.wait_ready()
        engine = self._own(audience, profile_id)
        found = await self._run(
            functools.partial(
                engine.match_profile,
                profile_id,
                on=on,
                top_k=top_k,
                include_unknown=include_unknown,
                open_only=True,
            )
        )
        return [r.to_dict() for r in (*found.eligible, *found.unknown)]

    async def open_policies_for(
        self, audience: str, profile_id: str, *, on: dt.date, top_k: int | None = None
    ) -> list[tuple[Policy, MatchRecord]]:
        """As :meth:`policies_for_profile` with ``include_unknown``, but each match record whole (its
        ``public_reasons`` and ``advice``) beside the policy it is for: what a page for the person shows."""
        await self.wait_ready()
        engine = self._own(audience, profile_id)
        found = await self._run(
            functools.partial(
                engine.match_profile, profile_id, on=on, top_k=top_k, include_unknown=True, open_only=True
            )
        )
        out: list[tuple[Policy, MatchRecord]] = []
        for record in (*found.eligible, *found.unknown):
            entry = self._policies.get(record.policy_id)
            if entry is not None:
                out.append((entry.policy, record))
        return out

    def _own(self, audience: str, profile_id: str) -> MatchEngine:
        engine = self._engines[audience]
        if self.shard is not None and profile_id not in engine:
            # most likely in another shard's region (or not yet caught up); never answered as "no policies"
            raise HeldByAnotherShard(
                f"this node holds shard {self.shard[0]!r}, and {audience} {profile_id[:80]!r} is not in it: ask the node "
                "of the shard holding its region (`policy-push shards list`)",
                loc=["path", "id"],
            )
        return engine

    async def answer_for(
        self,
        audience: str,
        profile_id: str,
        *,
        on: dt.date,
        top_k: int | None,
        tag: Hashable,
        shape: Callable[[list[tuple[Policy, MatchRecord]]], T],
    ) -> T:
        """``shape(open_policies_for(...))``, kept (``AnswerCache``) until the profile, a policy or the
        index's idf changes. ``tag`` names the shape and whatever else it depends on (it is part of the
        key); the answer is shared by every caller: treat it as read-only."""
        await self.wait_ready()
        generation = self._engines[audience].generation
        profile, key = (audience, profile_id), (on, top_k, tag)
        kept = self.answers.get(profile, key, generation)
        if kept is not None:
            return kept  # type: ignore[no-any-return]
        version = self._version
        answer = shape(await self.open_policies_for(audience, profile_id, on=on, top_k=top_k))
        if self._version == version and self._engines[audience].generation == generation:
            self.answers.put(profile, key, generation, answer)
        return answer

    async def audiences_of(self, profile_id: str) -> list[str]:
        """The audiences with a profile of this id (a resident id may look like a credit code)."""
        await self.wait_ready()
        return [a for a in AUDIENCES if profile_id in self._engines[a]]

    async def _full_matches(self, policy: Policy, on: dt.date) -> PolicyMatches:
        digest = policy.content_hash()
        key = (policy.id, digest, on, self._version)
        task = self._results.get(key)
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.ensure_future(self._compute(policy, digest, on))
            self._results[key] = task
            while len(self._results) > _RESULT_CACHE:
                self._results.popitem(last=False)
        else:
            self._results.move_to_end(key)
        # shielded: one caller giving up must not cancel the answer others are waiting for
        return await asyncio.shield(task)

    async def _compute(self, policy: Policy, digest: str, on: dt.date) -> PolicyMatches:
        engine = self._engines[policy.audience]
        entry = self._policies.get(policy.id)
        if entry is not None and entry.content_hash == digest:
            compiled = entry.compiled  # its text was cut when it was written
        else:
            compiled = await self._run(engine.compile_policy, policy_source(policy))
        return await self._run(functools.partial(engine.match_policy, compiled, on=on, top_k=None))
