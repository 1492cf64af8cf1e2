"""The WeChat simulator's credentials: access tokens (``/cgi-bin/stable_token``, ``/cgi-bin/token``, their
grace periods and quotas) and web authorisation (网页授权, snsapi_base) codes. See ``wechat`` for the rules.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from channels.simulators._common import json_response, read_control

__all__ = ["WechatTokens", "wechat_error"]

_OPENID = re.compile(r"^o[\w-]{27}$")
_GRACE_S = 300.0


def wechat_error(code: int, msg: str) -> web.Response:
    """An error answer as WeChat gives it (with a request id in the message)."""
    return json_response({"errcode": code, "errmsg": f"{msg} rid: {secrets.token_hex(4)}-{secrets.token_hex(4)}"})


class WechatTokens:
    """Token and web-authorisation endpoints (mixed into ``WechatSimulator``, which holds the state)."""

    config: Any
    clock: Callable[[], float]
    tokens: dict[str, tuple[str, float]]
    token_requests: int
    _stable: dict[str, str]
    _forced: dict[str, list[float]]
    _classic_calls: dict[str, list[float]]
    _oauth_codes: dict[str, list[Any]]

    # ``inject`` (a scripted fault) comes from ``Simulator``, later in the simulator's bases
    inject: Callable[[], Awaitable[str | None]]

    _err = staticmethod(wechat_error)

    # ---- tokens ---------------------------------------------------------------------------------

    def _check_app(self, request: web.Request, grant: Any, appid: Any, secret: Any) -> web.Response | None:
        if self.config.ip_whitelist and request.remote not in self.config.ip_whitelist:
            return self._err(40164, f"invalid ip {request.remote}, not in whitelist")
        if grant != "client_credential":
            return self._err(40002, "invalid grant_type")
        if not appid:
            return self._err(41002, "appid missing")
        if appid not in self.config.apps:
            return self._err(40013, "invalid appid")
        if not secret:
            return self._err(41004, "appsecret missing")
        if self.config.apps[appid] != secret:
            return self._err(40125, "invalid appsecret")
        return None

    def _mint(self, appid: str) -> str:
        token = secrets.token_urlsafe(96)  # real tokens are long; clients must store >= 512 characters
        self.tokens[token] = (appid, self.clock() + self.config.token_ttl_s)
        return token

    async def _stable_token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        try:
            body = await request.json()
        except ValueError:
            return self._err(47001, "data format error")
        body = body if isinstance(body, dict) else {}
        appid = body.get("appid")
        problem = self._check_app(request, body.get("grant_type"), appid, body.get("secret"))
        if problem:
            return problem
        fault = await self.inject()
        if fault == "-1":
            return self._err(-1, "system error")
        now = self.clock()
        current = self._stable.get(appid, "")
        expires_at = self.tokens.get(current, ("", 0.0))[1]
        if body.get("force_refresh") is True and current:
            recent = [t for t in self._forced.get(appid, []) if t > now - 86400]
            if len(recent) < 20 and (not recent or now - recent[-1] >= 30):
                self._forced[appid] = [*recent, now]
                self.tokens.pop(current, None)
                current = ""
        if not current or expires_at - now <= _GRACE_S:
            current = self._mint(appid)  # the old one, if any, lives on until its own expiry
            self._stable[appid] = current
        return json_response({"access_token": current, "expires_in": int(self.tokens[current][1] - now)})

    async def _classic_token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        q = request.query
        appid = q.get("appid")
        problem = self._check_app(request, q.get("grant_type"), appid, q.get("secret"))
        if problem:
            return problem
        now = self.clock()
        calls = [t for t in self._classic_calls.get(appid, []) if t > now - 86400]
        if len(calls) >= self.config.classic_token_daily_quota:
            return self._err(45009, "reach max api daily quota limit")
        self._classic_calls[appid] = [*calls, now]
        for token, (owner, exp) in list(self.tokens.items()):
            if owner == appid and token not in self._stable.values():
                self.tokens[token] = (owner, min(exp, now + _GRACE_S))
        return json_response({"access_token": self._mint(appid), "expires_in": int(self.config.token_ttl_s)})

    # ---- web authorisation (snsapi_base) ----------------------------------------------------------

    def oauth_code(self, openid: str) -> str:
        """The code WeChat hands back to our redirect_uri after ``openid`` opened the authorize link."""
        code = secrets.token_urlsafe(24)
        self._oauth_codes[code] = [openid, self.clock() + 300.0, False]
        return code

    async def _control_oauth_code(self, request: web.Request) -> web.Response:
        data = await read_control(request, ("openid",))
        if isinstance(data, web.Response):
            return data
        if not _OPENID.match(str(data["openid"])):
            return json_response({"error": "openid must look like a WeChat openid (o + 27 characters)"}, 422)
        return json_response({"code": self.oauth_code(str(data["openid"]))})

    async def _oauth_access_token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("grant_type") != "authorization_code":
            return self._err(40002, "invalid grant_type")
        appid = q.get("appid")
        if appid not in self.config.apps:
            return self._err(40013, "invalid appid")
        if self.config.apps[appid] != q.get("secret"):
            return self._err(40125, "invalid appsecret")
        entry = self._oauth_codes.get(q.get("code", ""))
        if entry is None or entry[1] < self.clock():
            return self._err(40029, "invalid code")
        if entry[2]:
            return self._err(40163, "code been used")
        entry[2] = True
        return json_response({"access_token": secrets.token_urlsafe(48), "expires_in": 7200,
                              "refresh_token": secrets.token_urlsafe(48), "openid": entry[0], "scope": "snsapi_base"})
