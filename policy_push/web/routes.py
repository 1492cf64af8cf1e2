"""The one table of routes.  ``setup_routes`` registers it with the router, the auth middleware
reads its ``auth`` flags, and :mod:`policy_push.web.openapi` documents it: they cannot drift."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from .keys import route_index_key
from .middlewares import expect_continue
from .params import POLICY_LIST_PARAMS, PROFILE_LIST_PARAMS, QueryParam
from .views import docs, health, imports, policies
from .views.profiles import ENTERPRISES, RESIDENTS, ProfileViews

__all__ = ["API_PREFIX", "ROUTES", "Body", "Reply", "Route", "setup_routes"]

API_PREFIX = "/api/v1"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Body:
    """A request body: a schema name from :data:`policy_push.web.schemas.SCHEMA_MODELS`."""

    schema: str
    content_type: str = "application/json"
    description: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """A success response; ``schema`` None means no body (204)."""

    status: int
    schema: str | None
    description: str


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    replies: tuple[Reply, ...]
    #: needs ``Authorization: Bearer <api_token>`` (every write, every read of personal data)
    auth: bool = False
    body: Body | None = None
    query: tuple[QueryParam, ...] = ()
    #: error statuses this route can answer besides 401/403 (auth) and 500
    errors: tuple[int, ...] = ()
    description: str = ""
    path_params: dict[str, str] = field(default_factory=dict)


_ID = {"id": "The record's id."}
_WRITE = (Reply(201, "WriteResult", "Created."),)
_UPSERT = (Reply(200, "WriteResult", "Updated, or unchanged when the content was identical."), Reply(201, "WriteResult", "Created."))
_PROFILE_GET_NOTE = (
    "Returns the whole record, personal data included, to a token holder (the caller asked for this "
    "one record by id, e.g. to correct it). List views mask personal data."
)


def _profile_routes(views: ProfileViews, envelope: str, record: str, tag: str) -> list[Route]:
    base = f"{API_PREFIX}/{views.collection}"
    title = views.kind
    return [
        Route("GET", base, views.list, f"list_{views.collection}", f"List {title} profiles (personal data masked)", tag,
              (Reply(200, "MaskedProfilePage", "One page of profiles, personal values masked."),),
              auth=True, query=PROFILE_LIST_PARAMS, errors=(422,)),
        Route("POST", base, views.create, f"create_{title}", f"Register a new {title} profile", tag, _WRITE,
              auth=True, body=Body(record), errors=(409, 413, 415, 422)),
        Route("GET", f"{base}/{{id}}", views.get, f"get_{title}", f"Get one {title} profile, unmasked", tag,
              (Reply(200, envelope, "The profile."),), auth=True, errors=(404,), description=_PROFILE_GET_NOTE,
              path_params=_ID),
        Route("PUT", f"{base}/{{id}}", views.put, f"put_{title}", f"Create or replace a {title} profile", tag, _UPSERT,
              auth=True, body=Body(record), errors=(413, 415, 422), path_params=_ID,
              description="The body's id, when given, must equal the id in the path."),
        Route("DELETE", f"{base}/{{id}}", views.delete, f"delete_{title}", f"Delete a {title} profile", tag,
              (Reply(204, None, "Deleted."),), auth=True, errors=(404,), path_params=_ID),
    ]


ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", health.healthz, "healthz", "Health: database reachable, schema current, counts", "service",
          (Reply(200, "Health", "Healthy."), Reply(503, "Health", "The database is unreachable or its schema is out of date."))),
    Route("GET", f"{API_PREFIX}/openapi.json", docs.openapi_json, "openapi", "This OpenAPI document", "service",
          (Reply(200, "OpenApiDocument", "OpenAPI 3.1 document."),)),
    Route("GET", f"{API_PREFIX}/policies", policies.list_policies, "list_policies", "List policies (paged, filtered)", "policies",
          (Reply(200, "PolicyPage", "One page of policies, latest published first."),), query=POLICY_LIST_PARAMS, errors=(422,)),
    Route("POST", f"{API_PREFIX}/policies", policies.create_policy, "create_policy", "Create a policy", "policies", _WRITE,
          auth=True, body=Body("Policy"), errors=(409, 413, 415, 422),
          description="An existing id is a 409; use PUT to publish a new version."),
    Route("GET", f"{API_PREFIX}/policies/{{id}}", policies.get_policy, "get_policy", "Get a policy", "policies",
          (Reply(200, "PolicyEnvelope", "The current version."),), errors=(404,), path_params=_ID),
    Route("PUT", f"{API_PREFIX}/policies/{{id}}", policies.put_policy, "put_policy", "Create or update a policy (new version)", "policies",
          _UPSERT, auth=True, body=Body("Policy"), errors=(413, 415, 422), path_params=_ID,
          description="Changed content becomes a new version (the old one stays in the history); identical content "
          "changes nothing. The body's id, when given, must equal the id in the path."),
    Route("GET", f"{API_PREFIX}/policies/{{id}}/versions", policies.list_policy_versions, "list_policy_versions",
          "Version history of a policy", "policies", (Reply(200, "PolicyVersions", "Every version, newest first."),),
          errors=(404,), path_params=_ID),
    *_profile_routes(ENTERPRISES, "EnterpriseEnvelope", "EnterpriseProfile", "enterprises"),
    *_profile_routes(RESIDENTS, "ResidentEnvelope", "ResidentProfile", "residents"),
    Route("POST", f"{API_PREFIX}/import/{{kind}}", imports.import_records, "import_records", "Bulk import JSON lines", "import",
          (Reply(200, "ImportReportOut", "What was created, updated, left unchanged and rejected (by line)."),),
          auth=True, body=Body("NdjsonBody", content_type="application/x-ndjson",
                               description="One record per line (policies, enterprises or residents, by the path). "
                               "Bad lines are reported by number and change nothing; good lines are stored."),
          errors=(404, 415), path_params={"kind": "policies, enterprises or residents."},
          description="Streamed: the body may be of any size; each line is limited by POLICY_PUSH_MAX_IMPORT_LINE_BYTES. "
          "The same id twice in one import is rejected on the later line."),
)


def setup_routes(app: web.Application) -> None:
    index: dict[tuple[str, str], Route] = {}
    for route in ROUTES:
        app.router.add_route(
            route.method, route.path, route.handler, name=route.operation_id, expect_handler=expect_continue
        )
        index[(route.method, route.path)] = route
    app[route_index_key] = index
