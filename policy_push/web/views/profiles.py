"""Enterprise and resident profiles.  Every route here needs the API token: profiles hold
personal data (phone numbers, openids, ID numbers).

Choice of what a token holder sees: the list view is a staff overview, so it masks every
personal value (``138****5678``); GET of one profile returns it whole, because the caller asked
for that record by id and may need to correct it with PUT.  Both are documented in OpenAPI.  Each
unmasked read is written to the audit log.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from policy_push.domain import parse_record
from policy_push.errors import ConflictError, NotFound, Unprocessable
from policy_push.security import mask_profile_json
from policy_push.storage import (
    AlreadyExists,
    AuditLog,
    EnterpriseRepository,
    ResidentRepository,
    UpsertResult,
)

from ..bodies import json_response, read_json
from ..keys import cipher_key
from ..params import PROFILE_LIST_PARAMS, parse_query
from ._common import API_ACTOR, request_context, transaction
from .matches import index_profile, unindex_profile

__all__ = ["ENTERPRISES", "RESIDENTS", "ProfileViews"]


def _write_result(result: UpsertResult) -> dict[str, Any]:
    return {"id": result.id, "outcome": result.outcome, "version": result.version}


class ProfileViews:
    """The five handlers of one profile kind (``enterprise`` or ``resident``)."""

    def __init__(self, kind: str, collection: str, repository: type[EnterpriseRepository] | type[ResidentRepository]) -> None:
        self.kind = kind
        self.collection = collection
        self.repository = repository

    def _repo(self, request: web.Request, session: Any) -> Any:
        return self.repository(session, request.app[cipher_key])

    def _not_found(self, profile_id: str) -> NotFound:
        return NotFound(f"no {self.kind} {profile_id[:80]!r}", loc=["path", "id"])

    def _location(self, profile_id: str) -> str:
        return f"/api/v1/{self.collection}/{profile_id}"

    async def list(self, request: web.Request) -> web.Response:
        query = parse_query(request, PROFILE_LIST_PARAMS)
        async with transaction(request) as session:
            items, total = await self._repo(request, session).list(
                region=query["region"], limit=query["limit"], offset=query["offset"]
            )
        body = {
            "items": [mask_profile_json(p.to_json()) for p in items],
            "total": total,
            "limit": query["limit"],
            "offset": query["offset"],
        }
        return json_response(body)

    async def create(self, request: web.Request) -> web.Response:
        profile: Any = parse_record(self.kind, await read_json(request), request_context(request))  # type: ignore[arg-type]
        try:
            async with transaction(request) as session:
                result = await self._repo(request, session).create(profile, actor=API_ACTOR)
        except AlreadyExists as exc:
            raise ConflictError(
                f"{self.kind} {profile.id!r} already exists; send PUT {self._location(profile.id)} to update it",
                loc=["body", "id"],
                record=profile.id,
            ) from exc
        await index_profile(request, profile)
        return json_response(_write_result(result), status=201, headers={"Location": self._location(profile.id)})

    async def get(self, request: web.Request) -> web.Response:
        profile_id = request.match_info["id"]
        async with transaction(request) as session:
            stored = await self._repo(request, session).get(profile_id)
            if stored is None:
                raise self._not_found(profile_id)
            # personal data leaves the service whole here: keep a trace of who read it
            await AuditLog(session).record(actor=API_ACTOR, action="view_personal_data", entity_type=self.kind, entity_id=profile_id)
        return json_response({self.kind: stored.to_json()})

    async def put(self, request: web.Request) -> web.Response:
        profile_id = request.match_info["id"]
        data = await read_json(request)
        if isinstance(data, dict) and "id" in data and data["id"] != profile_id:
            raise Unprocessable(
                f"body id {str(data['id'])[:80]!r} does not match the id in the path {profile_id[:80]!r}",
                loc=["body", "id"],
            )
        if isinstance(data, dict) and "id" not in data:
            data = {**data, "id": profile_id}
        profile: Any = parse_record(self.kind, data, request_context(request))  # type: ignore[arg-type]
        async with transaction(request) as session:
            result = await self._repo(request, session).upsert(profile, actor=API_ACTOR)
        if result.outcome != "unchanged":
            await index_profile(request, profile)
        return json_response(_write_result(result), status=201 if result.outcome == "created" else 200)

    async def delete(self, request: web.Request) -> web.Response:
        profile_id = request.match_info["id"]
        async with transaction(request) as session:
            deleted = await self._repo(request, session).delete(profile_id, actor=API_ACTOR)
        if not deleted:
            raise self._not_found(profile_id)
        await unindex_profile(request, self.kind, profile_id)
        return web.Response(status=204)


ENTERPRISES = ProfileViews("enterprise", "enterprises", EnterpriseRepository)
RESIDENTS = ProfileViews("resident", "residents", ResidentRepository)
