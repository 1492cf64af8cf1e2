"""JPush v3 push simulator: Basic auth, POST only, body shape, audience and payload limits, known
registration ids (1011 when none match) and the per-AppKey rate window with ``X-Rate-Limit-*``
headers on every answer (429 + code 2001 when exceeded). The window is 60 s scaled by ``time_factor``.

The report API is served on the same server (JPush's own host is report.jpush.cn; the paths do not
overlap): ``GET /v3/received`` and ``/v3/received/detail`` (delivery counts per ``msg_id``, at most
100 ids) and ``POST /v3/status/message`` (per registration id: 0 delivered, 1 not delivered, 2 not
an id of this app, 3 not a target of that message). A device counts as delivered
``receipt_delay_s`` after the push unless it is in ``undelivered_ids`` (offline for good).

The official Python SDK sends ``content-type: application/json;charset:utf-8`` (a colon, not
``=``): the body is read as JSON whatever the content type says, as JPush does.

Also the idempotency key and the batch API: ``GET /v3/push/cid`` hands out cids (``{appkey}-{uuid}``);
a push under a cid already pushed answers with the first push's result and pushes nothing (for a day);
``POST /v3/push/batch/regid/single`` takes up to 1000 personal pushes keyed by cid and answers per cid
(``msg_id``, or ``error``), or 2006 when the AppKey is not VIP (``batch_single=False``).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from channels.simulators._common import Faults, SentRecord, Simulator, json_response

__all__ = ["JPushSimConfig", "JPushSimulator"]

_STATUS = {
    "1000": 500, "1001": 405, "1002": 400, "1003": 400, "1004": 401, "1005": 400, "1008": 400, "1011": 400,
    "1020": 404, "1030": 503, "2001": 429, "2002": 429, "2003": 403, "2004": 403, "2005": 403, "2006": 403,
    "2007": 403, "2008": 429,
}  # fmt: skip
_MESSAGES = {
    "1000": "系统内部错误", "1001": "只支持 HTTP Post 方法", "1002": "缺少了必须的参数", "1003": "参数值不合法",
    "1004": "验证失败", "1005": "消息体太大", "1011": "没有满足条件的推送目标", "1030": "内部服务超时",
    "2001": "Rate limit exceeded", "2006": "非 VIP 用户", "2007": "无权调用此接口",
}  # fmt: skip
_REG_ID = re.compile(r"^[0-9a-zA-Z]{8,64}$")
_CID_DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class JPushSimConfig:
    apps: Mapping[str, str] = field(default_factory=lambda: {"simappkey000000000000000": "simmastersecret000000000"})
    #: ids that no device holds (uninstalled apps); any other well-formed id is a live device
    unknown_ids: frozenset[str] = frozenset()
    pushes_per_window: int = 600
    window_s: float = 60.0
    time_factor: float = 1.0
    #: ids of devices that accept the push but never receive it (switched off, app killed)
    undelivered_ids: frozenset[str] = frozenset()
    #: ids of iOS devices (counted as APNs in the received report); all others are Android
    ios_ids: frozenset[str] = frozenset()
    receipt_delay_s: float = 2.0
    #: the AppKey may use batch single push (a VIP feature); False answers 2006
    batch_single: bool = True


class JPushSimulator(Simulator[JPushSimConfig]):
    provider = "jpush"

    def __init__(
        self, config: JPushSimConfig | None = None, *, faults: Faults | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(config or JPushSimConfig(), faults=faults, clock=clock)
        self._msg_ids = itertools.count(1_828_256_757)
        self._window: dict[str, tuple[float, int]] = {}  # app_key -> (window start, pushes)
        #: cid -> (issued at, msg_id of its first successful push or "")
        self._cids: dict[str, tuple[float, str]] = {}
        #: monotonic times of accepted pushes, for rate assertions
        self.push_times: list[float] = []
        self.unknown_ids: set[str] = set(self.config.unknown_ids)
        self.undelivered_ids: set[str] = set(self.config.undelivered_ids)
        #: msg_id -> (monotonic push time, the registration ids it went to)
        self._pushed: dict[str, tuple[float, list[str]]] = {}
        self.app.router.add_route("*", "/v3/push", self._push)
        self.app.router.add_route("*", "/v3/push/validate", self._push)
        self.app.router.add_get("/v3/received", self._received)
        self.app.router.add_get("/v3/received/detail", self._received_detail)
        self.app.router.add_post("/v3/status/message", self._status_message)

        self.app.router.add_route("*", "/v3/push/cid", self._cid_pool)
        self.app.router.add_route("*", "/v3/push/batch/regid/single", self._batch)

    def set_scenario(self, recipient: str, what: str) -> None:
        """``unknown`` (no such device: 1011 when nothing else is targeted) or ``undelivered``."""
        if what == "unknown":
            self.unknown_ids.add(recipient)
        elif what == "undelivered":
            self.undelivered_ids.add(recipient)
        else:
            raise ValueError(f"JPush scenario must be unknown or undelivered, not {what!r}")

    # ---- report API -----------------------------------------------------------------------------

    def _delivered(self, msg_id: str) -> list[str]:
        pushed_at, ids = self._pushed[msg_id]
        if time.monotonic() - pushed_at < self.config.receipt_delay_s * self.config.time_factor:
            return []
        return [r for r in ids if r not in self.undelivered_ids]

    def _report_ids(self, request: web.Request) -> list[str] | web.Response:
        if self._app_key(request) is None:
            return self._error("1004")
        ids = [m for m in request.query.get("msg_ids", "").split(",") if m]
        if not ids or len(ids) > 100 or not all(m.isdigit() for m in ids):
            return self._error("1003", message="msg_ids: 1 to 100 numeric ids, comma separated")
        return ids

    def _counts(self, msg_id: str) -> tuple[int, int, int] | None:
        """(received through JPush's own channel, received on iOS, sent to iOS devices) of one push so far;
        None for an id this AppKey never pushed."""
        if msg_id not in self._pushed:
            return None
        got = self._delivered(msg_id)
        ios = sum(1 for r in got if r in self.config.ios_ids)
        sent_ios = sum(1 for r in self._pushed[msg_id][1] if r in self.config.ios_ids)
        return len(got) - ios, ios, sent_ios

    async def _report(
        self, request: web.Request, row: Callable[[str, tuple[int, int, int] | None], dict[str, Any]]
    ) -> web.Response:
        ids = self._report_ids(request)
        if isinstance(ids, web.Response):
            return ids
        return json_response([row(msg_id, self._counts(msg_id)) for msg_id in ids])

    async def _received(self, request: web.Request) -> web.Response:
        return await self._report(request, _received_row)

    async def _received_detail(self, request: web.Request) -> web.Response:
        return await self._report(request, _detail_row)

    async def _status_message(self, request: web.Request) -> web.Response:
        if self._app_key(request) is None:
            return self._error("1004")
        try:
            body = json.loads(await request.read())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._error("1003", message="body is not JSON")
        if not isinstance(body, dict):
            return self._error("1003", message="body is not a JSON object")
        msg_id, reg_ids = str(body.get("msg_id", "")), body.get("registration_ids")
        if not msg_id.isdigit() or not isinstance(reg_ids, list) or not 1 <= len(reg_ids) <= 1000:
            return self._error("1002", message="msg_id and 1 to 1000 registration_ids are required")
        targets = set(self._pushed[msg_id][1]) if msg_id in self._pushed else set()
        delivered = set(self._delivered(msg_id)) if msg_id in self._pushed else set()
        out: dict[str, dict[str, int]] = {}
        for reg_id in map(str, reg_ids):
            if reg_id in self.unknown_ids or not _REG_ID.match(reg_id):
                status = 2
            elif reg_id not in targets:
                status = 3
            else:
                status = 0 if reg_id in delivered else 1
            out[reg_id] = {"status": status}
        return json_response(out)

    def _error(self, code: str, headers: Mapping[str, str] | None = None, message: str = "") -> web.Response:
        status = _STATUS.get(code, 400)
        return json_response({"error": {"code": int(code), "message": message or _MESSAGES.get(code, code)}}, status, headers)

    def _caller(self, request: web.Request, method: str) -> str | web.Response:
        """The AppKey of a ``method`` call, or the error answer to a wrong method (1001) or credentials (1004)."""
        if request.method != method:
            return self._error("1001")
        app_key = self._app_key(request)
        return self._error("1004") if app_key is None else app_key

    def _app_key(self, request: web.Request) -> str | None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Basic":
            return None
        try:
            key, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return key if self.config.apps.get(key) == secret else None

    def _rate_headers(self, app_key: str) -> tuple[dict[str, str], bool]:
        """Count this call in the AppKey's window; return the headers and whether it is over the limit."""
        window = self.config.window_s * self.config.time_factor
        now = time.monotonic()
        start, count = self._window.get(app_key, (now, 0))
        if now - start >= window:
            start, count = now, 0
        count += 1
        self._window[app_key] = (start, count)
        reset = max(0.0, start + window - now)
        # Real JPush says whole seconds; scaled windows need fractions or clients would overwait.
        reset_text = str(math.ceil(reset)) if self.config.time_factor == 1 else f"{reset:.3f}"
        limit = self.config.pushes_per_window
        headers = {
            "X-Rate-Limit-Limit": str(limit),
            "X-Rate-Limit-Remaining": str(max(0, limit - count)),
            "X-Rate-Limit-Reset": reset_text,
        }
        return headers, count > limit

    def _cid_state(self, cid: Any) -> tuple[float, str] | None:
        """The cid's record while it is valid (a day, scaled); None for a cid never issued or expired."""
        found = self._cids.get(cid) if isinstance(cid, str) else None
        if found is None or time.monotonic() - found[0] > _CID_DAY_S * self.config.time_factor:
            return None
        return found

    async def _cid_pool(self, request: web.Request) -> web.StreamResponse:
        app_key = self._caller(request, "GET")
        if isinstance(app_key, web.Response):
            return app_key
        try:
            count = int(request.query.get("count", "1"))
        except ValueError:
            return self._error("1003", message="count must be a number")
        if not 1 <= count <= 1000:
            return self._error("1003", message="count must be 1-1000")
        now = time.monotonic()
        cids = [f"{app_key}-{uuid.uuid4()}" for _ in range(count)]
        self._cids.update((cid, (now, "")) for cid in cids)
        return json_response({"cidlist": cids})

    async def _admit(
        self, request: web.Request, *, batch: bool = False
    ) -> web.StreamResponse | tuple[dict[str, str], str | None, Any]:
        """What every push call goes through: method, authentication, the rate window, (batch single
        push: the AppKey's permission), injected faults and a JSON body. An error answer, or the rate
        headers, the fault to apply after the push ("TIMEOUT") and the body."""
        app_key = self._caller(request, "POST")
        if isinstance(app_key, web.Response):
            return app_key
        headers, over = self._rate_headers(app_key)
        if over:
            return self._error("2001", headers)
        if batch and not self.config.batch_single:
            return self._error("2006", headers)
        fault = await self.inject()
        if fault is not None and fault != "TIMEOUT":
            return self._error(fault, headers, "simulated")
        try:
            body = json.loads(await request.read())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._error("1003", headers, "body is not JSON")
        return headers, fault, body

    async def _push(self, request: web.Request) -> web.StreamResponse:
        admitted = await self._admit(request)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        headers, fault, body = admitted
        problem = self._check(body)
        if problem:
            return self._error(problem, headers)
        sendno = str(body.get("options", {}).get("sendno", 0))
        cid = body.get("cid")
        if cid is not None:
            state = self._cid_state(cid)
            if state is None:
                return self._error("1003", headers, "cid 非法")
            if state[1]:  # pushed before under this cid: its first result, nothing pushed again
                return json_response({"sendno": sendno, "msg_id": state[1]}, 200, headers)
        ids = body["audience"]["registration_id"]
        live = [r for r in ids if r not in self.unknown_ids]
        if not live:
            return self._error("1011", headers)
        msg_id = str(next(self._msg_ids))
        if not request.path.endswith("/validate"):
            self.push_times.append(time.monotonic())
            if cid is not None:
                self._cids[cid] = (self._cids[cid][0], msg_id)
            for reg_id in live:
                self.record(self._sent(msg_id, reg_id, cid or sendno, body.get("notification")))
            self._pushed[msg_id] = (time.monotonic(), live)
        answer = json_response({"sendno": sendno, "msg_id": msg_id}, 200, headers)
        if fault == "TIMEOUT":
            await self.hang()
        return answer

    async def _batch(self, request: web.Request) -> web.StreamResponse:
        admitted = await self._admit(request, batch=True)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        headers, fault, body = admitted
        pushlist = body.get("pushlist") if isinstance(body, dict) else None
        if not isinstance(pushlist, dict) or not pushlist:
            return self._error("1002", headers, "pushlist is required")
        if len(pushlist) > 1000:
            return self._error("1003", headers, "at most 1000 cids per call")
        answer: dict[str, Any] = {}
        for cid, push in pushlist.items():
            answer[cid] = self._one_personal(cid, push)
        self.push_times.append(time.monotonic())
        response = json_response(answer, 200, headers)
        if fault == "TIMEOUT":
            await self.hang()
        return response

    def _one_personal(self, cid: str, push: Any) -> dict[str, Any]:
        def error(code: str, message: str = "") -> dict[str, Any]:
            return {"error": {"code": int(code), "message": message or _MESSAGES.get(code, code)}}

        state = self._cid_state(cid)
        if state is None:
            return error("1003", "cid 非法")
        if state[1]:
            return {"msg_id": state[1]}
        if not isinstance(push, dict) or "platform" not in push or "target" not in push:
            return error("1002")
        if "notification" not in push and "message" not in push:
            return error("1002")
        target = push["target"]
        if not isinstance(target, str) or not _REG_ID.match(target):
            return error("1003", "target is not a registration id")
        problem = self._payload_problem(push)
        if problem:
            return error(problem)
        if target in self.unknown_ids:
            return error("1011")
        msg_id = str(next(self._msg_ids))
        self._cids[cid] = (state[0], msg_id)
        self.record(self._sent(msg_id, target, cid, push.get("notification")))
        self._pushed[msg_id] = (time.monotonic(), [target])
        return {"msg_id": msg_id}

    def _sent(self, msg_id: str, reg_id: str, delivery_id: str, note: Any) -> SentRecord:
        note = note if isinstance(note, dict) else {}
        android = note.get("android", {}) if isinstance(note.get("android"), dict) else {}
        extras = android.get("extras", {}) if isinstance(android.get("extras"), dict) else {}
        text = f"{android.get('title', '')}: {note.get('alert', '')}"
        return SentRecord(self.provider, msg_id, reg_id, delivery_id, "", {k: str(v) for k, v in extras.items()}, text, self.clock())

    def _check(self, body: Any) -> str | None:
        if not isinstance(body, dict) or "platform" not in body or "audience" not in body:
            return "1002"
        if "notification" not in body and "message" not in body:
            return "1002"
        audience = body["audience"]
        if not isinstance(audience, dict) or not isinstance(audience.get("registration_id"), list):
            return "1003"  # this simulator only serves registration_id audiences
        ids = audience["registration_id"]
        if not ids or len(ids) > 1000 or not all(isinstance(r, str) and _REG_ID.match(r) for r in ids):
            return "1003"
        return self._payload_problem(body)

    def _payload_problem(self, body: dict[str, Any]) -> str | None:
        options = body.get("options", {})
        if not isinstance(options, dict):
            return "1003"
        sendno = options.get("sendno", 0)
        ttl = options.get("time_to_live", 86400)
        if not isinstance(sendno, int) or not isinstance(ttl, int) or not 0 <= ttl <= 864000:
            return "1003"
        note = body.get("notification", {})
        if isinstance(note, dict):
            size = lambda part: len(json.dumps(note.get(part, {}), ensure_ascii=False).encode())  # noqa: E731
            if size("ios") > 2000 or size("android") + len(json.dumps(body.get("message", {})).encode()) > 4000:
                return "1005"
        return None


def _received_row(msg_id: str, counts: tuple[int, int, int] | None) -> dict[str, Any]:
    """A ``/v3/received`` row: every count null for an unknown msg_id."""
    if counts is None:
        return {"msg_id": msg_id, "android_received": None, "ios_apns_sent": None,
                "ios_apns_received": None, "ios_msg_received": None, "wp_mpns_sent": None}  # fmt: skip
    received, ios, sent_ios = counts
    return {"msg_id": msg_id, "android_received": received, "ios_apns_sent": sent_ios,
            "ios_apns_received": ios, "ios_msg_received": 0, "wp_mpns_sent": 0}  # fmt: skip


def _detail_row(msg_id: str, counts: tuple[int, int, int] | None) -> dict[str, Any]:
    """A ``/v3/received/detail`` row: zeros for an unknown msg_id."""
    received, ios, sent_ios = counts or (0, 0, 0)
    return {
        "msg_id": msg_id, "jpush_received": received, "android_pns_sent": 0, "android_pns_received": 0,
        "ios_apns_sent": sent_ios, "ios_apns_received": ios, "ios_msg_received": 0, "live_acivity_sent": 0,
        "live_acivity_received": 0, "wp_mpns_sent": 0, "quickapp_jpush_received": 0, "quickapp_pns_sent": 0,
        "hmos_hmpns_received": 0, "hmos_hmpns_sent": 0,
    }  # fmt: skip
