"""``/api/v1/me``: the app's API for the people themselves (issue 12).

Authenticated by a subscriber session token (``Authorization: Bearer <token>`` from
``POST /api/v1/me/sessions``), never by the staff API token: these routes are ``auth=False`` in the
routes table, and every handler here calls :func:`signed_in`. Everything a handler reads or writes is
found from the session's account (``Accounts.profile_of``): an id of another person's profile is a
404, as if it did not exist.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from policy_push.domain import local_today
from policy_push.domain.profiles import PHONE_PATTERN
from policy_push.errors import HeldByAnotherShard, InvalidInput, NotAuthenticated, NotFound
from policy_push.matching.fanout import ME_POLICIES_PATH
from policy_push.subscribers import preferences as prefs
from policy_push.subscribers.for_me import policies_for_me_encoded
from policy_push.subscribers.rights import erase_account, export_account
from policy_push.subscribers.sessions import Signed, end_sessions, find_session, session_profiles
from policy_push.subscribers.signin import Subscribers

from ..bodies import encode_json, json_bytes_response, json_response, read_json
from ..keys import (
    engine_key,
    match_service_key,
    service_key,
    settings_key,
    subscribers_key,
)
from ..params import QueryParam, enum_param, int_param, parse_query
from ._common import staff_member, transaction
from .matches import home_answer

__all__ = ["DECISIONS", "ME_PARAMS", "ME_POLICY_PARAMS", "ME_SCHEMAS", "signed_in"]


def _date(raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"date must be YYYY-MM-DD, got {raw[:20]!r}") from None


ME_PARAMS: tuple[QueryParam, ...] = (
    enum_param("profile_kind", "Which of your profiles (when you speak for more than one).", ("enterprise", "resident")),
    QueryParam("profile_id", "Which of your profiles (when you speak for more than one).", {"type": "string", "maxLength": 64},
               lambda s: s[:64]),
)  # fmt: skip
ME_POLICY_PARAMS: tuple[QueryParam, ...] = (
    *ME_PARAMS,
    QueryParam("date", "The day to ask for (YYYY-MM-DD); today in Asia/Shanghai by default.", {"type": "string", "format": "date"}, _date),
    int_param("limit", "Most policies in each list.", minimum=1, maximum=100, default=20),
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


#: the words of ``/contacts/{id}/{decision}``
DECISIONS = ("approve", "refuse")


class MeCodeIn(_Model):
    phone: str = Field(description="11-digit mainland mobile number; a code is sent to it by SMS.",
                       json_schema_extra={"pattern": PHONE_PATTERN})


class MeCodeOut(_Model):
    sent: bool
    expires_in_s: int


class MeSessionIn(_Model):
    phone: str = Field(json_schema_extra={"pattern": PHONE_PATTERN})
    code: str = Field(description="The 6 digits of the SMS.", json_schema_extra={"pattern": "^[0-9]{6}$"})


class MeSessionOut(_Model):
    token: str = Field(description="Send as `Authorization: Bearer <token>` to /api/v1/me/*. Shown once.")
    expires_at: str
    account_id: str
    created: bool = Field(description="True when this sign-in made the account (sign-up).")


class MeOut(_Model):
    account_id: str
    phone: str
    links: list[dict[str, Any]]
    pending_contacts: list[dict[str, Any]]


class MeLinkOut(_Model):
    link_id: int
    profile_kind: str
    profile_id: str
    role: str
    state: str


class MePolicies(_Model):
    profile_kind: str
    profile_id: str
    date: str
    items: list[dict[str, Any]]
    may_qualify: list[dict[str, Any]]


class MePreferences(_Model):
    channels: list[str] | None = None
    categories: list[str] | None = None
    weekly_max: int | None = None


class MeConsentIn(_Model):
    given: bool = Field(description="true to give consent to policy messages, false to withdraw it.")
    text_version: str = Field(description="The version of the consent wording the person was shown.")
    channel: str = Field("app", description="Where: web, app, sms or wechat.")


class PendingContacts(_Model):
    items: list[dict[str, Any]] = Field(description="Pending requests, oldest first: link_id, enterprise, masked phone, "
                                        "whether the enterprise has a first contact who could decide.")


class MeConsentOut(_Model):
    consent: bool
    text_version: str
    channel: str
    at: str


class MeErased(_Model):
    erased: bool
    profiles_deleted: list[str]


class MeExport(_Model):
    account: dict[str, Any]
    profiles: list[dict[str, Any]]
    consents: list[dict[str, Any]]


class MeProfile(_Model):
    profile_kind: str
    profile_id: str
    profile: dict[str, Any]


ME_SCHEMAS: dict[str, type[BaseModel]] = {m.__name__: m for m in (
    MeCodeIn, MeCodeOut, MeSessionIn, MeSessionOut, MeOut, MeLinkOut, MePolicies, MePreferences, MeConsentIn, MeExport,
    MeProfile, MeConsentOut, MeErased, PendingContacts,
)}  # fmt: skip


def _subs(request: web.Request) -> Subscribers:
    return request.app[subscribers_key]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _no_session() -> NotAuthenticated:
    return NotAuthenticated("this session has ended or the token is not valid; sign in again", loc=["header", "Authorization"])


def _bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("sign in first: send 'Authorization: Bearer <token>' from POST /api/v1/me/sessions",
                               loc=["header", "Authorization"])  # fmt: skip
    return token.strip()


async def signed_in(request: web.Request) -> Signed:
    """The session of the request's subscriber token; 401 without a live one."""
    token = _bearer(request)
    async with transaction(request) as session:
        found = await find_session(session, token, now=_now())
    if found is None:
        raise _no_session()
    return found


