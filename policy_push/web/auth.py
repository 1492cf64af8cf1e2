"""Who is asking, and may they: the one mechanism behind every route's ``role`` in the routes table.

A request is made by a staff principal (:class:`policy_push.staff.Principal`) when it carries

* a personal API token, ``Authorization: Bearer ppt_…`` (hashed at rest, scoped, expiring, revocable);
* the bootstrap ``POLICY_PUSH_API_TOKEN``, which acts as an admin only while no active admin account
  exists (it is there to create the first one);
* or the staff session cookie ``pp_staff``: JSON encrypted and authenticated with Fernet (aiohttp-session's
  ``EncryptedCookieStorage``, key derived from the PII key), ending ``staff_session_minutes`` after
  login however active (absolute) or ``staff_session_idle_minutes`` after its last request (idle; every
  request renews it), and early on disable or password reset (the account's ``session_epoch``).

A route whose role the principal lacks answers 403, without a principal 401 (pages redirect to the
login page).  Every state-changing request made with the cookie must carry the session's CSRF token
(form field ``csrf`` or header ``X-CSRF-Token``).  Secrets never travel in a URL.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp_session import Session, get_session, session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from policy_push.config import Settings
from policy_push.errors import NotAllowed, NotAuthenticated, TooManyRequests
from policy_push.security import PiiCipher
from policy_push.staff import TOKEN_PREFIX, Principal, Role, StaffDirectory
from policy_push.storage.rate_windows import SharedWindows

from .bodies import read_form
from .keys import route_spec, session_factory_key, settings_key

__all__ = [
    "BOOTSTRAP_ID",
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "LoginLimiter",
    "auth_middleware",
    "check_service_token",
    "csrf_token",
    "current_principal",
    "directory",
    "ended_notice",
    "login_limiter_key",
    "principal_key",
    "security_headers_middleware",
    "session_end",
    "session_ended_key",
    "session_middleware_for",
    "staff_clock_key",
    "start_session",
]

SESSION_COOKIE = "pp_staff"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
BOOTSTRAP_ID = "bootstrap"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

principal_key = web.RequestKey("principal", object)
#: why this request's staff session just ended ("idle" or "absolute"), for the login page's notice
session_ended_key = web.RequestKey("session_ended", str)
#: the staff sessions' clock, seconds since the epoch (an app key so tests can inject time)
staff_clock_key = web.AppKey("staff_clock", Callable[[], float])


class LoginLimiter:
    """At most ``per_minute`` login attempts per client address: in any 60 s in this process's memory
    (SQLite, one process), or in each one-minute window counted in the database (PostgreSQL: ``shared``,
    set at start, so that every process draws on one budget).  The account lockout holds in both."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}
        self.shared: SharedWindows | None = None

    async def check(self, client: str, *, now: float | None = None) -> None:
        if self.shared is not None:
            if await self.shared.hit("login", client, now=now) > self.per_minute:
                raise _too_many_logins()
            return
        now = time.monotonic() if now is None else now
        if len(self._seen) > 10_000:  # forget idle addresses
            self._seen = {k: v for k, v in self._seen.items() if v and now - v[-1] < 60}
        seen = self._seen.setdefault(client, deque())
        while seen and now - seen[0] >= 60:
            seen.popleft()
        if len(seen) >= self.per_minute:
            raise _too_many_logins()
        seen.append(now)


def _too_many_logins() -> TooManyRequests:
    return TooManyRequests("登录尝试过于频繁，请一分钟后再试 (too many login attempts; wait a minute)",
                           loc=["body", "name"])  # fmt: skip


login_limiter_key = web.AppKey("login_limiter", LoginLimiter)


def session_middleware_for(settings: Settings, cipher: PiiCipher) -> Any:
    storage = EncryptedCookieStorage(
        cipher.session_cookie_key(), cookie_name=SESSION_COOKIE, max_age=settings.staff_session_minutes * 60,
        secure=settings.staff_cookie_secure, httponly=True, samesite="Strict",
    )  # fmt: skip
    return session_middleware(storage)


