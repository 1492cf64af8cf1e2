"""Suggestions from policy text, and the review queue (issue 14).

``POST /api/v1/policies/suggest`` reads one policy text and returns the suggested record and the
suggestions, storing nothing.  The review queue holds texts waiting for a person (pasted here, or
fetched from the configured sources); confirming an item writes a policy through the policy
storage, rejecting it writes nothing; both are in the audit log with the acting staff member.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from policy_push.domain import Policy, ValidationContext
from policy_push.domain._types import ISODate
from policy_push.intake import SuggestionResult, suggest_policy
from policy_push.intake.review import ReviewQueue, ReviewStatus

from ..bodies import json_response, read_model
from ..keys import refdata_key, service_key, settings_key
from ..params import MAX_PAGE_SIZE, QueryParam, enum_param, int_param, parse_query
from ..schemas import RequestModel as _In
from ..schemas import ResponseModel as _Out
from ._common import local_iso, request_context, staff_member, transaction

__all__ = ["REVIEW_LIST_PARAMS", "REVIEW_SCHEMAS", "confirm_item", "create_item", "get_item", "list_items",
           "reject_item", "suggest"]


_POLICY_FIELDS: dict[str, Any] = Policy.model_json_schema()["properties"]


class SuggestIn(_In):
    # the suggested record is a Policy: its fields carry the Policy's rules (one home: the Policy's schema)
    title: str = Field(min_length=1, max_length=2000, description="The policy's title.",
                       json_schema_extra=_POLICY_FIELDS["title"])
    text: str = Field("", max_length=200_000, description="The policy's text as published.")
    id: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$", description="Id for the record; a draft id when absent.",
                           json_schema_extra={"not": _POLICY_FIELDS["id"]["not"]})
    audience: str | None = Field(None, pattern="^(enterprise|resident)$", description="When known; suggested otherwise.")
    url: str | None = Field(None, max_length=2048, json_schema_extra={"pattern": _POLICY_FIELDS["url"]["pattern"]})
    published_on: ISODate | None = Field(None, description="Needed for relative deadlines (自发布之日起30日内).")
    issuer: str | None = Field(None, max_length=2000)
    doc_number: str | None = Field(None, max_length=2000)
    city: str | None = Field(None, pattern=r"^\d{6}(\d{3})?$", description="Region code to read the text in (default: the service's).",
                             json_schema_extra={"format": "gb2260-region"})


class SuggestionOut(_Out):
    id: str = Field(description="Refer to it in a review decision.")
    field: str = Field(description="A policy field; `criteria` for one condition; `unsupported` for a condition "
                       "the criteria language cannot hold.")
    value: Any
    sentence: str | None = Field(description="The sentence it came from (null: from the title).")
    span: list[int] | None = Field(description="Character offsets in `text` of the words it came from.")
    confidence: float
    applied: bool = Field(description="Whether the suggested record holds it.")
    path: list[str | int] | None = Field(None, description="For a condition: where it sits in the record's criteria.")
    note: str | None = None


class SuggestOut(_Out):
    record: dict[str, Any] = Field(description="The policy record with the suggested fields filled in; it passes "
                                   "validation (POST it to /policies after a person has checked it).")
    suggestions: list[SuggestionOut]


class ReviewCreate(SuggestIn):
    pass


class ReviewItemOut(_Out):
    id: str
    status: str = Field(description="pending, confirmed or rejected.")
    origin: str = Field(description="paste (entered by staff) or feed (fetched from a source).")
    source: str | None
    url: str | None
    title: str
    text: str
    diff: str | None = Field(description="For a changed document: a unified diff from the version before.")
    suggested: dict[str, Any] = Field(description="The suggested policy record (valid).")
    suggestions: list[SuggestionOut]
    created_by: str
    created_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    decision: dict[str, Any] | None
    policy_id: str | None
    policy_version: int | None


class ReviewPage(_Out):
    items: list[ReviewItemOut]
    total: int
    limit: int
    offset: int


class ReviewConfirm(_In):
    decisions: dict[str, Any] = Field(
        default_factory=dict,
        description='Per suggestion id: "accept", "reject" or {"edit": value}. Every suggestion the suggested '
        "record holds must be decided; others may be accepted to add them.",
    )
    fields: dict[str, Any] = Field(
        default_factory=dict,
        description="Policy fields the reviewer writes directly (id, summary, title, a whole criteria tree …), "
        "applied after the decisions.",
    )


class ReviewReject(_In):
    reason: str = Field(min_length=1, max_length=2000, description="Why, for the audit log.")


class ConfirmOut(_Out):
    item: ReviewItemOut
    policy_id: str
    version: int
    outcome: str = Field(description="created, updated (a new version) or unchanged.")


REVIEW_SCHEMAS: dict[str, type[BaseModel]] = {
    m.__name__: m for m in (SuggestIn, SuggestOut, SuggestionOut, ReviewCreate, ReviewItemOut, ReviewPage,
                            ReviewConfirm, ReviewReject, ConfirmOut)
}

REVIEW_LIST_PARAMS: tuple[QueryParam, ...] = (
    enum_param("status", "Only items in this state.", [s.value for s in ReviewStatus]),
    int_param("limit", f"Page size, 1-{MAX_PAGE_SIZE}.", minimum=1, maximum=MAX_PAGE_SIZE, default=50),
    int_param("offset", "Number of items to skip.", minimum=0, default=0),
)


async def _suggest(request: web.Request, body: SuggestIn) -> SuggestionResult:
    settings = request.app[settings_key]
    record = body.model_dump(exclude_none=True, exclude={"city"}, mode="json")
    ctx: ValidationContext = request_context(request)
    # reading a long text takes tens of milliseconds: off the event loop
    return await asyncio.to_thread(
        suggest_policy, record, ref=request.app[refdata_key], city=body.city or settings.intake_city,
        min_confidence=settings.intake_min_confidence, ctx=ctx,
    )


def _result_json(result: SuggestionResult) -> dict[str, Any]:
    return {"record": result.record, "suggestions": [s.to_json() for s in result.suggestions]}


def _item_out(item: dict[str, Any]) -> dict[str, Any]:
    out = dict(item)
    for key in ("created_at", "decided_at"):
        if out.get(key) is not None:
            out[key] = local_iso(out[key])
    return out


async def suggest(request: web.Request) -> web.Response:
    body = await read_model(request, SuggestIn)
    return json_response(_result_json(await _suggest(request, body)))


async def create_item(request: web.Request) -> web.Response:
    staff = staff_member(request)
    body = await read_model(request, ReviewCreate)
    result = await _suggest(request, body)
    async with transaction(request) as session:
        queue = ReviewQueue(session)
        item_id = await queue.add(title=body.title, text=body.text, result=result, origin="paste",
                                  created_by=staff, url=body.url)
        item = await queue.get(item_id)
    return json_response(_item_out(item), status=201, headers={"Location": f"/api/v1/review/{item_id}"})


async def list_items(request: web.Request) -> web.Response:
    q = parse_query(request, REVIEW_LIST_PARAMS)
    async with transaction(request) as session:
        items, total = await ReviewQueue(session).list(status=q["status"], limit=q["limit"], offset=q["offset"])
    return json_response({"items": [_item_out(i) for i in items], "total": total, "limit": q["limit"],
                          "offset": q["offset"]})


async def get_item(request: web.Request) -> web.Response:
    async with transaction(request) as session:
        item = await ReviewQueue(session).get(request.match_info["id"])
    return json_response(_item_out(item))


async def confirm_item(request: web.Request) -> web.Response:
    staff = staff_member(request)
    body = await read_model(request, ReviewConfirm)
    item_id = request.match_info["id"]
    item, policy, outcome, version = await request.app[service_key].confirm_review(
        item_id, staff=staff, decisions=body.decisions, fields=body.fields
    )
    return json_response({"item": _item_out(item), "policy_id": policy.id, "version": version, "outcome": outcome})


async def reject_item(request: web.Request) -> web.Response:
    staff = staff_member(request)
    body = await read_model(request, ReviewReject)
    item_id = request.match_info["id"]
    async with transaction(request) as session:
        queue = ReviewQueue(session)
        await queue.reject(item_id, staff=staff, reason=body.reason)
        item = await queue.get(item_id)
    return json_response(_item_out(item))