def client_address(request: web.Request) -> str:
    return request.remote or ""


async def _link(request: web.Request, who: Signed) -> Any:
    q = parse_query(request, ME_PARAMS)
    async with transaction(request) as session:
        return await _subs(request).accounts.profile_of(session, who.account_id, q["profile_kind"], q["profile_id"])


def _field(data: Any, name: str) -> Any:
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object", loc=["body"])
    if name not in data:
        raise InvalidInput(f"{name} is required", loc=["body", name])
    return data[name]


# ---- sign-in ------------------------------------------------------------------------------------
async def request_code(request: web.Request) -> web.Response:
    data = await read_json(request)
    ttl = await _subs(request).request_code(_field(data, "phone"), client_address(request))
    return json_response({"sent": True, "expires_in_s": ttl}, status=202)


async def create_session(request: web.Request) -> web.Response:
    data = await read_json(request)
    account_id, token, expires, created = await _subs(request).sign_in(_field(data, "phone"), _field(data, "code"), client="app")
    return json_response({"token": token, "expires_at": expires.isoformat(), "account_id": account_id, "created": created}, status=201)


async def end_session(request: web.Request) -> web.Response:
    who = await signed_in(request)
    async with transaction(request) as session:
        await end_sessions(session, who.account_id, now=_now(), only=who.session_id)
    return web.Response(status=204)


# ---- the account and its profiles ----------------------------------------------------------------
async def me(request: web.Request) -> web.Response:
    who = await signed_in(request)
    accounts = _subs(request).accounts
    async with transaction(request) as session:
        phone = await accounts.phone_of(session, who.account_id)
        links = await accounts.links(session, who.account_id)
        pending = await accounts.pending_for(session, who.account_id)
    return json_response({"account_id": who.account_id, "phone": phone, "links": [x.as_json() for x in links],
                          "pending_contacts": pending})  # fmt: skip


async def put_resident(request: web.Request) -> web.Response:
    who = await signed_in(request)
    link = await _subs(request).accounts.save_resident(who.account_id, await read_json(request))
    return json_response(link.as_json())


async def put_enterprise(request: web.Request) -> web.Response:
    who = await signed_in(request)
    link = await _subs(request).accounts.save_enterprise(who.account_id, await read_json(request))
    return json_response(link.as_json(), status=202 if link.state == "pending" else 200)


async def get_profile(request: web.Request) -> web.Response:
    from policy_push.storage import profile_repository

    who = await signed_in(request)
    link = await _link(request, who)
    async with transaction(request) as session:
        profile = await profile_repository(link.profile_kind, session, _subs(request).accounts.cipher).get(link.profile_id)
    return json_response({"profile_kind": link.profile_kind, "profile_id": link.profile_id,
                          "profile": profile.to_json() if profile else None})  # fmt: skip


