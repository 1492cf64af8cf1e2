"""Matching: who qualifies for a policy (the staff preview), and which open policies fit a profile
(惠企政策"指尖查").  Answers come from the match index (:class:`policy_push.matching.MatchService`).

Both need the API token.  A match list says who qualifies, and for resident policies that says
who receives 低保, who is disabled or unemployed: personal data even without a name.  A
profile's policies describe that one enterprise or person.  The answers carry profile ids and
the reasons (the profile's values the criteria looked at), never names or contact details.

Writes reach the index through the service (``policy_push.service``); a profile asked for before the
index heard of it (written by another process a moment ago) is caught up from the change feed first.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from policy_push.domain import ValidationContext, local_today, parse_policy
from policy_push.errors import Conflict, HeldByAnotherShard, InvalidInput, NotFound
from policy_push.matching import MatchService
from policy_push.matching.fanout import PROFILE_POLICIES_PATH, ShardRouter
from policy_push.storage import profile_repository
from policy_push.subscribers.for_me import policies_for_me_encoded

from ..auth import check_service_token
from ..bodies import encode_json, json_bytes_response, json_response, read_json
from ..keys import cipher_key, match_service_key, service_key, shard_router_key
from ..params import MAX_PAGE_SIZE, QueryParam, enum_param, int_param, parse_query
from ._common import stored_policy, transaction

__all__ = [
    "MATCH_PARAMS",
    "MATCH_SCHEMAS",
    "PROFILE_POLICY_PARAMS",
    "enterprise_policies",
    "home_answer",
    "home_me_policies",
    "home_profile_policies",
    "policy_matches",
    "profile_policies",
    "resident_policies",
    "shard_part",
]

log = logging.getLogger("policy_push.web")


# -- response shapes (registered with the OpenAPI schemas by the routes table) ------------------
class _Out(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class MatchRecordOut(_Out):
    policy_id: str
    profile_id: str
    eligible: bool = Field(description="Every criterion holds. False: some field is unknown (see `missing`).")
    score: float = Field(description="TF-IDF cosine of policy and profile text, 0..1; ranks the eligible.")
    reasons: list[str] = Field(description="One line per criterion, in Chinese, naming the profile's value.")
    missing: list[str] = Field(description="Fields the profile leaves empty that a criterion needs.")


class MatchCounts(_Out):
    eligible: int
    unknown: int = Field(description="May qualify: no criterion fails, but some field is missing.")
    profiles: int = Field(description="Every profile of the policy's audience.")


class HistogramBin(_Out):
    from_: float = Field(alias="from")
    to: float
    count: int


class PolicyMatchPage(_Out):
    policy_id: str
    date: dt.date = Field(description="The day matched on (ages, years since founding).")
    counts: MatchCounts
    histogram: list[HistogramBin] = Field(description="Scores of every eligible profile in 10 buckets of 0.1.")
    no_criteria: bool = Field(description="The policy has no criteria: every profile of its audience is eligible.")
    note: str | None = Field(None, description="Said plainly when the list is every profile of the audience.")
    items: list[MatchRecordOut] = Field(description="Eligible best score first, then those that may qualify.")
    total: int
    limit: int
    offset: int


class ProfilePolicies(_Out):
    profile_id: str
    audience: str
    date: dt.date
    items: list[MatchRecordOut] = Field(description="Open policies the profile qualifies for, best score first.")
    may_qualify: list[MatchRecordOut] = Field(description="Open policies it may qualify for once `missing` is filled in.")


class ShardAsk(_Out):
    policy: dict[str, Any] = Field(description="The policy document (formats.md), as the asking node holds it.")
    date: dt.date = Field(description="The day to match on.")
    top_k: int | None = Field(None, ge=1, description="Cut each list at this many records; null: no cut.")
    min_score: float | None = Field(None, ge=0, le=1, description="Leave out eligible profiles scoring below this.")


class ProfileAsk(_Out):
    audience: str = Field(description="enterprise or resident.")
    profile_id: str = Field(description="The profile's id (in the body, not the URL).")
    date: dt.date = Field(description="The day to match on (the asking node's).")
    limit: int = Field(ge=1, le=MAX_PAGE_SIZE, description="At most this many policies in each list.")


class ShardPart(_Out):
    shard: str = Field(description="The shard that answered.")
    eligible: list[tuple[float, MatchRecordOut, str | None, list[str]]] = Field(
        description="[exact score, record, the line a message may quote, the lines a public page may show], best first.")
    unknown: list[tuple[float, MatchRecordOut, str | None, list[str]]] = Field(
        description="The same, for those that may qualify (no message line).")
    counts: MatchCounts
    histogram: list[int] = Field(description="Eligible profiles per score bucket of 0.1.")
    no_criteria: bool
    eligible_total: int = Field(description="Eligible at or above min_score, before the cut.")
    map: str | None = Field(description="Fingerprint of the shard map the answering node's profiles were taken from; "
                            "null while it is taking up a changed map (the asking node then answers 503).")


MATCH_SCHEMAS: dict[str, type[BaseModel]] = {m.__name__: m for m in (PolicyMatchPage, ProfileAsk, ProfilePolicies, ShardAsk, ShardPart)}


# -- query parameters ---------------------------------------------------------------------------
def _date(raw: str) -> dt.date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise ValueError(f"date must be YYYY-MM-DD; got {raw[:40]!r}")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"date {raw[:40]!r} is not a real day") from None


def _score(raw: str) -> float:
    # any number the document's `number` allows (1e-3, 0.5, 1.0E0), but no nan, inf or other Python spellings
    if not re.fullmatch(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", raw.strip()) or not 0.0 <= float(raw) <= 1.0:
        raise ValueError(f"min_score must be a number from 0 to 1; got {raw[:40]!r}")
    return float(raw)


_DATE = QueryParam("date", "The day to match on, YYYY-MM-DD (default: today in Asia/Shanghai).",
                   {"type": "string", "format": "date"}, _date)
_LIMIT = int_param("limit", f"Page size, 1-{MAX_PAGE_SIZE}.", minimum=1, maximum=MAX_PAGE_SIZE, default=50)

MATCH_PARAMS: tuple[QueryParam, ...] = (
    enum_param("eligible", "`true`: only the eligible; `false`: only those that may qualify (missing data). "
               "Default both, eligible first.", ("true", "false")),
    _LIMIT,
    int_param("offset", "Number of items to skip.", minimum=0, default=0),
    QueryParam("min_score", "Leave out eligible profiles scoring below this (0-1).",
               {"type": "number", "minimum": 0, "maximum": 1}, _score),
    _DATE,
)
PROFILE_POLICY_PARAMS: tuple[QueryParam, ...] = (
    _DATE,
    int_param("limit", f"At most this many policies in each list, 1-{MAX_PAGE_SIZE}.", minimum=1,
              maximum=MAX_PAGE_SIZE, default=50),
)


# -- handlers -----------------------------------------------------------------------------------
def _service(request: web.Request) -> MatchService:
    return request.app[match_service_key]


async def policy_matches(request: web.Request) -> web.Response:
    query = parse_query(request, MATCH_PARAMS)
    policy_id = request.match_info["id"]
    stored = await stored_policy(request, policy_id)
    on: dt.date = query["date"] or local_today()
    limit, offset = query["limit"], query["offset"]
    # each list cut at offset + limit is enough for any page of either list or of both
    # on a shard node the service asks the other shards holding the policy's regions (matching.fanout)
    result = await _service(request).match_policy(stored.policy, on=on, top_k=offset + limit, min_score=query["min_score"])
    if query["eligible"] == "true":
        rows, total = result.eligible, result.eligible_total
    elif query["eligible"] == "false":
        rows, total = result.unknown, result.counts["unknown"]
    else:
        rows, total = result.eligible + result.unknown, result.eligible_total + result.counts["unknown"]
    note = None
    if result.no_criteria:
        note = (f"这项政策没有设定条件：全部 {result.counts['profiles']} 个{_AUDIENCE_CN[stored.policy.audience]}"
                "都符合，仅按文本相关度排序。 The policy has no criteria: every profile of its audience is eligible, "
                "ranked by text similarity alone.")
    body = {
        "policy_id": policy_id,
        "date": on.isoformat(),
        "counts": result.counts,
        "histogram": result.histogram,
        "no_criteria": result.no_criteria,
        "note": note,
        "items": rows[offset : offset + limit],
        "total": total,
        "limit": limit,
        "offset": offset,
    }
    return json_response(body)


_AUDIENCE_CN = {"enterprise": "企业", "resident": "居民"}


def _this_shard(request: web.Request) -> ShardRouter:
    """The router of the shard this node holds, for a request between shard nodes naming it."""
    check_service_token(request)
    router = request.app.get(shard_router_key)
    name = request.match_info["name"]
    if router is None:
        raise Conflict(f"this node holds every profile, not shard {name[:64]!r} (POLICY_PUSH_SHARD is empty)", loc=["path", "name"])
    if name != router.name:
        raise Conflict(f"this node holds shard {router.name!r}, not {name[:64]!r}: check the shard map's URLs", loc=["path", "name"])
    return router


async def shard_part(request: web.Request) -> web.Response:
    """This shard's part of a policy's match list, for the shard node that fans the policy out."""
    router = _this_shard(request)
    ask = await read_json(request)
    if not isinstance(ask, dict) or not isinstance(ask.get("policy"), dict):
        raise InvalidInput("the body must be {\"policy\": {...}, \"date\": ..., \"top_k\": ..., \"min_score\": ...}", loc=["body"])
    # the asking node read it from the database, or is drafting from a stored version
    policy = parse_policy(ask["policy"], ValidationContext(trusted=True))
    try:
        on = _date(str(ask.get("date") or local_today().isoformat()))
        top_k = ask.get("top_k")
        if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
            raise ValueError(f"top_k must be a whole number of at least 1 or null; got {str(top_k)[:40]!r}")
        min_score = None if ask.get("min_score") is None else _score(str(ask["min_score"]))
    except ValueError as exc:
        raise InvalidInput(str(exc), loc=["body"]) from None
    part = await router.part(policy, on=on, top_k=top_k, min_score=min_score)
    return json_response(part)


async def _home_ask(request: web.Request) -> tuple[str, str, dt.date, int]:
    """audience, profile id, day and limit of a profile's policies asked of its home shard."""
    ask = await read_json(request)
    try:
        if not isinstance(ask, dict):
            raise ValueError("the body must be {\"audience\": ..., \"profile_id\": ..., \"date\": ..., \"limit\": ...}")
        audience, profile_id, limit = ask.get("audience"), ask.get("profile_id"), ask.get("limit")
        if audience not in ("enterprise", "resident"):
            raise ValueError(f"audience must be enterprise or resident; got {str(audience)[:40]!r}")
        if not isinstance(profile_id, str) or not 0 < len(profile_id) <= 128:
            raise ValueError("profile_id must be a string of 1 to 128 characters")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}; got {str(limit)[:40]!r}")
        on = _date(str(ask.get("date")))
    except ValueError as exc:
        raise InvalidInput(str(exc), loc=["body"]) from None
    return audience, profile_id, on, limit


