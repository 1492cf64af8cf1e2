"""Policies: public reads (a policy holds no personal data), token-guarded writes through the service."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from policy_push.domain import Policy, local_today
from policy_push.errors import NotFound
from policy_push.storage import PolicyRepository

from ..bodies import json_response, read_json
from ..keys import service_key
from ..params import POLICY_LIST_PARAMS, parse_query
from ._common import drafter, local_iso, staff_member, stored_policy, transaction, write_result

__all__ = ["create_policy", "get_policy", "list_policies", "list_policy_versions", "put_policy"]


def _envelope(stored: Any) -> dict[str, Any]:
    policy: Policy = stored.policy
    return {
        "policy": policy.to_json(),
        "version": stored.version,
        "created_at": local_iso(stored.created_at),
        "updated_at": local_iso(stored.updated_at),
        "is_open": policy.is_open(local_today()),
    }


async def list_policies(request: web.Request) -> web.Response:
    query = parse_query(request, POLICY_LIST_PARAMS)
    async with transaction(request) as session:
        items, total = await PolicyRepository(session).list(
            audience=query["audience"], category=query["category"], region=query["region"], status=query["status"],
            today=local_today(), limit=query["limit"], offset=query["offset"],
        )  # fmt: skip
    body = {"items": [_envelope(s) for s in items], "total": total, "limit": query["limit"], "offset": query["offset"]}
    return json_response(body)


async def create_policy(request: web.Request) -> web.Response:
    result = await request.app[service_key].create_policy(await read_json(request), actor=staff_member(request), drafter=drafter(request))
    return json_response(write_result(result), status=201, headers={"Location": f"/api/v1/policies/{result.id}"})


async def get_policy(request: web.Request) -> web.Response:
    policy_id = request.match_info["id"]
    return json_response(_envelope(await stored_policy(request, policy_id)))


async def put_policy(request: web.Request) -> web.Response:
    """Create or update: changed content becomes a new version, identical content changes nothing."""
    result = await request.app[service_key].put_policy(
        request.match_info["id"], await read_json(request), actor=staff_member(request), drafter=drafter(request)
    )
    return json_response(write_result(result), status=201 if result.outcome == "created" else 200)


async def list_policy_versions(request: web.Request) -> web.Response:
    policy_id = request.match_info["id"]
    async with transaction(request) as session:
        repo = PolicyRepository(session)
        versions = await repo.history(policy_id)
        if not versions and not await repo.exists(policy_id):
            raise NotFound.of("policy", policy_id)
    body = {
        "id": policy_id,
        "versions": [
            {"version": v.version, "content_hash": v.content_hash, "actor": v.actor, "created_at": local_iso(v.created_at),
             "policy": v.policy.to_json()}
            for v in versions
        ],
    }  # fmt: skip
    return json_response(body)