async def my_policies(request: web.Request) -> web.Response:
    # the hot path (the app's 指尖查): the session and its profiles in one query, then the match index
    q = parse_query(request, ME_POLICY_PARAMS)
    # a bare connection: no ORM session to set up and tear down for one Core query
    async with request.app[engine_key].connect() as conn:
        who, links = await session_profiles(conn, _bearer(request), now=_now())
    if who is None:
        raise _no_session()
    kind, pid = q["profile_kind"], q["profile_id"]
    found = next(((k, i) for k, i in links if (kind is None or k == kind) and (pid is None or i == pid)), None)
    if found is None:
        if pid is not None:
            raise NotFound.of(kind or "profile", pid, loc=["query", "profile_id"])
        raise NotFound("you have no profile yet: register as a resident or link your enterprise first", loc=["path"])
    on: dt.date = q["date"] or local_today()
    try:
        body = await policies_for_me_encoded(
            request.app[match_service_key], found[0], found[1], on=on, limit=q["limit"], encode=encode_json,
            catch_up=request.app[service_key].follow_changes,
        )  # fmt: skip
    except HeldByAnotherShard:
        # held by another shard: its node answers, the same bytes (matching.fanout)
        answer = await home_answer(request, ME_POLICIES_PATH, found[0], found[1], on=on, limit=q["limit"])
        if answer is None:
            raise
        return json_bytes_response(answer)
    return json_bytes_response(body)


# ---- second contacts of an enterprise --------------------------------------------------------------
def _approve(request: web.Request) -> bool:
    """The path's decision: ``approve`` or ``refuse``; anything else is a 422, never a silent refusal."""
    decision = request.match_info["decision"]
    if decision not in ("approve", "refuse"):
        raise InvalidInput("the decision is approve or refuse", loc=["path", "decision"])
    return decision == "approve"


def _link_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidInput("the contact request id is a number", loc=["path", "id"])
    return int(raw)


def _approve(request: web.Request) -> bool:
    """The path's decision; anything but the two words is refused (a misspelt ``aprove`` used to refuse the contact)."""
    decision = request.match_info["decision"]
    if decision not in DECISIONS:
        raise InvalidInput(f"the decision is one of {', '.join(DECISIONS)}; got {decision[:40]!r}", loc=["path", "decision"])
    return decision == "approve"


async def decide_contact(request: web.Request) -> web.Response:
    who = await signed_in(request)
    approve = _approve(request)
    async with transaction(request) as session:
        link = await _subs(request).accounts.decide(session, _link_id(request), approve=approve, by_account=who.account_id, staff=None)
    return json_response(link.as_json())


async def staff_pending_contacts(request: web.Request) -> web.Response:
    async with transaction(request) as session:
        items = await _subs(request).accounts.pending_all(session)
    return json_response({"items": items})


async def staff_decide_contact(request: web.Request) -> web.Response:
    staff = staff_member(request)
    approve = _approve(request)
    async with transaction(request) as session:
        link = await _subs(request).accounts.decide(session, _link_id(request), approve=approve, by_account=None, staff=staff)
    return json_response(link.as_json())


# ---- preferences, consent ----------------------------------------------------------------------------
async def _preferences(request: web.Request, link: Any) -> web.Response:
    async with transaction(request) as session:
        body = await prefs.preferences_of(session, _subs(request).accounts, link)
    return json_response(body)


async def get_preferences(request: web.Request) -> web.Response:
    return await _preferences(request, await _link(request, await signed_in(request)))


async def put_preferences(request: web.Request) -> web.Response:
    who = await signed_in(request)
    link = await _link(request, who)
    await prefs.set_preferences(_subs(request).accounts, link, who.account_id, await read_json(request))
    return await _preferences(request, link)


async def post_consent(request: web.Request) -> web.Response:
    who = await signed_in(request)
    link = await _link(request, who)
    data = await read_json(request)
    given = _field(data, "given")
    if not isinstance(given, bool):
        raise InvalidInput("given is true (give consent) or false (withdraw it)", loc=["body", "given"])
    version = data.get("text_version") or request.app[settings_key].consent_text_version
    body = await prefs.record_consent(_subs(request).accounts, link, who.account_id, give=given, text_version=str(version),
                                      channel=str(data.get("channel", "app")))  # fmt: skip
    return json_response(body, status=201)


# ---- data rights --------------------------------------------------------------------------------------
async def export(request: web.Request) -> web.Response:
    who = await signed_in(request)
    body = await export_account(_subs(request).accounts, who.account_id)
    return json_response(body, headers={"Content-Disposition": 'attachment; filename="my-data.json"', "Cache-Control": "no-store"})


async def erase(request: web.Request) -> web.Response:
    who = await signed_in(request)
    body = await erase_account(_subs(request).accounts, who.account_id)
    return json_response(body)


async def bind_wechat(request: web.Request) -> web.Response:
    who = await signed_in(request)
    subs = _subs(request)
    await subs.wechat.send_link(who.account_id, subs.client_hash(client_address(request)))
    return json_response({"sent": True, "expires_in_s": 1800}, status=202)
