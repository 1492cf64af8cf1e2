"""Campaigns: the recipient list of a policy, its approval and schedule, under /api/v1/campaigns.

Every route needs a staff role (a recipient list is personal data even with contacts masked); the
acting account is who the campaign and the audit log record, and four eyes compares account ids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import WithJsonSchema

from policy_push.campaigns import (
    approve,
    campaign_json,
    cancel,
    cursor_of,
    decode_cursor,
    encode_cursor,
    exclude_recipients,
    include_recipients,
    list_recipients,
    load_campaign_view,
    prepare_campaign,
    schedule,
    set_send_time,
)
from policy_push.reach import CHANNELS, OPT_OUT_CHANNELS
from policy_push.statuses import CampaignState, FeedbackKind, OptOutSource, SkipReason
from policy_push.storage import campaigns as campaign_store
from policy_push.storage.campaigns import NOT_SKIPPED

from ..bodies import json_response, read_model
from ..keys import cipher_key, match_service_key, session_factory_key, settings_key
from ..params import MAX_PAGE_SIZE, QueryParam, enum_param, int_param, parse_query, pattern_param
from ..schemas import RequestModel as _In
from ..schemas import ResponseModel as _Out
from ._common import staff_member, transaction

__all__ = [
    "APPROVE_PARAMS",
    "CAMPAIGN_LIST_PARAMS",
    "CAMPAIGN_SCHEMAS",
    "RECIPIENT_PARAMS",
    "approve_campaign",
    "campaign_recipients",
    "cancel_campaign",
    "create_campaign",
    "exclude",
    "get_campaign",
    "include",
    "list_campaigns",
    "put_send_time",
    "schedule_campaign",
]


def _one_of(values: Any) -> str:
    """A pattern accepting exactly these values (OpenAPI shows it)."""
    return "^(" + "|".join(str(v).replace("*", "\\*") for v in values) + ")$"



# -- bodies and responses (registered with the OpenAPI schemas by the routes table) -------------
class CampaignCreate(_In):
    policy_id: str = Field(min_length=1, max_length=64, description="The policy to match and prepare a draft for.")
    version: int | None = Field(None, ge=1, description="Refuse (409) unless the policy is still at this version.")


class ProfileIds(_In):
    profile_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=10_000, description="Recipients of this campaign."
    )


class SendTimeIn(_In):
    # "in the future" is no JSON Schema keyword: the document names it as a format of its own
    send_at: Annotated[dt.datetime | None, WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "future-date-time"}, {"type": "null"}]}
    )] = Field(description="ISO 8601 with an offset (format `future-date-time`: a date-time after now); null: as soon as it "
               "is scheduled.")  # fmt: skip


class OptOutIn(_In):
    # the view takes one of two shapes; the document says which (a phone with a profile id is refused)
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["profile_kind", "profile_id"], "properties": {"profile_kind": {"type": "string"},
                                                                     "profile_id": {"type": "string"}, "phone": {"type": "null"}}},
        {"required": ["phone"], "properties": {"phone": {"type": "string"}, "profile_id": {"type": "null"}}},
    ]})  # fmt: skip

    profile_kind: str | None = Field(None, pattern="^(enterprise|resident)$", description="With profile_id.")
    profile_id: str | None = Field(None, min_length=1, max_length=64)
    phone: str | None = Field(None, max_length=20, description="Instead of an id: every profile with this phone.")
    channel: str = Field("*", pattern=_one_of(OPT_OUT_CHANNELS), description="`*` for every channel.")
    source: str = Field(
        OptOutSource.STAFF.value, pattern=_one_of([OptOutSource.SMS_UPLINK, OptOutSource.STAFF, OptOutSource.API]),
        description="Where the opt-out came from.",
    )


class CampaignOut(_Out):
    id: str
    policy_id: str
    policy_version: int
    state: CampaignState
    prepared_by: str
    approved_by: str | None
    approved_at: dt.datetime | None
    approval_sha256: str | None = Field(description="SHA-256 of the recipient list and message bodies approved.")
    send_at: dt.datetime | None


class CampaignPage(_Out):
    items: list[CampaignOut]
    total: int
    limit: int
    offset: int


class RecipientOut(_Out):
    profile_id: str
    eligible: bool = Field(description="False: may qualify (see `missing`).")
    score: float
    reasons: list[str]
    missing: list[str] = Field(description="The criteria fields left unknown (keys, as formats.md names them).")
    missing_labels: list[str] = Field(description="`missing` in the Chinese names staff read (企业规模).")
    channel: str | None
    skip_reason: SkipReason | None = Field(description="Why no message goes to them; null: they will be messaged.")
    contacts: dict[str, str | None] = Field(description="Masked addresses per channel (`138****5678`).")


class CampaignDetail(CampaignOut):
    summary: dict[str, Any] = Field(
        description="eligible, may_qualify, profiles, no_criteria, histogram, recipients, to_message (per channel), "
        "to_message_total, skipped (per reason)."
    )
    messages: dict[str, dict[str, Any]] = Field(description="Per channel, the message as rendered (SMS: length, segments).")
    top_recipients: list[RecipientOut]
    may_qualify: list[RecipientOut]


class RecipientPage(_Out):
    items: list[RecipientOut]
    total: int
    limit: int
    offset: int
    next: str | None = Field(
        description="Pass as `after` for the next page (read by the index, the same cost at any depth); null on the last page."
    )


class RecipientChange(_Out):
    changed: int
    unchanged: int
    state: CampaignState = Field(description="After a change an approved campaign is a draft again.")
    summary: dict[str, Any]


class OptOutResult(_Out):
    opted_out: list[dict[str, Any]] = Field(description="profile_kind, profile_id, channel, created (false: already)")


CAMPAIGN_SCHEMAS: dict[str, type[BaseModel]] = {
    m.__name__: m
    for m in (CampaignCreate, ProfileIds, SendTimeIn, OptOutIn, CampaignOut, CampaignPage, CampaignDetail,
              RecipientPage, RecipientChange, OptOutResult)
}  # fmt: skip

_LIMIT = int_param("limit", f"Page size, 1-{MAX_PAGE_SIZE}.", minimum=1, maximum=MAX_PAGE_SIZE, default=50)
_OFFSET = int_param("offset", "Number of items to skip.", minimum=0, default=0)
CAMPAIGN_LIST_PARAMS: tuple[QueryParam, ...] = (
    enum_param("state", "Only campaigns in this state.", [s.value for s in CampaignState]),
    pattern_param("policy_id", "Only campaigns of this policy.", r"[A-Za-z0-9._-]{1,64}", "a policy id"),
    _LIMIT,
    _OFFSET,
)
RECIPIENT_PARAMS: tuple[QueryParam, ...] = (
    enum_param("eligible", "`true`: eligible; `false`: may qualify.", ("true", "false")),
    enum_param("skip_reason", f"Only recipients skipped for this reason; `{NOT_SKIPPED}`: those to be messaged.",
               [NOT_SKIPPED, *(s.value for s in SkipReason)]),
    enum_param("channel", "Only recipients on this channel.", list(CHANNELS)),
    _LIMIT,
    _OFFSET,
    pattern_param("after", "The `next` of the previous page: the page after it, read by the index (the same cost at "
                  "any depth of a million-recipient list, unlike `offset`).", r"[A-Za-z0-9_=-]{1,200}", "a `next` value"),
)  # fmt: skip
APPROVE_PARAMS: tuple[QueryParam, ...] = (
    enum_param("schedule", "`true`: approve and schedule in one step.", ("true", "false")),
    pattern_param("sha256", "The `list_sha256` of the list and texts the approver saw: 409 when it changed since.",
                  r"[0-9a-f]{64}", "64 lowercase hex digits"),
)


# -- helpers -------------------------------------------------------------------------------------
def _campaign_id(request: web.Request) -> str:
    return request.match_info["id"]


async def _detail(request: web.Request, campaign_id: str) -> dict[str, Any]:
    async with transaction(request) as session:
        view = await load_campaign_view(session, request.app[cipher_key], campaign_id)
    return view.as_dict()


# -- handlers ------------------------------------------------------------------------------------
async def list_campaigns(request: web.Request) -> web.Response:
    q = parse_query(request, CAMPAIGN_LIST_PARAMS)
    async with transaction(request) as session:
        rows, total = await campaign_store.list_page(
            session, state=q["state"], policy_id=q["policy_id"], limit=q["limit"], offset=q["offset"]
        )
        items = [{**campaign_json(r), "summary": _counts_only(r.summary)} for r in rows]
    return json_response({"items": items, "total": total, "limit": q["limit"], "offset": q["offset"]})


def _counts_only(summary: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (summary or {}).items() if k != "histogram"}


async def create_campaign(request: web.Request) -> web.Response:
    actor = staff_member(request)
    body = await read_model(request, CampaignCreate)
    prepared = await prepare_campaign(
        request.app[session_factory_key], request.app[match_service_key], body.policy_id,
        prepared_by=actor, settings=request.app[settings_key], version=body.version,
    )  # fmt: skip
    assert prepared is not None  # force=True always prepares
    return json_response(
        await _detail(request, prepared.id), status=201, headers={"Location": f"/api/v1/campaigns/{prepared.id}"}
    )


async def get_campaign(request: web.Request) -> web.Response:
    return json_response(await _detail(request, _campaign_id(request)))


async def campaign_recipients(request: web.Request) -> web.Response:
    q = parse_query(request, RECIPIENT_PARAMS)
    eligible = None if q["eligible"] is None else q["eligible"] == "true"
    async with transaction(request) as session:
        lines, total = await list_recipients(
            session, request.app[cipher_key], _campaign_id(request), eligible=eligible,
            skip_reason=q["skip_reason"], channel=q["channel"], limit=q["limit"], offset=q["offset"],
            after=None if q["after"] is None else decode_cursor(q["after"]),
        )  # fmt: skip
    body = {"items": [ln.as_dict() for ln in lines], "total": total, "limit": q["limit"], "offset": q["offset"],
            "next": encode_cursor(cursor_of(lines[-1])) if len(lines) == q["limit"] else None}  # fmt: skip
    return json_response(body)


def _edit_list(edit: Callable[..., Awaitable[dict[str, Any]]]) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A view that applies ``edit`` (exclude or include) to the profile ids in the body."""

    async def view(request: web.Request) -> web.Response:
        actor = staff_member(request)
        body = await read_model(request, ProfileIds)
        async with transaction(request) as session:
            return json_response(await edit(session, _campaign_id(request), body.profile_ids, actor=actor))

    return view


