"""A shard node answering a policy's match list for every profile: its own part computed here, the
other shards' parts asked over HTTP (``POST /internal/shards/{name}/matches`` with the policy
document itself, so that every shard evaluates the very version asked about, and the service
token), merged (``policy_push.matching.shards``).

A shard that does not answer, answers late or answers something else fails the whole request with
``ShardUnavailable`` naming it (503 and the JSON error shape): never a silently partial list.  So
does a part taken from another shard map than the one read for the request (a node still taking up
a moved region, ``service_reshard``).

A profile's own policies are answered by the node holding the profile: asked of another shard node,
that node finds the profile's home (``storage.shards.home_of``: the map and the profile's region) and
asks it over ``POST /internal/shards/{name}/profile-policies`` (staff's view) or ``.../me-policies``
(the subscriber's), the profile's id in the body, and returns its answer's bytes as they came. The
asking node keeps no copy: the home node's own answer cache (``AnswerCache``) is the only one, so a
change there is never hidden by a copy here. A home that does not answer is a 503 naming it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
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

__all__ = ["ME_POLICIES_PATH", "PROFILE_POLICIES_PATH", "SHARD_PATH", "ShardRouter"]

#: the route of one shard's part (``web.routes``); a template for ``str.format``
SHARD_PATH = "/internal/shards/{name}/matches"
#: the routes of a profile's policies asked of its home shard: staff's view and the subscriber's
PROFILE_POLICIES_PATH = "/internal/shards/{name}/profile-policies"
ME_POLICIES_PATH = "/internal/shards/{name}/me-policies"


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

    async def ask_home(self, path: str, audience: str, profile_id: str, *, on: dt.date, limit: int) -> bytes | None:
        """The answer of the profile's home shard to ``path`` (its body's bytes), or None when this node
        is the home (or there is none: no such profile): answer here."""
        async with self._sessions() as session:
            home = await shard_store.home_of(session, audience, profile_id)
        if home is None or home.name == self.name:
            return None
        ask = {"audience": audience, "profile_id": profile_id, "date": on.isoformat(), "limit": limit}
        return await self.ask(home, path, ask, instead="a profile's policies are answered by the shard holding it alone")

    async def _remote(self, shard: Shard, policy: Policy, *, on: dt.date, top_k: int | None,
                      min_score: float | None) -> dict[str, Any]:
        ask = {"policy": policy.to_json(), "date": on.isoformat(), "top_k": top_k, "min_score": min_score}
        raw = await self.ask(shard, SHARD_PATH, ask)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("shard") != shard.name:
            got = body.get("shard") if isinstance(body, dict) else None
            raise ShardUnavailable.of(shard.name, shard.url, f"the node there holds shard {got!r}")
        return body

    async def ask(self, shard: Shard, path: str, ask: dict[str, Any], *,
                  instead: str = "a partial match list is never given") -> bytes:
        """The body of a 200 answer to ``ask`` POSTed to ``path`` (a template naming the shard) on
        ``shard``'s node with the service token; ``ShardUnavailable`` naming it for anything else."""
        url = shard.url + path.format(name=shard.name)
        try:
            async with self._http.post(url, json=ask, headers={"Authorization": f"Bearer {self._token}"},
                                       timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise ShardUnavailable.of(shard.name, shard.url, f"it answered HTTP {resp.status}", instead=instead)
                return await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ShardUnavailable.of(shard.name, shard.url, f"{type(exc).__name__}", instead=instead) from exc
