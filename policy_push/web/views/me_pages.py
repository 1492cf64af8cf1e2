"""``/me``: the mobile pages for the people themselves (sign in, policies for me, my profile, push
settings and consent, my data). Plain Chinese, one column for a 390 px phone, large-text and
high-contrast modes, every control labelled and reachable by keyboard, no step with a time limit
(a code that expired is simply asked for again).

The session is the ``pp_sub`` cookie (``subscribers.sessions.CookieSealer``): HttpOnly, SameSite=Lax,
Secure when the service is reached over HTTPS. Every form of a signed-in page carries a CSRF token
derived from the session (a keyed hash of its token), checked in constant time. Errors a person can
make are shown on the page, in words, with the status of the API's answer.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy
from pydantic import BaseModel, ConfigDict, Field

from policy_push.domain import local_today
from policy_push.errors import HeldByAnotherShard, InvalidInput, NotFound, PolicyPushError
from policy_push.matching.fanout import ME_POLICIES_PATH
from policy_push.security import mask_contact
from policy_push.storage import profile_repository
from policy_push.subscribers import preferences as prefs
from policy_push.subscribers.for_me import policies_for_me
from policy_push.subscribers.rights import erase_account, export_account
from policy_push.subscribers.sessions import COOKIE_NAME, SESSION_TTL, Signed, end_sessions, find_session
from policy_push.subscribers.signin import Subscribers

from ..bodies import json_response, read_form
from ..keys import match_service_key, service_key, settings_key, subscribers_key
from ..middlewares import status_of
from ..pages import render_page
from ._common import transaction
from .matches import home_answer
from .me_profile_form import FIELDS, form_record, form_values, split_list

__all__ = ["CONSENT_TEXT", "ME_PAGE_SCHEMAS"]

CONSENT_TEXT = (
    "我同意政策找人服务根据我填写的资料，为我匹配政策，并通过我选择的方式（短信、微信、App）告诉我可能符合的政策。"
    "我的资料只用于匹配政策，不会公开。"
)
#: policies in each list of the home page (the API's default too)
_POLICIES_SHOWN = 20
_CHANNELS = [("sms", "短信"), ("wechat", "微信"), ("app", "App 通知")]


class MeSignInForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str = Field(description="11-digit mainland mobile number.")
    code: str | None = Field(None, description="The 6 digits of the SMS (sign-in only).")


class MeForm(BaseModel):
    """A signed-in page's form: the fields of its page, and the page's CSRF token."""

    model_config = ConfigDict(extra="allow")
    csrf: str = Field(description="The token the page put in the form.")


ME_PAGE_SCHEMAS: dict[str, type[BaseModel]] = {"MeSignInForm": MeSignInForm, "MeForm": MeForm}


@dataclass(slots=True)
class PageView:
    signed_in: bool = False
    big: bool = False
    contrast: bool = False
    error: str = ""
    notice: str = ""


def _subs(request: web.Request) -> Subscribers:
    return request.app[subscribers_key]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name)
    if raw in ("0", "1"):
        return raw == "1"
    return request.cookies.get(f"pp_{name}") == "1"


def _secure(request: web.Request) -> bool:
    return request.secure or request.app[settings_key].public_base_url.startswith("https://")


def _page(request: web.Request, template: str, *, status: int = 200, view: PageView | None = None, **ctx: Any) -> web.Response:
    view = view or PageView()
    view.big, view.contrast = _flag(request, "big"), _flag(request, "contrast")
    resp = render_page(template, status=status, view=view, **ctx)
    for name in ("big", "contrast"):  # the display choice follows the person from page to page
        if request.query.get(name) in ("0", "1"):
            resp.set_cookie(f"pp_{name}", request.query[name], max_age=365 * 86400, httponly=True, samesite="Lax",
                            secure=_secure(request), path="/me")  # fmt: skip
    resp.headers["Cache-Control"] = "no-store"
    return resp


async def _who(request: web.Request) -> tuple[Signed, str] | None:
    raw = request.cookies.get(COOKIE_NAME, "")
    token = _subs(request).sealer.open(raw, _now()) if raw else None
    if token is None:
        return None
    async with transaction(request) as session:
        found = await find_session(session, token, now=_now())
    return None if found is None else (found, token)


def _csrf(request: web.Request, token: str) -> str:
    return _subs(request).runtime.cipher.lookup_hash("subscriber_csrf", token)[:32]


async def _signed_form(request: web.Request) -> tuple[Signed, str, MultiDictProxy[Any]]:
    """A signed-in page's POST: the session and the form, its CSRF token checked; else to the sign-in page."""
    who = await _who(request)
    if who is None:
        raise web.HTTPSeeOther("/me")
    form = await read_form(request)
    if not hmac.compare_digest(str(form.get("csrf", "")), _csrf(request, who[1])):
        raise InvalidInput("this form is out of date; open the page again and resend it", loc=["form", "csrf"])
    return who[0], who[1], form


