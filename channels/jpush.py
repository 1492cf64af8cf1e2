"""JPush REST API v3 with Basic auth ``appKey:masterSecret``.

Our app messages are personal (each carries its recipient's reason and link), so with *batch single
push* (``POST /v3/push/batch/regid/single``, a JPush VIP feature; ``batch_single``, on by default) one
request carries up to 1000 of them, each with its own content and its own ``cid``. Without it (JPush
answers 2006/2007 to a non-VIP AppKey, or ``batch_single=False``) pushes go through ``POST /v3/push``,
one per distinct text, up to 1000 registration ids each.

Every push carries a ``cid`` from a pool the adapter takes per batch (``GET /v3/push/cid``). A cid is
JPush's idempotency key: pushing again under a cid already used returns the first push's result and
pushes nothing (for a day). So when a push's outcome is unknown (a timeout after the request went out),
``query`` replays it under the same cid: JPush answers with the first result if the push went out, or
pushes it now if it did not; either way it goes out once. Only this adapter knows those cids, so after a
restart an unknown outcome stays unknown (``resend_window_s`` is 0).

JPush reports its per-AppKey window in ``X-Rate-Limit-*`` headers: when ``Remaining`` hits 0 the adapter
holds further requests until ``Reset``, and a 429 is waited out and tried again without counting as a
retry, up to ``max_throttle_waits`` times.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import aiohttp

from channels.base import OutboundMessage, Outcome, SendResult, chunked
from channels.errors import ChannelError, ProtocolError, ProviderServerError, ThrottledError, provider_errors
from channels.http_channel import HttpChannel
from channels.query import Answer, Inquiry
from channels.rate_limit import Limiter, RateLimit
from channels.signing import basic_auth_header

__all__ = ["JPUSH_CODES", "JPush", "JPushConfig"]

_log = logging.getLogger("channels.jpush")
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
        "1009": _P,  # a key the push object does not know
        "1011": Outcome.UNREACHABLE,  # no push target: unknown or expired registration ids
        "1020": _P,
        "1030": _R,
        "2001": _R,
        "2002": _R,
        "2003": _P,
        "2004": _P,
        "2005": _R,
        "2006": _P,  # batch single push is for VIP AppKeys only
        "2007": _P,  # no permission for this API
        "2008": _R,
    }
)
_THROTTLE = frozenset({"2001", "2002", "2005", "2008", "QUOTA_EXHAUSTED"})
#: the AppKey may not use batch single push: fall back to one push per text
_NOT_VIP = frozenset({"2006", "2007"})
_MAX = 1000  # registration ids per push, pushes per batch request, cids per pool request
_UNSURE_KEPT = 100_000
_PUSH, _BATCH = "/v3/push", "/v3/push/batch/regid/single"


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
    #: send personal pushes 1000 to a request (VIP); off, or refused by JPush: one request per text
    batch_single: bool = True
    rate: RateLimit = field(default_factory=lambda: RateLimit(requests_per_s=10, burst=10))


def _sendno(delivery_ids: Sequence[str]) -> int:
    return zlib.crc32(",".join(delivery_ids).encode()) & 0x7FFFFFFF


class JPush(HttpChannel[JPushConfig]):
    name = "jpush"
    kind = "app"
    code_table = JPUSH_CODES
    throttle_codes = _THROTTLE

    @property
    def messages_per_request(self) -> int:  # type: ignore[override]
        return _MAX if self._batch_single else 1  # personal pushes: 1000 with batch single push, else one

    def __init__(self, config: JPushConfig, session: aiohttp.ClientSession, *, limiter: Limiter | None = None) -> None:
        super().__init__(config, session, limiter=limiter)
        self._auth = basic_auth_header(config.app_key, config.master_secret)
        self._hold_until = 0.0  # monotonic time before which the provider's window is used up
        self._batch_single = config.batch_single
        #: delivery id -> (path, cid, push) of pushes whose outcome is unknown, replayable under their cid
        self._unsure: OrderedDict[str, tuple[str, str, dict[str, Any]]] = OrderedDict()
        #: the last X-Rate-Limit-* values seen: (limit, remaining, reset seconds)
        self.rate_window: tuple[int, int, float] | None = None

    # ---- sending --------------------------------------------------------------------------------

    async def _send(self, batch: Sequence[OutboundMessage]) -> list[SendResult]:
        if self._batch_single:
            results = await self._send_personal(batch)
            if results is not None:
                return results
        return await self._send_by_text(batch)

    async def _send_personal(self, batch: Sequence[OutboundMessage]) -> list[SendResult] | None:
        """Batch single push; None when JPush refuses the feature to this AppKey (then sent by text)."""
        parts = list(chunked(batch, _MAX))
        try:
            pools = [await self._cids(len(part)) for part in parts]
        except ChannelError as exc:
            return [self._not_sent(m, exc) for m in batch]
        answers = await asyncio.gather(*(self._batch_request(part, cids) for part, cids in zip(parts, pools, strict=True)))
        if any(a is None for a in answers):
            return None
        return [r for part in answers if part is not None for r in part]

    async def _batch_request(self, msgs: Sequence[OutboundMessage], cids: list[str]) -> list[SendResult] | None:
        pushes = {cid: self._personal(m) for cid, m in zip(cids, msgs, strict=True)}
        try:
            await self._limiter.acquire(len(msgs))
            status, answer = await self._post_with_throttle(_BATCH, {"pushlist": pushes})
        except ChannelError as exc:
            return [self._failed(m, exc, _BATCH, cid, pushes[cid]) for cid, m in zip(cids, msgs, strict=True)]
        if status != 200:
            code, text = _error(answer, status)
            if code in _NOT_VIP:
                self._batch_single = False
                _log.warning("JPush refused batch single push (%s %s): sending one push per text from now on; "
                             "ask JPush to enable 批量单推 for this AppKey", code, text)  # fmt: skip
                return None
            return [self.result(m, code, text, outcome=self.code_table.get(code, _R if status >= 500 else _P)) for m in msgs]
        return [self._personal_result(m, answer.get(cid)) for cid, m in zip(cids, msgs, strict=True)]

    def _personal(self, msg: OutboundMessage) -> dict[str, Any]:
        return {
            "platform": self.config.platform,
            "target": msg.recipient,
            "notification": self._notification(msg),
            "options": {"time_to_live": self.config.time_to_live_s, "apns_production": self.config.apns_production},
        }

    def _personal_result(self, msg: OutboundMessage, item: Any) -> SendResult:
        if not isinstance(item, dict):
            return self.result(msg, "NO_ANSWER", "the batch answer has no entry for this push", outcome=_R)
        error = item.get("error")
        if isinstance(error, dict):
            code = str(error.get("code", ""))
            return self.result(msg, code, str(error.get("message", "")), outcome=self.code_table.get(code, _P))
        return self.result(msg, "OK", "ok", provider_message_id=str(item.get("msg_id", "")))

    async def _send_by_text(self, batch: Sequence[OutboundMessage]) -> list[SendResult]:
        groups: dict[tuple[str, str, str], list[int]] = {}
        for i, msg in enumerate(batch):
            groups.setdefault((msg.title, msg.text, msg.url), []).append(i)
        parts = [part for idxs in groups.values() for part in chunked(idxs, _MAX)]
        try:
            cids = await self._cids(len(parts))
        except ChannelError as exc:
            return [self._not_sent(m, exc) for m in batch]
        results: list[SendResult | None] = [None] * len(batch)
        done = await asyncio.gather(*(self._push([batch[i] for i in part], cid) for part, cid in zip(parts, cids, strict=True)))
        for part, answers in zip(parts, done, strict=True):
            for i, res in zip(part, answers, strict=True):
                results[i] = res
        return [r for r in results if r is not None]

    async def _push(self, msgs: list[OutboundMessage], cid: str) -> list[SendResult]:
        sendno = _sendno([m.delivery_id for m in msgs])
        body = {
            "cid": cid,
            "platform": self.config.platform,
            "audience": {"registration_id": [m.recipient for m in msgs]},
            "notification": self._notification(msgs[0]),
            "options": {"sendno": sendno, "time_to_live": self.config.time_to_live_s,
                        "apns_production": self.config.apns_production},
        }  # fmt: skip
        try:
            await self._limiter.acquire(len(msgs))
            status, answer = await self._post_with_throttle(_PUSH, body)
        except ChannelError as exc:
            return [self._failed(m, exc, _PUSH, cid, body) for m in msgs]
        if status == 200:
            if str(answer.get("sendno")) != str(sendno):
                return [self.result(m, "BAD_ECHO", f"sendno echo {answer.get('sendno')!r} != {sendno}", outcome=_R) for m in msgs]
            msg_id = str(answer.get("msg_id", ""))
            return [self.result(m, "OK", "ok", provider_message_id=msg_id) for m in msgs]
        code, text = _error(answer, status)
        return [self.result(m, code, text, outcome=self.code_table.get(code, _R if status >= 500 else _P)) for m in msgs]

    def _notification(self, msg: OutboundMessage) -> dict[str, Any]:
        extras = {"url": msg.url} if msg.url else {}
        return {
            "alert": msg.text,
            "android": {"alert": msg.text, "title": msg.title, "extras": extras},
            "ios": {"alert": {"title": msg.title, "body": msg.text}, "sound": "default", "extras": extras},
        }

    def _not_sent(self, msg: OutboundMessage, exc: ChannelError) -> SendResult:
        """No push was made (the cid pool could not be had): never ``maybe_sent``."""
        res = self.result_from_error(msg, exc)
        return SendResult(res.delivery_id, res.outcome, res.provider, code=res.code, text=res.text,
                          retry_after_s=res.retry_after_s, provider_fault=res.provider_fault)  # fmt: skip

    def _failed(self, msg: OutboundMessage, exc: ChannelError, path: str, cid: str, push: dict[str, Any]) -> SendResult:
        res = self.result_from_error(msg, exc)
        if res.maybe_sent:  # kept to replay under its cid (``query``)
            self._unsure[msg.delivery_id] = (path, cid, push)
            while len(self._unsure) > _UNSURE_KEPT:
                self._unsure.popitem(last=False)
        return res

    # ---- unknown outcomes -----------------------------------------------------------------------

    async def query(self, items: Sequence[Inquiry]) -> list[Answer]:
        """Replay pushes of unknown outcome under their cid (JPush pushes a cid at most once); pushes this
        adapter did not make, or whose replay fails too, cannot be told."""
        return list(await asyncio.gather(*(self._replay(item) for item in items)))

    async def _replay(self, item: Inquiry) -> Answer:
        kept = self._unsure.get(item.delivery_id)
        if kept is None:
            return Answer(item.delivery_id, self.name, None)
        path, cid, push = kept
        try:
            await self._limiter.bucket.acquire(1.0)
            status, answer = await self._post_with_throttle(path, {"pushlist": {cid: push}} if path == _BATCH else push)
        except ChannelError:
            return Answer(item.delivery_id, self.name, None)
        entry = answer.get(cid) if path == _BATCH else answer
        if status != 200 or not isinstance(entry, dict):
            return Answer(item.delivery_id, self.name, None)  # the replay tells nothing either; kept for another
        self._unsure.pop(item.delivery_id, None)
        if entry.get("msg_id") and "error" not in entry:
            return Answer(item.delivery_id, self.name, True, str(entry["msg_id"]))
        # the cid's first push did not go out (JPush would have answered with it), nor did this one
        return Answer(item.delivery_id, self.name, False)

    # ---- HTTP -----------------------------------------------------------------------------------

    async def _cids(self, count: int) -> list[str]:
        """``count`` fresh cids from JPush's pool."""
        out: list[str] = []
        while len(out) < count:
            want = min(_MAX, count - len(out))
            await self._limiter.bucket.acquire(1.0)
            with provider_errors(self.name):
                async with self._session.get(
                    f"{self.config.base_url}/v3/push/cid", params={"count": str(want), "type": "push"},
                    headers={"Authorization": self._auth}, timeout=self._timeout,
                ) as resp:
                    self._note_rate_headers(resp.headers)
                    answer = await resp.json(content_type=None)
            cids = answer.get("cidlist") if isinstance(answer, dict) else None
            if resp.status != 200 or not isinstance(cids, list) or len(cids) < want:
                code, text = _error(answer if isinstance(answer, dict) else {}, resp.status)
                raise ProtocolError(f"{self.name}: no cid pool ({code} {text})", code=code)
            out += [str(c) for c in cids[:want]]
        return out

    async def _post_with_throttle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for wait in range(self.config.max_throttle_waits + 1):
            hold = self._hold_until - time.monotonic()
            if hold > 0:
                await asyncio.sleep(hold)
            status, answer, reset_s = await self._post(path, body)
            if status != 429:
                return status, answer
            backoff = reset_s if reset_s > 0 else 2.0**wait
            if backoff > self.config.max_throttle_wait_s:
                raise ThrottledError("JPush rate window used up", code="2001", retry_after_s=backoff)
            self._hold_until = max(self._hold_until, time.monotonic() + backoff)
        raise ThrottledError("JPush kept answering 429", code="2001", retry_after_s=max(0.0, self._hold_until - time.monotonic()))

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        with provider_errors(self.name):
            async with self._session.post(
                f"{self.config.base_url}{path}", json=body, headers={"Authorization": self._auth}, timeout=self._timeout
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


def _error(answer: Mapping[str, Any], status: int) -> tuple[str, str]:
    error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
    assert isinstance(error, dict)
    return str(error.get("code", f"HTTP_{status}")), str(error.get("message", ""))
