"""Tencent Cloud SMS simulator: SendSms, the status and reply pulls, and the callbacks, API 2021-01-11.

Requests are checked as the API gateway checks them (``tencent_signatures``: TC3-HMAC-SHA256,
timestamp, credential date). POST with a JSON body and GET with the parameters
in the query string (``PhoneNumberSet.0=…``) are both served, as the official SDK can use either.

Request-level errors come back as ``Response.Error`` with HTTP 200 and ``Content-Type`` exactly
``application/json``: the official Python SDK looks for ``Error`` only under that content type (or
``text/plain``), so ``application/json; charset=utf-8`` would turn every error into an empty success.

After a send, each accepted number gets a carrier report after ``receipt_delay_s``: it is queued for
``PullSmsSendStatus`` (each report is handed out once, as Tencent's queue does), kept for
``PullSmsSendStatusByPhoneNumber`` and pushed to ``callback_url`` as the status callback's JSON
array. ``POST /_sim/reply`` makes a phone reply: the reply callback is pushed to
``reply_callback_url`` and queued for ``PullSmsReplyStatus``.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from channels.rate_limit import CHINA_TZ
from channels.simulators._common import Faults, SentRecord
from channels.simulators._sms import SmsSimConfig, SmsSimulator, json_answer, push_json, tencent_templates
from channels.simulators.tencent_signatures import check_tc3_request

__all__ = ["TencentSimConfig", "TencentSimulator"]

_PHONE = re.compile(r"^(?:\+86|0086|86)?(1[3-9]\d{9})$")
_DAY_S = 24 * 3600
_ACTIONS = {
    "SendSms": "_send",
    "PullSmsSendStatus": "_pull_status",
    "PullSmsSendStatusByPhoneNumber": "_pull_status_by_phone",
    "PullSmsReplyStatus": "_pull_replies",
    "PullSmsReplyStatusByPhoneNumber": "_pull_replies_by_phone",
}
#: the exact content type of every answer (see the module docstring)
_JSON = "application/json"


def _json(body: Mapping[str, Any]) -> web.Response:
    return web.Response(body=json.dumps(body, ensure_ascii=False).encode(), headers={"Content-Type": _JSON})


@dataclass(frozen=True, slots=True)
class TencentSimConfig(SmsSimConfig):
    secrets: Mapping[str, str] = field(default_factory=lambda: {"sim-secret-id": "sim-secret-key"})
    sdk_app_id: str = "1400000001"
    #: TemplateId -> body with {1}, {2}… slots
    templates: Mapping[str, str] = field(default_factory=tencent_templates)
    max_param_len: int = 35
    #: Tencent retries a callback that was not answered with HTTP 200 (documented as a few tries)
    callback_retry_delays_s: tuple[float, ...] = (60.0, 300.0, 600.0)
    #: Tencent echoes SessionContext in pulled statuses only once support has enabled it
    session_context_in_pulls: bool = True


@dataclass(slots=True)
class _Sent:
    serial: str
    phone: str  # +86…
    context: str
    sent_at: float
    report: str = ""  # "" until the carrier reports, then SUCCESS or FAIL
    errmsg: str = ""
    received_at: float = 0.0


class TencentSimulator(SmsSimulator[TencentSimConfig]):
    provider = "tencent_sms"

    def __init__(
        self, config: TencentSimConfig | None = None, *, faults: Faults | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        config = config or TencentSimConfig()
        super().__init__(config, config.callback_retry_delays_s, faults=faults, clock=clock)
        self._serials = itertools.count(1)
        self._daily: dict[str, deque[float]] = defaultdict(deque)
        self._by_phone: dict[str, list[_Sent]] = defaultdict(list)
        self._status_queue: deque[_Sent] = deque()
        self._reply_queue: deque[dict[str, Any]] = deque()
        self._replies: list[dict[str, Any]] = []

    @staticmethod
    def phone_key(phone: str) -> str:
        """The +86 form Tencent writes numbers in."""
        m = _PHONE.match(phone.strip())
        return f"+86{m.group(1)}" if m else phone

    @staticmethod
    def _is_ack(status: int, body: bytes) -> bool:
        """Tencent wants HTTP 200 with ``{"result": 0, …}``."""
        answer = json_answer(status, body)
        return isinstance(answer, dict) and answer.get("result") == 0

    def _error(self, code: str, message: str = "") -> web.Response:
        if code.startswith("HTTP_"):
            return web.Response(status=int(code[5:]), text="simulated failure")
        return _json({"Response": {"Error": {"Code": code, "Message": message or code}, "RequestId": str(uuid.uuid4())}})

    # ---- gateway --------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("POST", "GET"):
            return self._error("InvalidParameter", "only POST and GET are supported")
        payload = await request.read()
        problem = check_tc3_request(request, payload, self.config.secrets, self.clock(), actions=_ACTIONS)
        if problem:
            return self._error(*problem)
        action = request.headers["X-TC-Action"]
        if request.method == "GET":
            body: Any = _unflatten(dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True)))
        else:
            try:
                body = json.loads(payload or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError):
                return self._error("InvalidParameter", "body is not JSON")
        body = body if isinstance(body, dict) else {}
        if body.get("SmsSdkAppId") != self.config.sdk_app_id:
            return self._error("InvalidParameterValue.SdkAppIdNotExist", "SmsSdkAppId does not exist")
        # Faults are for sends: the pulls are how a test settles what a fault left unknown.
        fault = await self.inject() if action == "SendSms" else None
        if fault is not None and fault != "TIMEOUT":
            return self._error(fault, "simulated")
        answer = getattr(self, _ACTIONS[action])(body)
        if fault == "TIMEOUT":
            await self.hang()
        return answer

    # ---- SendSms --------------------------------------------------------------------------------

    def _send(self, body: dict[str, Any]) -> web.Response:
        phones = body.get("PhoneNumberSet")
        params = body.get("TemplateParamSet", [])
        if not isinstance(phones, list) or not phones or not body.get("TemplateId"):
            return self._error("MissingParameter", "PhoneNumberSet and TemplateId are required")
        if len(phones) > 200:
            return self._error("LimitExceeded.PhoneNumberCountLimit", "at most 200 numbers per call")
        if body.get("SignName") not in self.config.sign_names:
            return self._error("FailedOperation.SignatureIncorrectOrUnapproved", "signature not approved")
        template = self.config.templates.get(str(body["TemplateId"]))
        if template is None:
            return self._error("FailedOperation.TemplateIncorrectOrUnapproved", "template not approved")
        slots = len(set(re.findall(r"\{(\d+)\}", template)))
        if params is None:
            params = []
        if not isinstance(params, list) or len(params) != slots or not all(isinstance(p, str) for p in params):
            return self._error("InvalidParameterValue.TemplateParameterFormatError", "TemplateParamSet does not fit")
        if any(len(p) > self.config.max_param_len for p in params):
            return self._error("InvalidParameterValue.TemplateParameterLengthLimit", "a parameter is too long")
        context = str(body.get("SessionContext") or "")
        if len(context.encode()) > 512:
            return self._error("InvalidParameterValue", "SessionContext is longer than 512 bytes")
        text = f"【{body['SignName']}】" + re.sub(r"\{(\d+)\}", lambda m: params[int(m.group(1)) - 1], template)
        statuses = [self._one(str(p), text, str(body["TemplateId"]), params, context) for p in phones]
        return _json({"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}})

    def _one(self, phone: str, text: str, template: str, params: list[str], context: str) -> dict[str, Any]:
        m = _PHONE.match(phone)
        e164 = f"+86{m.group(1)}" if m else phone
        status: dict[str, Any] = {"SerialNo": "", "PhoneNumber": e164, "Fee": 0, "SessionContext": context, "IsoCode": "CN"}
        code = "Ok"
        if not m:
            code = "InvalidParameterValue.IncorrectPhoneNumber"
        elif e164 in self.send_scenarios:
            code = self.send_scenarios[e164]
        else:
            window = self._daily[e164]
            now = self.clock()
            while window and window[0] <= now - _DAY_S:
                window.popleft()
            if len(window) >= self.config.daily_limit_per_phone:
                code = "LimitExceeded.PhoneNumberDailyLimit"
            else:
                window.append(now)
        if code != "Ok":
            return {**status, "Code": code, "Message": code}
        serial = f"5000:{next(self._serials):028d}"
        fee = 1 if len(text) <= 70 else -(-len(text) // 67)
        named = {str(i + 1): v for i, v in enumerate(params)}
        now = self.clock()
        self.record(SentRecord(self.provider, serial, m.group(1), context, template, named, text, now))
        sent = _Sent(serial, e164, context, now)
        self._by_phone[e164].append(sent)
        self._reports.add(sent, self.config.receipt_delay_s * self.config.time_factor)
        return {**status, "SerialNo": serial, "Fee": fee, "Code": "Ok", "Message": "send success"}

    # ---- carrier reports ------------------------------------------------------------------------

    def _settle(self, s: _Sent, now: float) -> dict[str, Any]:
        """The carrier's report on ``s`` (a receipt scenario fails it): queued for the pulls, and the
        status callback's item saying so."""
        failed = self.receipt_scenarios.get(s.phone)
        s.report, s.errmsg, s.received_at = ("FAIL", failed, now) if failed else ("SUCCESS", "DELIVRD", now)
        self._status_queue.append(s)
        return _callback_item(s)

    def _pulled(self, s: _Sent) -> dict[str, Any]:
        return {
            "UserReceiveTime": int(s.received_at),
            "CountryCode": "86",
            "SubscriberNumber": s.phone[3:],
            "PhoneNumber": s.phone,
            "SerialNo": s.serial,
            "ReportStatus": s.report,
            "Description": s.errmsg,
            "SessionContext": s.context if self.config.session_context_in_pulls else "",
        }

    def _limit(self, body: dict[str, Any]) -> int | None:
        limit = body.get("Limit")
        if isinstance(limit, str) and limit.isdigit():
            limit = int(limit)
        return limit if isinstance(limit, int) and 1 <= limit <= 100 else None

    def _pull_status(self, body: dict[str, Any]) -> web.Response:
        limit = self._limit(body)
        if limit is None:
            return self._error("InvalidParameterValue", "Limit must be 1 to 100")
        out = [self._pulled(self._status_queue.popleft()) for _ in range(min(limit, len(self._status_queue)))]
        return _json({"Response": {"PullSmsSendStatusSet": out, "RequestId": str(uuid.uuid4())}})

    def _window(self, body: dict[str, Any]) -> tuple[str, float, float, int] | str:
        limit = self._limit(body)
        phone = self.phone_key(str(body.get("PhoneNumber", "")))
        try:
            begin = float(body.get("BeginTime"))  # type: ignore[arg-type]
            end = float(body.get("EndTime") or self.clock())
        except (TypeError, ValueError):
            return "BeginTime is required (UNIX seconds)"
        if limit is None or not _PHONE.match(phone):
            return "PhoneNumber (E.164) and Limit (1 to 100) are required"
        if begin < self.clock() - 7 * _DAY_S:
            return "BeginTime reaches back more than 7 days"
        return phone, begin, end, limit

    def _pull_status_by_phone(self, body: dict[str, Any]) -> web.Response:
        window = self._window(body)
        if isinstance(window, str):
            return self._error("InvalidParameterValue", window)
        phone, begin, end, limit = window
        rows = [s for s in self._by_phone.get(phone, []) if s.report and begin <= s.sent_at <= end]
        out = [self._pulled(s) for s in rows[:limit]]
        return _json({"Response": {"PullSmsSendStatusSet": out, "RequestId": str(uuid.uuid4())}})

    def _pull_replies(self, body: dict[str, Any]) -> web.Response:
        limit = self._limit(body)
        if limit is None:
            return self._error("InvalidParameterValue", "Limit must be 1 to 100")
        out = [self._reply_queue.popleft() for _ in range(min(limit, len(self._reply_queue)))]
        return _json({"Response": {"PullSmsReplyStatusSet": out, "RequestId": str(uuid.uuid4())}})

    def _pull_replies_by_phone(self, body: dict[str, Any]) -> web.Response:
        window = self._window(body)
        if isinstance(window, str):
            return self._error("InvalidParameterValue", window)
        phone, begin, end, limit = window
        rows = [r for r in self._replies if r["PhoneNumber"] == phone and begin <= r["ReplyTime"] <= end]
        return _json({"Response": {"PullSmsReplyStatusSet": rows[:limit], "RequestId": str(uuid.uuid4())}})

    # ---- replies (up-messages) ------------------------------------------------------------------

    def reply(self, phone: str, text: str, *, sign_name: str = "", extend: str = "") -> dict[str, Any]:
        """A handset replies ``text``: push the reply callback and queue it for the reply pulls."""
        e164 = self.phone_key(phone)
        if not _PHONE.match(e164):
            raise ValueError(f"not a mainland mobile number: {phone!r}")
        now = int(self.clock())
        sign = sign_name or min(self.config.sign_names)
        callback = {"extend": extend, "mobile": e164[3:], "nationcode": "86", "sign": sign, "text": text, "time": now}
        pulled = {
            "ExtendCode": extend, "CountryCode": "86", "PhoneNumber": e164, "SignName": sign,
            "ReplyContent": text, "ReplyTime": now, "SubscriberNumber": e164[3:],
        }  # fmt: skip
        self._replies.append(pulled)
        self._reply_queue.append(pulled)
        if self.config.reply_callback_url:
            push_json(self.pusher, self.config.reply_callback_url, callback, self._is_ack)
        return callback


def _callback_item(s: _Sent) -> dict[str, Any]:
    return {
        "user_receive_time": datetime.fromtimestamp(s.received_at, CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S"),
        "nationcode": "86",
        "mobile": s.phone[3:],
        "report_status": s.report,
        "errmsg": s.errmsg,
        "description": "用户短信送达成功" if s.report == "SUCCESS" else "用户短信接收失败",
        "sid": s.serial,
    }


def _unflatten(flat: Mapping[str, str]) -> dict[str, Any]:
    """GET parameters as the SDK flattens them (``PhoneNumberSet.0=…``) back into the JSON shape."""
    out: dict[str, Any] = {}
    lists: dict[str, dict[int, str]] = defaultdict(dict)
    for key, value in flat.items():
        name, _, index = key.partition(".")
        if index.isdigit():
            lists[name][int(index)] = value
        else:
            out[key] = value
    for name, items in lists.items():
        out[name] = [items[i] for i in sorted(items)]
    return out
