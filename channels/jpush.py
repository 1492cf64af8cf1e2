"""JPush REST API v3 (``POST /v3/push``) with Basic auth ``appKey:masterSecret``.

Messages with the same title, text and link go out together, up to 1000 ``registration_id``s per
push. ``options.sendno`` is derived from our delivery ids (a 31-bit CRC) and checked in the echo.
JPush reports its per-AppKey window in ``X-Rate-Limit-*`` headers: when ``Remaining`` hits 0 the
adapter holds further pushes until ``Reset``, and a 429 is waited out and tried again without
counting as a retry, up to ``max_throttle_waits`` times.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import aiohttp

from channels.base import Channel, OutboundMessage, Outcome, SendResult, chunked
from channels.errors import ChannelError, ProviderServerError, ThrottledError, provider_errors
from channels.rate_limit import Limiter, RateLimit
from channels.signing import basic_auth_header

__all__ = ["JPUSH_CODES", "JPush", "JPushConfig"]

_P, _R = Outcome.PERMANENT, Outcome.RETRYABLE
#: Every code of the protocol document's table.
JPUSH_CODES: Mapping[str, Outcome] = MappingProxyType(
    {
        "OK": Outcome.ACCEPTED,
        "1000": _R,
        "1001": _P,
        "1002": _P,
        "1003": _P,
        "1004": _P,  # Basic auth rejected
        "1005": _P,  # payload too large
        "1008": _P,
        "1011": Outcome.UNREACHABLE,  # no push target: unknown or expired registration ids
        "1020": _P,
        "1030": _R,
        "2001": _R,
        "2002": _R,
        "2003": _P,
        "2004": _P,
        "2005": _R,
        "2008": _R,
    }
)
_THROTTLE = frozenset({"2001", "2002", "2005", "2008", "QUOTA_EXHAUSTED"})
_AUDIENCE_MAX = 1000


@dataclass(frozen=True, slots=True)
class JPushConfig:
    app_key: str
    master_secret: str
    base_url: str = "https://api.jpush.cn"
    platform: str | list[str] = "all"
    time_to_live_s: int = 86400
    apns_production: bool = False
    timeout_s: float = 5.0
    max_throttle_waits: int = 3
    #: a 429 asking for a longer pause than this goes back to the caller instead of blocking a sender
    max_throttle_wait_s: float = 10.0
    rate: RateLimit = field(default_factory=lambda: RateLimit(requests_per_s=10, burst=10))


def _sendno(delivery_ids: Sequence[str]) -> int:
    return zlib.crc32(",".join(delivery_ids).encode()) & 0x7FFFFFFF


class JPush(Channel):
    name = "jpush"
    kind = "app"
    code_table = JPUSH_CODES
    throttle_codes = _THROTTLE

    def __init__(self, config: JPushConfig, session: aiohttp.ClientSession, *, limiter: Limiter | None = None) -> None:
        self.config = config
        self._session = session
        self._limiter = limiter or Limiter(config.rate)
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_s)
        self._auth = basic_auth_header(config.app_key, config.master_secret)
        self._hold_until = 0.0  # monotonic time before which the provider's window is used up
        #: the last X-Rate-Limit-* values seen: (limit, remaining, reset seconds)
        self.rate_window: tuple[int, int, float] | None = None

    async def _send(self, batch: Sequence[OutboundMessage]) -> list[SendResult]:
        groups: dict[tuple[str, str, str], list[int]] = {}
        for i, msg in enumerate(batch):
            groups.setdefault((msg.title, msg.text, msg.url), []).append(i)
        results: list[SendResult | None] = [None] * len(batch)
        jobs = [
            self._push([batch[i] for i in part], part)
            for idxs in groups.values()
            for part in chunked(idxs, _AUDIENCE_MAX)
        ]
        for pairs in await asyncio.gather(*jobs):
            for i, res in pairs:
                results[i] = res
        return [r for r in results if r is not None]

    def _body(self, msgs: list[OutboundMessage], sendno: int) -> dict[str, Any]:
        first = msgs[0]
        extras = {"url": first.url} if first.url else {}
        return {
            "platform": self.config.platform,
            "audience": {"registration_id": [m.recipient for m in msgs]},
            "notification": {
                "alert": first.text,
                "android": {"alert": first.text, "title": first.title, "extras": extras},
                "ios": {"alert": {"title": first.title, "body": first.text}, "sound": "default", "extras": extras},
            },
            "options": {
                "sendno": sendno,
                "time_to_live": self.config.time_to_live_s,
                "apns_production": self.config.apns_production,
            },
        }

    async def _push(self, msgs: list[OutboundMessage], idxs: Sequence[int]) -> list[tuple[int, SendResult]]:
        sendno = _sendno([m.delivery_id for m in msgs])
        body = self._body(msgs, sendno)
        try:
            await self._limiter.acquire(len(msgs))
            status, answer = await self._post_with_throttle(body)
        except ChannelError as exc:
            return [(i, self.result_from_error(m, exc)) for i, m in zip(idxs, msgs, strict=True)]
        if status == 200:
            if str(answer.get("sendno")) != str(sendno):
                text = f"sendno echo {answer.get('sendno')!r} != {sendno}"
                return [(i, self.result(m, "BAD_ECHO", text, outcome=_R)) for i, m in zip(idxs, msgs, strict=True)]
            msg_id = str(answer.get("msg_id", ""))
            return [(i, self.result(m, "OK", "ok", provider_message_id=msg_id)) for i, m in zip(idxs, msgs, strict=True)]
        error = answer.get("error", {}) if isinstance(answer.get("error"), dict) else {}
        code, text = str(error.get("code", f"HTTP_{status}")), str(error.get("message", ""))
        default = _R if status >= 500 else _P
        outcome = self.code_table.get(code, default)
        return [(i, self.result(m, code, text, outcome=outcome)) for i, m in zip(idxs, msgs, strict=True)]

    async def _post_with_throttle(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for wait in range(self.config.max_throttle_waits + 1):
            hold = self._hold_until - time.monotonic()
            if hold > 0:
                await asyncio.sleep(hold)
            status, answer, reset_s = await self._post(body)
            if status != 429:
                return status, answer
            backoff = reset_s if reset_s > 0 else 2.0**wait
            if backoff > self.config.max_throttle_wait_s:
                raise ThrottledError("JPush rate window used up", code="2001", retry_after_s=backoff)
            self._hold_until = max(self._hold_until, time.monotonic() + backoff)
        raise ThrottledError("JPush kept answering 429", code="2001", retry_after_s=max(0.0, self._hold_until - time.monotonic()))

    async def _post(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        with provider_errors(self.name):
            async with self._session.post(
                f"{self.config.base_url}/v3/push",
                json=body,
                headers={"Authorization": self._auth},
                timeout=self._timeout,
            ) as resp:
                reset_s = self._note_rate_headers(resp.headers)
                if resp.status >= 500 and resp.content_type != "application/json":
                    raise ProviderServerError(f"{self.name}: HTTP {resp.status}", code=f"HTTP_{resp.status}")
                answer = await resp.json(content_type=None)
        return resp.status, answer if isinstance(answer, dict) else {}, reset_s

    def _note_rate_headers(self, headers: Mapping[str, str]) -> float:
        try:
            limit = int(headers["X-Rate-Limit-Limit"])
            remaining = int(headers["X-Rate-Limit-Remaining"])
            reset_s = float(headers["X-Rate-Limit-Reset"])
        except (KeyError, ValueError):
            return 0.0
        self.rate_window = (limit, remaining, reset_s)
        if remaining <= 0:
            self._hold_until = max(self._hold_until, time.monotonic() + reset_s)
        return reset_s
