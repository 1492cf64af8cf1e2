"""Login and logout.  One answer for a wrong name and a wrong password; a locked or disabled account
is told so (an officer needs to know whom to call), every attempt is audited, and each client address
is rate-limited before the password is even checked."""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import get_session

from policy_push.errors import TooManyRequests
from policy_push.storage import AuditLog

from ..auth import directory, ended_notice, login_limiter_key, maybe_principal, staff_clock_key, start_session
from ..keys import settings_key
from ..views._common import transaction
from .render import console_page, posted

__all__ = ["login_form", "login_submit", "logout"]

_MESSAGES = {
    "bad": "登录名或密码不正确。",
    "locked": "密码错误次数过多，账号已暂时锁定，请稍后再试或联系管理员。",
    "disabled": "该账号已停用，请联系管理员。",
}


def _safe_next(raw: str) -> str:
    """Only a path of this console: never an absolute URL (no open redirect)."""
    return raw if raw.startswith("/staff") and not raw.startswith("//") and "\\" not in raw else "/staff"


async def _form(request: web.Request, *, status: int = 200, error: str = "", name: str = "", nxt: str = "/staff",
                notice: str = "") -> web.Response:  # fmt: skip
    s = request.app[settings_key]
    return await console_page(
        request, "console_login.html", status=status, error=error, name=name, next=nxt, notice=notice,
        lockout_failures=s.staff_lockout_failures, lockout_minutes=s.staff_lockout_minutes,
    )  # fmt: skip


async def login_form(request: web.Request) -> web.StreamResponse:
    if maybe_principal(request) is not None:
        raise web.HTTPSeeOther("/staff")
    notice = "已退出。" if request.query.get("bye") else ended_notice(request.query.get("ended", ""))
    return await _form(request, nxt=_safe_next(request.query.get("next", "/staff")), notice=notice)


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await posted(request)
    name, password = str(form.get("name", "")).strip()[:64], str(form.get("password", ""))[:256]
    nxt = _safe_next(str(form.get("next", "/staff")))
    try:
        await request.app[login_limiter_key].check(request.remote or "?")
    except TooManyRequests as exc:
        return await _form(request, status=429, error=exc.msg, name=name, nxt=nxt)
    async with transaction(request) as db:
        result = await directory(request, db).login(name, password)
    if result.outcome != "ok" or result.account is None:
        return await _form(request, status=401, error=_MESSAGES[result.outcome], name=name, nxt=nxt)
    start_session(await get_session(request), result.account.id, result.account.session_epoch, request.app[staff_clock_key]())
    raise web.HTTPSeeOther(nxt)


async def logout(request: web.Request) -> web.StreamResponse:
    principal = maybe_principal(request)
    if principal is not None:
        async with transaction(request) as db:
            await AuditLog(db).record(actor=principal.account_id, action="logout", entity_type="staff",
                                      entity_id=principal.account_id)  # fmt: skip
    (await get_session(request)).invalidate()
    raise web.HTTPSeeOther("/staff/login?bye=1")