def directory(request: web.Request, session: Any) -> StaffDirectory:
    s = request.app[settings_key]
    return StaffDirectory(session, lockout_failures=s.staff_lockout_failures, lockout_minutes=s.staff_lockout_minutes)


# -- security headers ---------------------------------------------------------------------------
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects carry them too
        _secure(request, exc)
        raise
    _secure(request, response)
    return response


def _secure(request: web.Request, response: web.StreamResponse) -> None:
    h = response.headers
    h.setdefault("Content-Security-Policy", _CSP)
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "no-referrer")
    spec = route_spec(request)
    if spec is not None and (spec.auth or spec.page):
        h["Cache-Control"] = "no-store"  # personal pages and answers stay out of every cache


# -- who is asking ------------------------------------------------------------------------------
def current_principal(request: web.Request) -> Principal:
    """The principal of a request to a route with a role (the middleware has checked it)."""
    principal = request.get(principal_key)
    if not isinstance(principal, Principal):
        raise NotAuthenticated("log in, or send 'Authorization: Bearer <token>'", loc=["header", "Authorization"])
    return principal


def maybe_principal(request: web.Request) -> Principal | None:
    principal = request.get(principal_key)
    return principal if isinstance(principal, Principal) else None


async def _from_bearer(request: web.Request, given: str) -> Principal:
    factory = request.app[session_factory_key]
    if given.startswith(TOKEN_PREFIX):
        async with factory() as session, session.begin():
            principal = await directory(request, session).check_token(given)
        if principal is None:
            raise NotAllowed("the bearer token is not valid (wrong, expired or revoked)", loc=["header", "Authorization"])
        return principal
    configured = request.app[settings_key].api_token
    secret = configured.get_secret_value() if configured is not None else ""
    if not secret:
        raise NotAllowed(
            "this service has no bootstrap token configured and this is not a personal API token; "
            "set POLICY_PUSH_API_TOKEN to create the first admin, or use `policy-push staff token create`",
            loc=["header", "Authorization"],
        )
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise NotAllowed("the bearer token is not valid", loc=["header", "Authorization"])
    async with factory() as session:
        if await directory(request, session).has_active_admin():
            raise NotAllowed(
                "POLICY_PUSH_API_TOKEN only bootstraps the first admin, and one exists now; use a personal "
                "API token (`policy-push staff token create NAME`)",
                loc=["header", "Authorization"],
            )
    return Principal(BOOTSTRAP_ID, BOOTSTRAP_ID, Role.ADMIN, "bootstrap")


async def _from_session(request: web.Request) -> Principal | None:
    if SESSION_COOKIE not in request.cookies:
        return None
    session = await get_session(request)
    account_id = session.get("acct")
    if not account_id:
        return None
    async with request.app[session_factory_key]() as db:
        row = await directory(request, db).get(str(account_id))
    if row is None or not row.active or row.session_epoch != session.get("epoch"):
        session.invalidate()  # disabled, or its password was reset: this login is over
        return None
    ended = session_end(request.app[settings_key], session, request.app[staff_clock_key]())
    if ended is not None:
        session.invalidate()
        request[session_ended_key] = ended
        return None
    return Principal(row.id, row.name, Role(row.role), "session")


def session_end(settings: Settings, session: Session, now: float) -> str | None:
    """``"absolute"`` or ``"idle"`` when this login is over at ``now``; otherwise None, and the session's
    last activity moves to ``now`` (the idle limit slides; the absolute one never moves)."""
    login_at, seen_at = session.get("login_at"), session.get("seen_at")
    if not isinstance(login_at, int | float) or not isinstance(seen_at, int | float):
        return "absolute"  # a session made before both limits existed: log in again
    if now - login_at >= settings.staff_session_minutes * 60:
        return "absolute"
    if now - seen_at >= settings.staff_session_idle_minutes * 60:
        return "idle"
    if int(now) != seen_at:  # whole seconds: the cookie is re-sent at most once a second
        session["seen_at"] = int(now)
    return None