def _signed_view(**kw: Any) -> PageView:
    return PageView(signed_in=True, **kw)


# ---- sign in ----------------------------------------------------------------------------------------
async def me_home(request: web.Request) -> web.StreamResponse:
    who = await _who(request)
    if who is None:
        return _page(request, "me_sign_in.html", phone="")
    signed, token = who
    accounts = _subs(request).accounts
    kind, _, pid = request.query.get("p", "").partition(":")
    async with transaction(request) as session:
        links = [x for x in await accounts.links(session, signed.account_id) if x.state == "active"]
        pending = await accounts.pending_for(session, signed.account_id)
        try:
            link = await accounts.profile_of(session, signed.account_id, kind or None, pid or None) if links else None
        except NotFound:
            link = links[0]
    answer = None
    if link is not None:
        on = local_today()
        try:
            answer = await policies_for_me(request.app[match_service_key], link.profile_kind, link.profile_id, on=on,
                                           limit=_POLICIES_SHOWN, catch_up=request.app[service_key].follow_changes)  # fmt: skip
        except HeldByAnotherShard:
            # held by another shard: its node answers what the API would (the same fields page and limit)
            raw = await home_answer(request, ME_POLICIES_PATH, link.profile_kind, link.profile_id, on=on, limit=_POLICIES_SHOWN)
            if raw is None:
                raise
            answer = json.loads(raw)
    notice = {"profile": "资料已保存，下面是重新查找的结果。", "approved": "已处理。"}.get(request.query.get("done", ""), "")
    return _page(request, "me_home.html", view=_signed_view(notice=notice), answer=answer, links=links, pending=pending,
                 csrf=_csrf(request, token))  # fmt: skip


