"""Typed application keys: everything long-lived hangs off the app, never off a module global."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from channels import ReplayGuard
from policy_push.config import Settings
from policy_push.matching import MatchService
from policy_push.matching.fanout import ShardRouter
from policy_push.refdata import ReferenceData
from policy_push.security import PiiCipher
from policy_push.security.links import LinkSigner
from policy_push.service import Service
from scheduler import TickScheduler

from .throttle import Throttle

if TYPE_CHECKING:
    from policy_push.sending import Pipeline
    from policy_push.subscribers.signin import Subscribers

__all__ = [
    "cipher_key",
    "engine_key",
    "link_signer_key",
    "link_throttle_key",
    "match_service_key",
    "openapi_key",
    "pipeline_key",
    "refdata_key",
    "replay_guard_key",
    "request_id_key",
    "route_index_key",
    "route_spec",
    "scheduler_key",
    "service_key",
    "session_factory_key",
    "settings_key",
    "shard_router_key",
    "subscribers_key",
]

settings_key = web.AppKey("settings", Settings)
engine_key = web.AppKey("engine", AsyncEngine)
session_factory_key = web.AppKey("session_factory", async_sessionmaker)
cipher_key = web.AppKey("cipher", PiiCipher)
#: signs and checks the link tokens of people's pages (security.links)
link_signer_key = web.AppKey("link_signer", LinkSigner)
#: limits link-code look-ups per client address
link_throttle_key = web.AppKey("link_throttle", Throttle)
refdata_key = web.AppKey("refdata", ReferenceData)
#: signed WeChat pushes already applied (a replay inside the timestamp window is refused)
replay_guard_key = web.AppKey("replay_guard", ReplayGuard)
#: the match index: built in the background at start, kept current by every write
match_service_key = web.AppKey("match_service", MatchService)
#: only on a shard node (POLICY_PUSH_SHARD): asks the other shards for their parts of a match list
shard_router_key = web.AppKey("shard_router", ShardRouter)
#: the one way in for writes of policies and profiles (with this process's match index)
service_key = web.AppKey("service", Service)
#: the send pipeline when this process runs the dispatch ticks (``serve`` without ``--no-worker``)
pipeline_key: web.AppKey[Pipeline] = web.AppKey("pipeline")
#: the ticks of this process (the change feed, and the send pipeline's when it runs them)
scheduler_key = web.AppKey("scheduler", TickScheduler)
#: the OpenAPI document, built once from the routes table when the app is created
openapi_key = web.AppKey("openapi", dict)
#: (method, path template) -> the routes-table entry, for the auth middleware
route_index_key: web.AppKey[dict[tuple[str, str], Any]] = web.AppKey("route_index", dict)


def route_spec(request: web.Request) -> Any:
    """The routes-table entry ``request`` matched (None for a path outside the table, e.g. a 404)."""
    route = request.match_info.route
    if route.resource is None:
        return None
    return request.app[route_index_key].get((route.method, route.resource.canonical))


#: the id under which an unexpected error is logged and reported to the client
request_id_key = web.RequestKey("request_id", str)

#: sign-in codes, sessions and accounts of the people themselves (/me, /api/v1/me)
subscribers_key: web.AppKey[Subscribers] = web.AppKey("subscribers")
