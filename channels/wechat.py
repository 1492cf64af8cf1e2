"""WeChat official account template messages, with a ``stable_token`` cache shared by all senders.

The token is fetched single-flight: however many sends find it missing or about to expire (fewer
than ``refresh_margin_s`` left), one request goes to ``/cgi-bin/stable_token`` and the rest await
it. A send rejected for its token (40001/40014/42001) is retried once with a fresh one;
``force_refresh`` is used only when the platform hands back the very token it just rejected, since
forced refreshes are limited to 20 a day, 30 s apart. 45009 (daily quota) stops sending until
midnight. ``client_msg_id`` carries our delivery id, so WeChat drops a duplicate within 10 minutes.

A template may instead be a subscription notification (``WechatTemplate(kind="subscribe")``):
``/cgi-bin/message/subscribe/bizsend`` spends one of the user's one-time subscriptions (43101 when
none is left). That API takes no ``client_msg_id`` and answers no ``msgid``, so such a send cannot
be deduplicated or settled: an unknown outcome stays unknown, and the subscribe_msg_sent_event
(``channels.wechat_events``) is matched by openid and template.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

import aiohttp

from channels.base import OutboundMessage, Outcome, SendResult
from channels.errors import (
    AuthError,
    ChannelError,
    InvalidMessageError,
    ProviderServerError,
    QuotaExhaustedError,
)
from channels.http_channel import HttpChannel
from channels.rate_limit import CHINA_TZ, Limiter, RateLimit, seconds_to_midnight
from channels.render import check_wechat_value

__all__ = ["TEMPLATE_KINDS", "WECHAT_CODES", "Wechat", "WechatConfig", "WechatTemplate"]

_P, _R, _U = Outcome.PERMANENT, Outcome.RETRYABLE, Outcome.UNREACHABLE
#: Every errcode of the protocol document (token endpoints, template and subscribe sends).
WECHAT_CODES: Mapping[str, Outcome] = MappingProxyType(
    {
        "0": Outcome.ACCEPTED,
        "-1": _R,  # system busy
        "40001": _R,  # token rejected again after the one refresh: let the next attempt refetch
        "40014": _R,
        "42001": _R,
        "40002": _P,
        "40003": _U,  # not an openid of this account, or the user unfollowed
        "40013": _P,
        "40036": _P,
        "40037": _P,
        "40125": _P,
        "40164": _P,  # our IP is not whitelisted: an operator must fix it
        "40243": _P,
        "41002": _P,
        "41004": _P,
        "43004": _U,  # the user does not follow the account
        "43101": _U,  # the user refused, or the one-time subscription is used up
        "43107": _P,
        "43108": _R,  # concurrent sends to one user
        "43116": _P,
        "45009": _R,  # daily quota: retry after midnight
        "45168": _P,
        "47003": _P,
        "89503": _P,
    }
)
_TOKEN_CODES = frozenset({"40001", "40014", "42001"})
_THROTTLE = frozenset({"45009", "43108", "QUOTA_EXHAUSTED"})
_FORCE_MIN_INTERVAL_S = 30.0
_DEDUPE_WINDOW_S = 600.0
_PATHS = {"template": "/cgi-bin/message/template/send", "subscribe": "/cgi-bin/message/subscribe/bizsend"}


TEMPLATE_KINDS = ("template", "subscribe")


@dataclass(frozen=True, slots=True)
class WechatTemplate:
    template_id: str
    #: the template's keys, e.g. ("thing1", "time2", "thing3"); each key's type sets its length rule
    keys: tuple[str, ...]
    #: "template" (template message, message/template/send) or "subscribe" (subscription
    #: notification, message/subscribe/bizsend)
    kind: str = "template"

    def __post_init__(self) -> None:
        if self.kind not in TEMPLATE_KINDS:
            raise ValueError(f"WechatTemplate kind is 'template' or 'subscribe', not {self.kind!r}")


@dataclass(frozen=True, slots=True)
class WechatConfig:
    appid: str
    secret: str
    templates: Mapping[str, WechatTemplate]
    base_url: str = "https://api.weixin.qq.com"
    timeout_s: float = 5.0
    refresh_margin_s: float = 300.0
    max_concurrency: int = 200
    rate: RateLimit = field(default_factory=lambda: RateLimit(requests_per_s=2000, burst=200))


class _TokenCache:
    """The account's access token, refreshed by at most one request at a time."""

    def __init__(self, fetch: Callable[[bool], Any], clock: Callable[[], float], margin_s: float) -> None:
        self._fetch = fetch
        self._clock = clock
        self._margin_s = margin_s
        self.token = ""
        self.expires_at = 0.0
        self.fetches = 0
        self._forced_at = -1e18
        self._inflight: asyncio.Future[str] | None = None

    async def get(self) -> str:
        if self.token and self.expires_at - self._clock() > self._margin_s:
            return self.token
        return await self.refresh()

    async def refresh(self, rejected: str = "") -> str:
        """A fresh token; when ``rejected`` is given and already replaced, the replacement is returned."""
        if self._inflight is not None:
            return await asyncio.shield(self._inflight)
        if rejected and self.token and self.token != rejected:
            return self.token
        task = asyncio.ensure_future(self._renew(rejected))
        self._inflight = task
        task.add_done_callback(self._clear)
        return await asyncio.shield(task)

    def _clear(self, task: asyncio.Future[str]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # mark retrieved: every awaiter already saw it through the shield

    async def _renew(self, rejected: str) -> str:
        token, expires_in = await self._fetch(False)
        self.fetches += 1
        now = self._clock()
        if rejected and token == rejected and now - self._forced_at >= _FORCE_MIN_INTERVAL_S:
            self._forced_at = now
            token, expires_in = await self._fetch(True)
            self.fetches += 1
        self.token, self.expires_at = token, self._clock() + expires_in
        return token

    def invalidate(self) -> None:
        self.token, self.expires_at = "", 0.0


class Wechat(HttpChannel[WechatConfig]):
    name = "wechat"
    kind = "wechat"
    code_table = WECHAT_CODES
    throttle_codes = _THROTTLE
    # WeChat keeps one message per (openid, client_msg_id) for ten minutes; it cannot be asked
    resend_window_s = 600.0

    def __init__(
        self, config: WechatConfig, session: aiohttp.ClientSession, *, limiter: Limiter | None = None,
        clock: Callable[[], float] = time.monotonic, now: Callable[[], datetime] = lambda: datetime.now(CHINA_TZ),
    ) -> None:  # fmt: skip
        super().__init__(config, session, limiter=limiter)
        self._clock = clock
        self._china_now = now  # for the daily quota, which resets at midnight China time
        self._gate = asyncio.Semaphore(config.max_concurrency)
        self._quota_until = 0.0
        self.tokens = _TokenCache(self._fetch_token, clock, config.refresh_margin_s)

    async def _send(self, batch: Sequence[OutboundMessage]) -> list[SendResult]:
        return list(await asyncio.gather(*(self._send_one(m) for m in batch)))

    def _body(self, msg: OutboundMessage) -> dict[str, Any]:
        tpl = self.config.templates.get(msg.template)
        if tpl is None:
            raise InvalidMessageError(f"no WeChat template for {msg.template!r}", code="TEMPLATE_UNKNOWN")
        if set(msg.params) != set(tpl.keys):
            raise InvalidMessageError(
                f"template {msg.template!r} takes keys {list(tpl.keys)}, got {sorted(msg.params)}", code="47003"
            )
        for key in tpl.keys:
            check_wechat_value(key, msg.params[key])
        body: dict[str, Any] = {
            "touser": msg.recipient,
            "template_id": tpl.template_id,
            "data": {k: {"value": msg.params[k]} for k in tpl.keys},
        }
        if tpl.kind == "subscribe":
            if msg.url:
                body["page"] = msg.url  # bizsend calls the link "page"; it takes no client_msg_id
        else:
            body["client_msg_id"] = msg.delivery_id
            if msg.url:
                body["url"] = msg.url
        return body

    async def _send_one(self, msg: OutboundMessage) -> SendResult:
        try:
            body = self._body(msg)
            if self._clock() < self._quota_until:
                raise QuotaExhaustedError(
                    "WeChat daily quota exhausted (45009)", code="45009", retry_after_s=self._quota_until - self._clock()
                )
            path = _PATHS[self.config.templates[msg.template].kind]
            async with self._gate:
                await self._limiter.acquire(1)
                token = await self.tokens.get()
                answer = await self._post_message(path, token, body)
                if str(answer.get("errcode", 0)) in _TOKEN_CODES:
                    token = await self.tokens.refresh(rejected=token)
                    answer = await self._post_message(path, token, body)
        except ChannelError as exc:
            return self.result_from_error(msg, exc)
        code = str(answer.get("errcode", 0))
        retry_after = None
        if code == "45009":
            retry_after = seconds_to_midnight(self._china_now())
            self._quota_until = self._clock() + retry_after
        return self.result(
            msg, code, str(answer.get("errmsg", "")), provider_message_id=str(answer.get("msgid", "")), retry_after_s=retry_after
        )

    async def _post_message(self, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._post(f"{self.config.base_url}{path}", body, params={"access_token": token})

    async def _post(self, url: str, body: dict[str, Any], params: Mapping[str, str] | None = None) -> dict[str, Any]:
        answer, _ = await self._post_json(url, answered=lambda status: status == 200, json=body, params=params)
        if not isinstance(answer, dict):
            raise ProviderServerError(f"{self.name}: answer is not a JSON object", code="BAD_ANSWER")
        return answer

    async def _fetch_token(self, force: bool) -> tuple[str, float]:
        body: dict[str, Any] = {"grant_type": "client_credential", "appid": self.config.appid, "secret": self.config.secret}
        if force:
            body["force_refresh"] = True
        answer = await self._post(f"{self.config.base_url}/cgi-bin/stable_token", body)
        code = str(answer.get("errcode", 0))
        if code == "0" and answer.get("access_token"):
            return str(answer["access_token"]), float(answer.get("expires_in", 7200))
        text = f"stable_token failed: {code} {answer.get('errmsg', '')}"
        if code == "-1":
            raise ProviderServerError(text, code=code)
        if code == "45009":
            raise QuotaExhaustedError(text, code=code, retry_after_s=seconds_to_midnight(self._china_now()))
        raise AuthError(text, code=code)

    def resend_window_for(self, template: str) -> float:
        """600 s for template messages (client_msg_id), 0 for subscription notifications (bizsend has no such id)."""
        tpl = self.config.templates.get(template)
        return 0.0 if tpl is not None and tpl.kind == "subscribe" else _DEDUPE_WINDOW_S