exclude = _edit_list(exclude_recipients)
include = _edit_list(include_recipients)


async def put_send_time(request: web.Request) -> web.Response:
    actor = staff_member(request)
    body = await read_model(request, SendTimeIn)
    async with transaction(request) as session:
        row = await set_send_time(session, _campaign_id(request), body.send_at, actor=actor)
        out = campaign_json(row)
    return json_response(out)


async def approve_campaign(request: web.Request) -> web.Response:
    q = parse_query(request, APPROVE_PARAMS)
    actor = staff_member(request)
    async with transaction(request) as session:
        row = await approve(
            session, _campaign_id(request), approver=actor, and_schedule=q["schedule"] == "true", expect_sha256=q["sha256"]
        )
        out = campaign_json(row)
    return json_response(out)


async def schedule_campaign(request: web.Request) -> web.Response:
    actor = staff_member(request)
    async with transaction(request) as session:
        row = await schedule(session, _campaign_id(request), actor=actor)
        out = campaign_json(row)
    return json_response(out)


async def cancel_campaign(request: web.Request) -> web.Response:
    actor = staff_member(request)
    async with transaction(request) as session:
        row = await cancel(session, _campaign_id(request), actor=actor, reason="cancelled through the API")
        out = campaign_json(row)
    return json_response(out)


class FeedbackForm(_In):
    """The form of the public policy page (application/x-www-form-urlencoded)."""

    t: str = Field(max_length=64, description="The signed link token the page put in the form.")
    csrf: str = Field(max_length=64, description="Must equal the page's `pp_link_csrf` cookie.")
    kind: str = Field(pattern=_one_of(FeedbackKind), description="有用 / 不相关 / 已申报 / 退订.")
    confirm: str | None = Field(None, description="`yes`: the confirming second post of 退订.")


class ConsoleForm(BaseModel):
    """A form of the staff console (application/x-www-form-urlencoded); its other fields depend on the form."""

    model_config = ConfigDict(extra="allow")
    csrf: str = Field(description="The session's CSRF token (a login form's comes from the login page).")


CAMPAIGN_SCHEMAS.update({m.__name__: m for m in (FeedbackForm, ConsoleForm)})
