"""A shard node answering a policy's match list for every profile: its own part computed here, the
other shards' parts asked over HTTP (``POST /internal/shards/{name}/matches`` with the policy
document itself, so that every shard evaluates the very version asked about, and the service
token), merged (``policy_push.matching.shards``).

A shard that does not answer, answers late or answers something else fails the whole request with
``ShardUnavailable`` naming it (503 and the JSON error shape): never a silently partial list.  So
does a part taken from another shard map than the one read for the request (a node still taking up
a moved region, ``service_reshard``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_push.domain import Policy
from policy_push.errors import ShardUnavailable
from policy_push.refdata import ReferenceData
from policy_push.storage import shards as shard_store
from policy_push.storage.contacts import profile_table
from policy_push.storage.shards import Shard

from .results import PolicyMatchResult
from .service import MatchService
from .shards import merge, part_of, shards_for

__all__ = ["SHARD_PATH", "ShardRouter"]

#: the route of one shard's part (``web.routes``); a template for ``str.format``
SHARD_PATH = "/internal/shards/{name}/matches"


class ShardRouter:
    """Fans a policy out over the shards that hold its regions; one per shard node."""

    def __init__(
        self,
        service: MatchService,
        sessions: async_sessionmaker[AsyncSession],
        ref: ReferenceData,
        http: aiohttp.ClientSession,
        *,
        token: str,
        timeout_s: float,
    ) -> None:
        assert service.shard is not None, "only a shard node fans out"
        self.service = service
        self.name = service.shard[0]
        self._sessions = sessions
        self._ref = ref
        self._http = http
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        # every caller of the service's match_policy (the match list API, campaign drafting) gets the whole answer
        service.fan_out = self.match_policy

    async def part(self, policy: Policy, *, on: dt.date, top_k: int | None, min_score: float | None) -> dict[str, Any]:
        """This shard's part of the answer (what the internal route returns)."""
        epoch = self.service.map_epoch
        full = await self.service.full_matches(policy, on=on)
        part = part_of(self.name, full, top_k=top_k, min_score=min_score)
        # the map the profiles it was computed from were taken from; None if they changed meanwhile
        part["map"] = self.service.part_map(epoch)
        return part

    async def match_policy(self, policy: Policy, *, on: dt.date, top_k: int | None, min_score: float | None) -> PolicyMatchResult:
        # read per request: a shard added to the map is asked from the next request on
        async with self._sessions() as session:
            current = await shard_store.load(session)
        names = shards_for(policy, current, self._ref)
        asks = []
        for name in names:
            if name == self.name:
                asks.append(self.part(policy, on=on, top_k=top_k, min_score=min_score))
            else:
                shard = current.get(name)
                assert shard is not None
                asks.append(self._remote(shard, policy, on=on, top_k=top_k, min_score=min_score))
        parts = list(await asyncio.gather(*asks))
        for part in parts:
            if part.get("map") != current.fingerprint():
                # a shard that has not yet taken up the map (or is taking it up): its profiles may be
                # counted twice or missed, so no list rather than a wrong one (``service_reshard``)
                shard = current.get(part["shard"])
                raise ShardUnavailable.of(part["shard"], shard.url if shard else "?",
                                          "it is still taking up the changed shard map")
        profiles = None
        if len(names) < len(current.shards):
            # the skipped shards hold only regions outside the policy's: their profiles count, unmatched
            table = profile_table(policy.audience)
            async with self._sessions() as session:
                profiles = int(await session.scalar(select(func.count()).select_from(table)) or 0)
        return merge(policy.id, parts, top_k=top_k, profiles=profiles)

    async def _remote(self, shard: Shard, policy: Policy, *, on: dt.date, top_k: int | None,
                      min_score: float | None) -> dict[str, Any]:
        ask = {"policy": policy.to_json(), "date": on.isoformat(), "top_k": top_k, "min_score": min_score}
        url = shard.url + SHARD_PATH.format(name=shard.name)
        try:
            async with self._http.post(url, json=ask, headers={"Authorization": f"Bearer {self._token}"},
                                       timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise ShardUnavailable.of(shard.name, shard.url, f"it answered HTTP {resp.status}")
                body: dict[str, Any] = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ShardUnavailable.of(shard.name, shard.url, f"{type(exc).__name__}") from exc
        if body.get("shard") != shard.name:
            raise ShardUnavailable.of(shard.name, shard.url, f"the node there holds shard {body.get('shard')!r}")
        return body
