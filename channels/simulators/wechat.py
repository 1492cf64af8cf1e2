"""WeChat official account simulator: tokens, template and subscription sends, and pushed events.

``/cgi-bin/stable_token`` returns the same token while more than 5 minutes remain, mints a new one
(the old one staying valid until it expires) when less remain, and on ``force_refresh`` invalidates
the old token at once (at most 20 a day, 30 s apart; otherwise nothing changes). ``/cgi-bin/token``
mints a token on every call, keeps the previous one for a 5-minute grace period and counts towards
2000 calls a day. Template sends check the token, the follower, the template, every key and its
length rule, deduplicate on (openid, client_msg_id) for 10 minutes, and count towards a daily quota.
``/cgi-bin/message/subscribe/bizsend`` sends a subscription notification: it spends one credit of
the user's one-time subscription to that template (43101 when none is left or the user refused) and
answers without a ``msgid``, as the real API does.

Events (TEMPLATESENDJOBFINISH, subscribe_msg_sent_event, subscribe and unsubscribe) are pushed to
``callback_url`` signed with ``callback_token``; with ``encoding_aes_key`` set they are pushed in
safe mode (``encrypt_type=aes``, ``msg_signature``, WXBizMsgCrypt). ``POST /_sim/event``
``{"openid": …, "event": "unsubscribe" | "subscribe"}`` makes a user unfollow (template sends to them are
answered 43004 "require subscribe" from then on) or follow again.

Web authorisation (网页授权, snsapi_base): ``POST /_sim/oauth-code`` ``{"openid": …}`` stands for the user
opening our authorize link inside WeChat and WeChat sending them back with a ``code``; it returns that
code. ``GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code`` exchanges it for
the openid, once (40163 for a used code, 40029 for an unknown or expired one, codes live 5 minutes).

Tokens and web authorisation live in ``wechat_tokens``, pushing events in ``wechat_events`` (mixed in here).

Injected token faults (40001, 40014, 42001) hit only a token that has already been used once: the
real platform never rejects a token it has just issued, and wechatpy re-fetches and retries with no
limit, so a fault on a fresh token would send it round for ever.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from channels.render import wechat_field_limit
from channels.simulators._common import (
    CallbackPusher,
    Faults,
    SentRecord,
    Simulator,
    json_response,
)
from channels.simulators.wechat_events import WechatEvents
from channels.simulators.wechat_tokens import _OPENID, WechatTokens
from channels.wechat_crypto import WechatCrypto

__all__ = ["WechatSimConfig", "WechatSimulator"]

_DEDUPE_S = 600.0
_TOKEN_FAULTS = frozenset({"40001", "40014", "42001"})
_USER_STATES = frozenset({"follower", "unfollowed", "not_following", "refused", "blocked", "system_fail"})


@dataclass(frozen=True, slots=True)
class WechatSimConfig:
    apps: Mapping[str, str] = field(default_factory=lambda: {"wxsimappid0000001": "sim-app-secret"})
    #: template_id -> its keys
    templates: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {"TPL-policy-notice-0000000000000000000000000": ("thing1", "time2", "thing3", "thing4")}
    )
    #: openid -> "follower" | "unfollowed" (40003 "invalid openid": an openid this account does not know;
    #: WeChat answers so for some former followers too) | "not_following" (43004 "require subscribe": what
    #: a template send to a user who unfollowed gets, the state ``follow_event`` leaves) | "refused" (43101)
    #: | "blocked" (sent, event "failed:user block") | "system_fail" (sent, event "failed: system failed").
    #: Any other well-formed openid (o + 27 characters) counts as a follower.
    users: Mapping[str, str] = field(default_factory=dict)
    token_ttl_s: float = 7200.0
    daily_quota: int = 100_000
    classic_token_daily_quota: int = 2000
    ip_whitelist: frozenset[str] = frozenset()
    callback_url: str = ""
    callback_token: str = "sim-callback-token"
    event_delay_s: float = 1.0
    event_retry_delays_s: tuple[float, ...] = (5.0, 5.0, 5.0)
    time_factor: float = 1.0
    account: str = "gh_7f083739789a"
    #: subscription-notification templates (bizsend): template_id -> its keys
    subscribe_templates: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {"SUB-policy-notice-000000000000000000000000": ("thing1", "time2", "thing3")}
    )
    #: one-time subscriptions each follower holds per subscription template (one bizsend each)
    subscribe_credits: int = 1000
    #: set to push events in safe mode (encrypt_type=aes); 43 characters
    encoding_aes_key: str = ""


class WechatSimulator(WechatEvents, WechatTokens, Simulator[WechatSimConfig]):
    provider = "wechat"

    def __init__(
        self, config: WechatSimConfig | None = None, *, faults: Faults | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(config or WechatSimConfig(), faults=faults, clock=clock)
        self.pusher = CallbackPusher(retry_delays_s=self.config.event_retry_delays_s, time_factor=self.config.time_factor)
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (appid, expires_at)
        self._stable: dict[str, str] = {}  # appid -> current stable token
        self._forced: dict[str, list[float]] = {}
        self._classic_calls: dict[str, list[float]] = {}
        self._sent_today: deque[float] = deque()
        self._dedupe: dict[tuple[str, str], tuple[str, float]] = {}
        self._msgids = itertools.count(200_228_332)
        self._used_tokens: set[str] = set()
        self.users: dict[str, str] = dict(self.config.users)
        self._credits: dict[tuple[str, str], int] = {}
        self.crypto = (
            WechatCrypto(self.config.callback_token, self.config.encoding_aes_key, next(iter(self.config.apps)))
            if self.config.encoding_aes_key
            else None
        )
        self.token_requests = 0
        self.app.router.add_post("/cgi-bin/stable_token", self._stable_token)
        self.app.router.add_get("/cgi-bin/token", self._classic_token)
        self.app.router.add_post("/cgi-bin/message/template/send", self._template_send)
        self.app.router.add_post("/cgi-bin/message/subscribe/bizsend", self._bizsend)
        self.app.router.add_post("/_sim/event", self._control_event)
        self.app.router.add_get("/sns/oauth2/access_token", self._oauth_access_token)
        self.app.router.add_post("/_sim/oauth-code", self._control_oauth_code)
        #: web authorisation codes: code -> (openid, expires at, used)
        self._oauth_codes: dict[str, list[Any]] = {}

    def set_scenario(self, recipient: str, what: str) -> None:
        """A user state: follower, unfollowed (40003), not_following (43004, as after an unfollow), refused (43101),
        blocked (sent, then failed:user block) or system_fail (sent, then failed: system failed)."""
        if what not in _USER_STATES:
            raise ValueError(f"WeChat scenario must be one of {', '.join(sorted(_USER_STATES))}, not {what!r}")
        self.users[recipient] = what

    async def close(self) -> None:
        await self.pusher.close()
        await super().close()

    # ---- template messages ----------------------------------------------------------------------

    async def _template_send(self, request: web.Request) -> web.StreamResponse:
        return await self._business_call(request, self._accept)

    async def _bizsend(self, request: web.Request) -> web.StreamResponse:
        return await self._business_call(request, self._accept_subscribe)

    async def _business_call(
        self, request: web.Request, accept: Callable[[dict[str, Any]], web.Response]
    ) -> web.StreamResponse:
        token = request.query.get("access_token", "")
        if not token:
            return self._err(41001, "access_token missing")
        owner = self.tokens.get(token)
        if owner is None:
            return self._err(40001, "invalid credential, access_token is invalid or not latest")
        if owner[1] <= self.clock():
            return self._err(42001, "access_token expired")
        fault = await self.inject()
        if fault in _TOKEN_FAULTS and token not in self._used_tokens:
            fault = None  # never reject a token on its first use (see the module docstring)
        self._used_tokens.add(token)
        if fault is not None and fault != "TIMEOUT":
            if fault.startswith("HTTP_"):
                return web.Response(status=int(fault[5:]), text="simulated failure")
            if fault in _TOKEN_FAULTS:
                self.tokens.pop(token, None)  # the platform really dropped it: a refresh is needed
            return self._err(int(fault), "simulated")
        try:
            body = await request.json()
        except ValueError:
            return self._err(47001, "data format error")
        answer = accept(body if isinstance(body, dict) else {})
        if fault == "TIMEOUT":
            await self.hang()
        return answer

    def _user(self, openid: str) -> str:
        return self.users.get(openid) or ("follower" if _OPENID.match(openid) else "unfollowed")

    def _check_data(self, keys: tuple[str, ...], data: Any) -> web.Response | None:
        if not isinstance(data, dict):
            return self._err(47003, "argument invalid! data is empty")
        for key in keys:
            value = data.get(key, {}).get("value") if isinstance(data.get(key), dict) else None
            if not isinstance(value, str) or not value.strip():
                return self._err(47003, f"argument invalid! data.{key}.value is empty")
            if len(value) > wechat_field_limit(key):
                return self._err(47003, f"argument invalid! data.{key}.value invalid")
        return None

    def _accept_subscribe(self, body: dict[str, Any]) -> web.Response:
        openid, template_id = str(body.get("touser", "")), str(body.get("template_id", ""))
        status = self._user(openid)
        if status == "unfollowed":
            return self._err(40003, "invalid openid")
        keys = self.config.subscribe_templates.get(template_id)
        if keys is None:
            return self._err(40037, "invalid template_id")
        credits = self._credits.get((openid, template_id), self.config.subscribe_credits)
        if status in ("refused", "not_following") or credits <= 0:
            return self._err(43101, "user refuse to accept the msg")
        problem = self._check_data(keys, body.get("data"))
        if problem:
            return problem
        now = self.clock()
        refused = self._spend_quota(now)
        if refused:
            return refused
        self._credits[(openid, template_id)] = credits - 1
        msgid = str(next(self._msgids))
        params = {k: body["data"][k]["value"] for k in keys}
        self.record(SentRecord(self.provider, msgid, openid, "", template_id, params, " / ".join(params.values()), now))
        if self.config.callback_url and not self.lose_receipt():
            code, text = {"blocked": ("20002", "failed:user refuse"), "system_fail": ("20001", "failed:system")}.get(
                status, ("0", "success")
            )
            self._push(
                openid,
                "<Event><![CDATA[subscribe_msg_sent_event]]></Event><SubscribeMsgSentEvent><List>"
                f"<TemplateId><![CDATA[{template_id}]]></TemplateId><MsgID>{msgid}</MsgID>"
                f"<ErrorCode>{code}</ErrorCode><ErrorStatus><![CDATA[{text}]]></ErrorStatus>"
                "</List></SubscribeMsgSentEvent>",
            )
        return json_response({"errcode": 0, "errmsg": "ok"})

    def _accept(self, body: dict[str, Any]) -> web.Response:
        openid, template_id = str(body.get("touser", "")), str(body.get("template_id", ""))
        status = self._user(openid)
        if status == "unfollowed":
            return self._err(40003, "invalid openid")
        if status == "not_following":
            return self._err(43004, "require subscribe")
        if status == "refused":
            return self._err(43101, "user refuse to accept the msg")
        keys = self.config.templates.get(template_id)
        if keys is None:
            return self._err(40037 if len(template_id) == 43 else 40036, "invalid template_id")
        data = body.get("data")
        problem = self._check_data(keys, data)
        if problem:
            return problem
        assert isinstance(data, dict)
        now = self.clock()
        client_msg_id = str(body.get("client_msg_id", ""))
        if client_msg_id:
            seen = self._dedupe.get((openid, client_msg_id))
            if seen and now - seen[1] < _DEDUPE_S:
                return json_response({"errcode": 0, "errmsg": "ok", "msgid": int(seen[0])})
        refused = self._spend_quota(now)
        if refused:
            return refused
        msgid = str(next(self._msgids))
        if client_msg_id:
            self._dedupe[(openid, client_msg_id)] = (msgid, now)
        params = {k: data[k]["value"] for k in keys}
        self.record(SentRecord(self.provider, msgid, openid, client_msg_id, template_id, params, " / ".join(params.values()), now))
        if self.config.callback_url and not self.lose_receipt():
            event = {"blocked": "failed:user block", "system_fail": "failed: system failed"}.get(status, "success")
            self._push_event(openid, msgid, event)
        return json_response({"errcode": 0, "errmsg": "ok", "msgid": int(msgid)})

    def _spend_quota(self, now: float) -> web.Response | None:
        """Count one send against the account's daily quota (a rolling 24 hours); the 45009 answer,
        with nothing counted, when it is used up."""
        while self._sent_today and self._sent_today[0] <= now - 86400:
            self._sent_today.popleft()
        if len(self._sent_today) >= self.config.daily_quota:
            return self._err(45009, "reach max api daily quota limit")
        self._sent_today.append(now)
        return None
