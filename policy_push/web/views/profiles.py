"""Enterprise and resident profiles. Every route here needs the API token: profiles hold personal data
(phone numbers, openids, ID numbers). Writes go through the service (``policy_push.service``).

Choice of what a token holder sees: the list view is a staff overview, so it masks every personal value
(``138****5678``); GET of one profile returns it whole, because the caller asked for that record by id and
may need to correct it with PUT. Both are documented in OpenAPI. Each unmasked read is audited.
"""

from __future__ import annotations

from aiohttp import web

from policy_push.errors import NotFound
from policy_push.security import mask_profile_json
from policy_push.storage import AuditLog, profile_repository

from ..bodies import json_response, read_json
from ..keys import cipher_key, service_key
from ..params import PHONE_SOURCE_PARAMS, PROFILE_LIST_PARAMS, parse_query
from ._common import staff_member, transaction, write_result

__all__ = ["ENTERPRISES", "RESIDENTS", "ProfileViews"]


class ProfileViews:
    """The five handlers of one profile kind (``enterprise`` or ``resident``)."""

    def __init__(self, kind: str, collection: str) -> None:
        self.kind = kind
        self.collection = collection

    async def list(self, request: web.Request) -> web.Response:
        query = parse_query(request, PROFILE_LIST_PARAMS)
        async with transaction(request) as session:
            items, total = await profile_repository(self.kind, session, request.app[cipher_key]).list(
                region=query["region"], limit=query["limit"], offset=query["offset"]
            )
        body = {
            "items": [mask_profile_json(p.to_json(), person=self.kind == "resident") for p in items],
            "total": total, "limit": query["limit"], "offset": query["offset"],
        }  # fmt: skip
        return json_response(body)

    async def create(self, request: web.Request) -> web.Response:
        source = parse_query(request, PHONE_SOURCE_PARAMS)["phone_source"]
        result = await request.app[service_key].create_profile(
            self.kind, await read_json(request), actor=staff_member(request), phone_source=source
        )
        return json_response(write_result(result), status=201, headers={"Location": f"/api/v1/{self.collection}/{result.id}"})

    async def get(self, request: web.Request) -> web.Response:
        profile_id = request.match_info["id"]
        async with transaction(request) as session:
            stored = await profile_repository(self.kind, session, request.app[cipher_key]).get(profile_id)
            if stored is None:
                raise NotFound.of(self.kind, profile_id)
            # personal data leaves the service whole here: keep a trace of who read it
            await AuditLog(session).record(actor=staff_member(request), action="view_personal_data", entity_type=self.kind, entity_id=profile_id)
        return json_response({self.kind: stored.to_json()})

    async def put(self, request: web.Request) -> web.Response:
        source = parse_query(request, PHONE_SOURCE_PARAMS)["phone_source"]
        result = await request.app[service_key].put_profile(
            self.kind, request.match_info["id"], await read_json(request), actor=staff_member(request), phone_source=source
        )
        return json_response(write_result(result), status=201 if result.outcome == "created" else 200)

    async def delete(self, request: web.Request) -> web.Response:
        await request.app[service_key].delete_profile(self.kind, request.match_info["id"], actor=staff_member(request))
        return web.Response(status=204)


ENTERPRISES = ProfileViews("enterprise", "enterprises")
RESIDENTS = ProfileViews("resident", "residents")