async def home_profile_policies(request: web.Request) -> web.Response:
    """A profile's policies as staff see them, asked by another shard node of the one holding it; never
    forwarded again (a profile this node does not hold is its 409)."""
    _this_shard(request)
    audience, profile_id, on, limit = await _home_ask(request)
    return json_response(await _profile_body(request, audience, profile_id, on=on, limit=limit))


async def home_me_policies(request: web.Request) -> web.Response:
    """``GET /api/v1/me/policies``'s answer for a profile this node holds, asked by another shard node."""
    _this_shard(request)
    audience, profile_id, on, limit = await _home_ask(request)
    body = await policies_for_me_encoded(_service(request), audience, profile_id, on=on, limit=limit, encode=encode_json,
                                         catch_up=request.app[service_key].follow_changes)  # fmt: skip
    return json_bytes_response(body)


async def home_answer(request: web.Request, path: str, audience: str, profile_id: str, *, on: dt.date,
                      limit: int) -> bytes | None:
    """The body the node of the shard holding the profile answers (``path``: one of ``fanout``'s), as it
    came; None when this node holds no shard or is the profile's home."""
    router = request.app.get(shard_router_key)
    if router is None:
        return None
    return await router.ask_home(path, audience, profile_id, on=on, limit=limit)


async def _in_database(request: web.Request, audience: str, profile_id: str) -> bool:
    async with transaction(request) as session:
        return await profile_repository(audience, session, request.app[cipher_key]).get(profile_id) is not None