async def _resolve(request: web.Request) -> Principal | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise NotAuthenticated(
                "a bearer token is required: send 'Authorization: Bearer <token>'", loc=["header", "Authorization"]
            )
        return await _from_bearer(request, given.strip())
    return await _from_session(request)


def check_service_token(request: web.Request) -> None:
    """A shard node's request to another (``Authorization: Bearer`` the shared ``POLICY_PUSH_SERVICE_TOKEN``):
    not a staff principal, and good for the internal routes only."""
    configured = request.app[settings_key].service_token
    secret = configured.get_secret_value() if configured is not None else ""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise NotAuthenticated("send 'Authorization: Bearer <service token>'", loc=["header", "Authorization"])
    if not secret:
        raise NotAllowed("this node has no POLICY_PUSH_SERVICE_TOKEN: it takes no shard requests", loc=["header", "Authorization"])
    if not hmac.compare_digest(given.strip().encode(), secret.encode()):
        raise NotAllowed("the service token is not valid", loc=["header", "Authorization"])


# -- CSRF ---------------------------------------------------------------------------------------
def csrf_token(session: Session) -> str:
    """The session's CSRF token, made on first use (anonymous sessions get one for the login form)."""
    token = session.get(CSRF_FIELD)
    if not token:
        token = session[CSRF_FIELD] = secrets.token_urlsafe(24)
    return str(token)


async def _check_csrf(request: web.Request) -> None:
    session = await get_session(request)
    expected = session.get(CSRF_FIELD) or ""
    given = request.headers.get(CSRF_HEADER, "")
    if not given and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        # bounded in size and time; a broken form (a multipart body without its boundary) is a 400
        given = str((await read_form(request)).get(CSRF_FIELD, ""))
    if not expected or not given or not hmac.compare_digest(str(expected), given):
        raise NotAllowed("表单已过期或来源不明，请刷新页面后重试 (missing or wrong CSRF token)", loc=["body", CSRF_FIELD])


def start_session(session: Session, principal_id: str, epoch: int, now: float) -> None:
    """A fresh session for a login: new identity and new CSRF token (no fixation); both limits start now."""
    session.invalidate()
    session["acct"] = principal_id
    session["epoch"] = epoch
    session["login_at"] = session["seen_at"] = int(now)
    session[CSRF_FIELD] = secrets.token_urlsafe(24)


# -- the middleware -----------------------------------------------------------------------------
#: why a staff session ended, as the login page and a 401 say it
_ENDED = {
    "idle": "长时间未操作，登录已失效，请重新登录 (the staff session ended after being idle; log in again)",
    "absolute": "登录已到期，请重新登录 (the staff session reached its time limit; log in again)",
}


def ended_notice(reason: str) -> str:
    """The login page's line for a session that ended (empty for an unknown reason)."""
    return _ENDED.get(reason, "")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    spec = route_spec(request)
    if spec is None or not (spec.auth or spec.page):
        return await handler(request)
    principal = await _resolve(request)
    request[principal_key] = principal
    needs: Role | None = spec.needs
    if needs is not None:
        if principal is None:
            ended = request.get(session_ended_key)
            if spec.page and request.method in _SAFE:
                raise web.HTTPSeeOther(f"/staff/login?next={quote(request.path)}" + (f"&ended={ended}" if ended else ""))
            if ended:
                raise NotAuthenticated(_ENDED[ended], loc=["cookie", SESSION_COOKIE])
            raise NotAuthenticated("log in, or send 'Authorization: Bearer <token>'", loc=["header", "Authorization"])
        if not principal.role.allows(needs):
            raise NotAllowed(
                f"this needs the {needs.value} role; {principal.name} has {principal.role.value}", loc=["path"]
            )
    if request.method not in _SAFE and (principal is None or principal.via == "session"):
        await _check_csrf(request)
    return await handler(request)


def has_credentials(request: web.Request) -> bool:
    """For ``Expect: 100-continue``: anything that might authenticate (checked properly after)."""
    return "Authorization" in request.headers or SESSION_COOKIE in request.cookies
