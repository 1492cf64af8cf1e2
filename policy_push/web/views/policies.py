"""Policies: public reads (a policy holds no personal data), token-guarded writes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from policy_push.domain import Policy, local_today, parse_policy
from policy_push.errors import ConflictError, NotFound, Unprocessable
from policy_push.storage import PolicyRepository

from ..bodies import json_response, read_json
from ..params import POLICY_LIST_PARAMS, parse_query
from ._common import API_ACTOR, local_iso, request_context, transaction
from .campaigns import draft_after_policy_write
from .matches import index_policy

__all__ = ["create_policy", "get_policy", "list_policies", "list_policy_versions", "put_policy"]


def _not_found(policy_id: str) -> NotFound:
    return NotFound(f"no policy {policy_id[:80]!r}", loc=["path", "id"])


def _envelope(stored: Any) -> dict[str, Any]:
    policy: Policy = stored.policy
    return {
        "policy": policy.to_json(),
        "version": stored.version,
        "created_at": local_iso(stored.created_at),
        "updated_at": local_iso(stored.updated_at),
        "is_open": policy.is_open(local_today()),
    }


def _write_result(result: Any) -> dict[str, Any]:
    return {"id": result.id, "outcome": result.outcome, "version": result.version}


async def list_policies(request: web.Request) -> web.Response:
    query = parse_query(request, POLICY_LIST_PARAMS)
    async with transaction(request) as session:
        items, total = await PolicyRepository(session).list(
            audience=query["audience"],
            category=query["category"],
            region=query["region"],
            status=query["status"],
            today=local_today(),
            limit=query["limit"],
            offset=query["offset"],
        )
    body = {"items": [_envelope(s) for s in items], "total": total, "limit": query["limit"], "offset": query["offset"]}
    return json_response(body)


async def create_policy(request: web.Request) -> web.Response:
    policy = parse_policy(await read_json(request), request_context(request))
    async with transaction(request) as session:
        repo = PolicyRepository(session)
        if await repo.exists(policy.id):
            raise ConflictError(
                f"policy {policy.id!r} already exists; send PUT /api/v1/policies/{policy.id} to update it",
                loc=["body", "id"],
                record=policy.id,
            )
        result = await repo.upsert(policy, actor=API_ACTOR)
    await index_policy(request, policy)
    await draft_after_policy_write(request, policy.id)
    return json_response(_write_result(result), status=201, headers={"Location": f"/api/v1/policies/{policy.id}"})


async def get_policy(request: web.Request) -> web.Response:
    policy_id = request.match_info["id"]
    async with transaction(request) as session:
        stored = await PolicyRepository(session).get(policy_id)
    if stored is None:
        raise _not_found(policy_id)
    return json_response(_envelope(stored))


async def put_policy(request: web.Request) -> web.Response:
    """Create or update: changed content becomes a new version, identical content changes nothing."""
    policy_id = request.match_info["id"]
    data = await read_json(request)
    if isinstance(data, dict) and "id" in data and data["id"] != policy_id:
        raise Unprocessable(
            f"body id {str(data['id'])[:80]!r} does not match the id in the path {policy_id[:80]!r}",
            loc=["body", "id"],
        )
    if isinstance(data, dict) and "id" not in data:
        data = {**data, "id": policy_id}
    policy = parse_policy(data, request_context(request))
    async with transaction(request) as session:
        result = await PolicyRepository(session).upsert(policy, actor=API_ACTOR)
    if result.outcome != "unchanged":
        await index_policy(request, policy)
        await draft_after_policy_write(request, policy.id)
    status = 201 if result.outcome == "created" else 200
    return json_response(_write_result(result), status=status)


async def list_policy_versions(request: web.Request) -> web.Response:
    policy_id = request.match_info["id"]
    async with transaction(request) as session:
        repo = PolicyRepository(session)
        versions = await repo.history(policy_id)
        if not versions and not await repo.exists(policy_id):
            raise _not_found(policy_id)
    body = {
        "id": policy_id,
        "versions": [
            {
                "version": v.version,
                "content_hash": v.content_hash,
                "actor": v.actor,
                "created_at": local_iso(v.created_at),
                "policy": v.policy.to_json(),
            }
            for v in versions
        ],
    }
    return json_response(body)