async def _profile_body(request: web.Request, audience: str, profile_id: str, *, on: dt.date, limit: int) -> dict[str, Any]:
    records = await _service(request).policies_for_profile(audience, profile_id, on=on, top_k=limit, include_unknown=True)
    return {
        "profile_id": profile_id,
        "audience": audience,
        "date": on.isoformat(),
        "items": [r for r in records if r["eligible"]],
        "may_qualify": [r for r in records if not r["eligible"]],
    }


async def _profile_answer(request: web.Request, audience: str, profile_id: str) -> web.Response:
    query = parse_query(request, PROFILE_POLICY_PARAMS)
    on: dt.date = query["date"] or local_today()
    try:
        body = await _profile_body(request, audience, profile_id, on=on, limit=query["limit"])
    except HeldByAnotherShard:
        # another shard's region: the node holding it answers (matching.fanout)
        answer = await home_answer(request, PROFILE_POLICIES_PATH, audience, profile_id, on=on, limit=query["limit"])
        if answer is None:
            raise
        return json_bytes_response(answer)
    return json_response(body)


async def _find(request: web.Request, audiences: tuple[str, ...], profile_id: str) -> list[str]:
    """Audiences holding the id; a profile stored by another process a moment ago (a CLI import while
    the server runs) is caught up from the change feed first rather than reported missing."""
    found = [a for a in await _service(request).audiences_of(profile_id) if a in audiences]
    if found:
        return found
    stored = [a for a in audiences if await _in_database(request, a, profile_id)]
    if stored:
        await request.app[service_key].follow_changes()
    return stored


async def profile_policies(request: web.Request) -> web.Response:
    profile_id = request.match_info["id"]
    found = await _find(request, ("enterprise", "resident"), profile_id)
    if not found:
        raise NotFound.of("enterprise or resident", profile_id)
    if len(found) > 1:
        raise Conflict(
            f"{profile_id[:80]!r} is both an enterprise and a resident id; ask "
            f"/api/v1/enterprises/{profile_id[:80]}/policies or /api/v1/residents/{profile_id[:80]}/policies",
            loc=["path", "id"],
        )
    return await _profile_answer(request, found[0], profile_id)


async def _audience_policies(request: web.Request, audience: str) -> web.Response:
    profile_id = request.match_info["id"]
    if not await _find(request, (audience,), profile_id):
        raise NotFound.of(audience, profile_id)
    return await _profile_answer(request, audience, profile_id)


async def enterprise_policies(request: web.Request) -> web.Response:
    """``GET /api/v1/enterprises/{id}/policies``: no ambiguity about the kind of id."""
    return await _audience_policies(request, "enterprise")


async def resident_policies(request: web.Request) -> web.Response:
    return await _audience_policies(request, "resident")