async def me_code(request: web.Request) -> web.Response:
    form = await read_form(request)
    phone = str(form.get("phone", "")).strip()
    try:
        ttl = await _subs(request).request_code(phone, request.remote or "")
    except PolicyPushError as exc:
        return _page(request, "me_sign_in.html", status=status_of(exc), view=PageView(error=_plain(exc)), phone="")
    return _page(request, "me_sign_in.html", phone=phone, masked=mask_contact(phone), minutes=ttl // 60)


async def me_sign_in(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    phone, code = str(form.get("phone", "")).strip(), str(form.get("code", "")).strip()
    try:
        _, token, expires, _ = await _subs(request).sign_in(phone, code, client="web")
    except PolicyPushError as exc:
        return _page(request, "me_sign_in.html", status=status_of(exc), view=PageView(error=_plain(exc)), phone=phone,
                     masked=mask_contact(phone), minutes=5)  # fmt: skip
    resp = web.HTTPSeeOther("/me")
    resp.set_cookie(COOKIE_NAME, _subs(request).sealer.seal(token, expires), max_age=int(SESSION_TTL.total_seconds()),
                    httponly=True, samesite="Lax", secure=_secure(request), path="/")  # fmt: skip
    raise resp


async def me_sign_out(request: web.Request) -> web.StreamResponse:
    signed, _, _ = await _signed_form(request)
    async with transaction(request) as session:
        await end_sessions(session, signed.account_id, now=_now(), only=signed.session_id)
    resp = web.HTTPSeeOther("/me")
    resp.del_cookie(COOKIE_NAME, path="/")
    raise resp


_PLAIN = {
    "too many codes": "获取验证码太频繁了，请稍后再试。",
    "the code is wrong": "验证码不对或已过期，请重新获取。",
    "too many wrong codes": "验证码错误次数太多，请一小时后再试。",
    "digits": "请输入短信里的 6 位数字验证码。",
}


def _plain(exc: PolicyPushError) -> str:
    """The error in plain Chinese where we have the words, else as the API says it."""
    for key, words in _PLAIN.items():
        if key in exc.msg:
            return words
    if exc.loc and exc.loc[-1] == "phone":
        return f"手机号不对：{exc.msg}"
    return exc.msg


# ---- profile -----------------------------------------------------------------------------------------
async def me_profile(request: web.Request) -> web.StreamResponse:
    who = await _who(request)
    if who is None:
        raise web.HTTPSeeOther("/me")
    signed, token = who
    accounts = _subs(request).accounts
    async with transaction(request) as session:
        links = [x for x in await accounts.links(session, signed.account_id) if x.state == "active"]
        kind = request.query.get("kind") or (links[0].profile_kind if links else "")
        link = next((x for x in links if x.profile_kind == kind), None)
        profile = await profile_repository(kind, session, accounts.cipher).get(link.profile_id) if link else None
    if kind not in FIELDS:
        kind = ""
    return _page(request, "me_profile.html", view=_signed_view(), kind=kind, fields=FIELDS.get(kind, ()),
                 values=form_values(profile), csrf=_csrf(request, token))  # fmt: skip


async def me_profile_post(request: web.Request) -> web.StreamResponse:
    signed, token, form = await _signed_form(request)
    kind = str(form.get("kind", ""))
    if kind not in FIELDS:
        raise InvalidInput("kind is resident or enterprise", loc=["form", "kind"])
    record = form_record(kind, form)
    accounts = _subs(request).accounts
    try:
        if kind == "resident":
            await accounts.save_resident(signed.account_id, record)
        else:
            link = await accounts.save_enterprise(signed.account_id, record)
            if link.state == "pending":
                return _page(request, "me_profile.html", view=_signed_view(
                    notice="已提交。这家企业已有联系人，需要他（或工作人员）同意后，您才能查看和修改企业资料。"),
                    kind="", fields=(), values={}, csrf=_csrf(request, token))  # fmt: skip
    except PolicyPushError as exc:
        values = {k: str(v) if not isinstance(v, list) else "、".join(v) for k, v in record.items()}
        return _page(request, "me_profile.html", status=status_of(exc), view=_signed_view(error=_plain(exc)), kind=kind,
                     fields=FIELDS[kind], values=values, csrf=_csrf(request, token))  # fmt: skip
    raise web.HTTPSeeOther("/me?done=profile")


# ---- preferences, consent -------------------------------------------------------------------------------
async def _prefs_page(request: web.Request, signed: Signed, token: str, **view: Any) -> web.Response:
    accounts = _subs(request).accounts
    async with transaction(request) as session:
        links = [x for x in await accounts.links(session, signed.account_id) if x.state == "active"]
        current = await prefs.preferences_of(session, accounts, links[0]) if links else None
    return _page(request, "me_preferences.html", view=_signed_view(**view), prefs=current, channel_labels=_CHANNELS,
                 consent_text=CONSENT_TEXT, consent_version=request.app[settings_key].consent_text_version,
                 csrf=_csrf(request, token))  # fmt: skip


async def me_preferences(request: web.Request) -> web.StreamResponse:
    who = await _who(request)
    if who is None:
        raise web.HTTPSeeOther("/me")
    return await _prefs_page(request, *who)


async def _first_link(request: web.Request, signed: Signed) -> Any:
    async with transaction(request) as session:
        return await _subs(request).accounts.profile_of(session, signed.account_id)


async def me_preferences_post(request: web.Request) -> web.StreamResponse:
    signed, token, form = await _signed_form(request)
    channels = [c for c in (str(form.get(f"channel_{i}", "")) for i in range(3)) if c]
    cats = split_list(str(form.get("categories", "")))
    raw_max = str(form.get("weekly_max", "")).strip()
    data: dict[str, Any] = {"channels": list(dict.fromkeys(channels)), "categories": cats,
                            "weekly_max": int(raw_max) if raw_max.isdigit() else None}  # fmt: skip
    try:
        await prefs.set_preferences(_subs(request).accounts, await _first_link(request, signed), signed.account_id, data)
    except PolicyPushError as exc:
        return await _prefs_page(request, signed, token, error=_plain(exc))
    return await _prefs_page(request, signed, token, notice="设置已保存。")


async def me_consent_post(request: web.Request) -> web.StreamResponse:
    signed, token, form = await _signed_form(request)
    give = str(form.get("given", "")) == "1"
    await prefs.record_consent(_subs(request).accounts, await _first_link(request, signed), signed.account_id, give=give,
                               text_version=request.app[settings_key].consent_text_version, channel="web")  # fmt: skip
    return await _prefs_page(request, signed, token, notice="已开启推送。" if give else "已关闭推送，我们不会再给您发政策通知。")


# ---- contacts, data rights ---------------------------------------------------------------------------------
async def me_contact_post(request: web.Request) -> web.StreamResponse:
    signed, _, form = await _signed_form(request)
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound.of("contact request", raw[:40])
    async with transaction(request) as session:
        await _subs(request).accounts.decide(session, int(raw), approve=form.get("decision") == "approve",
                                             by_account=signed.account_id, staff=None)  # fmt: skip
    raise web.HTTPSeeOther("/me?done=approved")


async def me_data(request: web.Request) -> web.StreamResponse:
    who = await _who(request)
    if who is None:
        raise web.HTTPSeeOther("/me")
    return _page(request, "me_data.html", view=_signed_view(), csrf=_csrf(request, who[1]))


async def me_export(request: web.Request) -> web.StreamResponse:
    who = await _who(request)
    if who is None:
        raise web.HTTPSeeOther("/me")
    body = await export_account(_subs(request).accounts, who[0].account_id)
    return json_response(body, headers={"Content-Disposition": 'attachment; filename="my-data.json"', "Cache-Control": "no-store"})


async def me_delete(request: web.Request) -> web.StreamResponse:
    signed, _, form = await _signed_form(request)
    if form.get("confirm") != "yes":
        raise InvalidInput("tick the box to confirm the erasure", loc=["form", "confirm"])
    await erase_account(_subs(request).accounts, signed.account_id)
    resp = _page(request, "me_sign_in.html", view=PageView(notice="账号已注销，您的资料已删除。"), phone="")
    resp.del_cookie(COOKIE_NAME, path="/")
    return resp


# ---- WeChat binding ------------------------------------------------------------------------------------------
async def me_wechat_post(request: web.Request) -> web.StreamResponse:
    signed, token, _ = await _signed_form(request)
    try:
        await _subs(request).wechat.send_link(signed.account_id, _subs(request).client_hash(request.remote or ""))
    except PolicyPushError as exc:
        return await _prefs_page(request, signed, token, error=_plain(exc))
    return await _prefs_page(request, signed, token, notice="绑定链接已用短信发到您的手机，请在微信里打开它（30 分钟内有效）。")


async def me_wechat_bind(request: web.Request) -> web.StreamResponse:
    """The link of the SMS: checked, then on to WeChat's web authorisation with the token as state."""
    token = request.match_info["code"]
    try:
        await _subs(request).wechat.account_of(token, _now())
    except PolicyPushError as exc:
        return _page(request, "me_sign_in.html", status=status_of(exc), view=PageView(error=_plain(exc)), phone="")
    raise web.HTTPFound(_subs(request).wechat.authorize_url(token))


async def me_wechat_callback(request: web.Request) -> web.StreamResponse:
    try:
        await _subs(request).wechat.complete(request.query.get("state", ""), request.query.get("code", ""))
    except PolicyPushError as exc:
        return _page(request, "me_sign_in.html", status=status_of(exc), view=PageView(error=_plain(exc)), phone="")
    return _page(request, "me_sign_in.html", view=PageView(notice="微信已绑定。以后可以通过微信收到政策通知。"), phone="", bound=True)
