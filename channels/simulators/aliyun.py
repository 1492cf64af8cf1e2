"""Aliyun dysmsapi simulator: SendSms, SendBatchSms, QuerySendDetails and SmsReport pushes.

It checks what the real gateway checks, in the same order, and answers with the real codes: the V1
or V3 signature (GET or POST), Timestamp within 15 minutes, nonce reuse within 15 minutes and the
access key (``aliyun_signatures``), the Action, the sign and template registry, TemplateParam values (strings, 1-35 characters, no URL),
phone formats, batch sizes (1000 / 100) and the notification flow control of 50 a day per sign +
template + phone (rolling 24 h).

``POST /_sim/reply`` ``{"phone": …, "text": "TD"}`` makes a handset answer: the up-message is pushed
to ``reply_callback_url`` as Aliyun's SmsUp HTTP batch push (a JSON array of ``phone_number``,
``send_time``, ``content``, ``sign_name``, ``dest_code``, ``sequence_id``), retried like receipts.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from channels.rate_limit import CHINA_TZ
from channels.simulators._common import Faults, SentRecord, json_response
from channels.simulators._sms import SmsSimConfig, SmsSimulator, aliyun_templates, json_answer, push_json
from channels.simulators.aliyun_signatures import AliyunSignatures

__all__ = ["AliyunSimConfig", "AliyunSimulator"]

_GATEWAY_STATUS = {
    "SignatureDoesNotMatch": 400,
    "InvalidAccessKeyId.NotFound": 404,
    "InvalidAccessKeyId.Inactive": 400,
    "InvalidTimeStamp.Format": 400,
    "InvalidTimeStamp.Expired": 400,
    "SignatureNonceUsed": 400,
    "InvalidSignatureMethod": 400,
    "Throttling.User": 400,
    "InvalidApi.NotFound": 404,
    "InvalidAuthorization": 400,
    "IncompleteSignature": 400,
}
_MESSAGES = {
    "isv.BUSINESS_LIMIT_CONTROL": "触发天级流控Permits:50",
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.MOBILE_COUNT_OVER_LIMIT": "手机号码数量超过限制",
    "isv.TEMPLATE_MISSING_PARAMETERS": "模板缺少变量",
    "isv.INVALID_JSON_PARAM": "JSON参数不合法，只接受字符串值",
    "isv.PARAM_LENGTH_LIMIT": "参数超出长度限制",
    "isv.PARAM_NOT_SUPPORT_URL": "不支持URL",
    "isv.SMS_TEMPLATE_ILLEGAL": "短信模板不合法",
    "isv.SMS_SIGNATURE_ILLEGAL": "短信签名不合法",
    "isp.SYSTEM_ERROR": "系统错误",
    "SignatureDoesNotMatch": "Specified signature is not matched with our calculation.",
    "InvalidAccessKeyId.NotFound": "Specified access key is not found.",
    "InvalidTimeStamp.Expired": "用户时间和服务器时间超过15分钟",
    "SignatureNonceUsed": "Specified signature nonce was used already.",
}
_ACTIONS = {"SendSms": "_send_sms", "SendBatchSms": "_send_batch", "QuerySendDetails": "_query"}
_SEND_ACTIONS = frozenset({"SendSms", "SendBatchSms"})
_PHONE = re.compile(r"^(?:\+86|0086|86)?(1[3-9]\d{9})$")
_URL = re.compile(r"(?i)(?:[a-z][a-z0-9+.-]*://|www\.|\b[a-z0-9-]+\.(?:cn|com|net|org|gov)\b)")
_DAY_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class AliyunSimConfig(SmsSimConfig):
    access_keys: Mapping[str, str] = field(default_factory=lambda: {"sim-access-key": "sim-access-secret"})
    #: TemplateCode -> template body with ${var} placeholders
    templates: Mapping[str, str] = field(default_factory=aliyun_templates)
    daily_limit_per_phone: int = 50
    #: Aliyun pushes a report again after 1, 5 and 10 minutes until it is acknowledged
    receipt_retry_delays_s: tuple[float, ...] = (60.0, 300.0, 600.0)
    #: the account's up-message port extension (dest_code), as configured on the sign
    dest_code: str = "1069000000"


@dataclass(slots=True)
class _Sent:
    record: SentRecord
    biz_id: str
    template_code: str
    out_id: str
    send_time: float
    status: int = 1  # 1 waiting, 2 failed, 3 delivered
    err_code: str = ""
    receive_time: float = 0.0


def _fmt(ts: float) -> str:
    return datetime.fromtimestamp(ts, CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


class AliyunSimulator(SmsSimulator[AliyunSimConfig]):
    provider = "aliyun_sms"

    def __init__(
        self, config: AliyunSimConfig | None = None, *, faults: Faults | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        config = config or AliyunSimConfig()
        super().__init__(config, config.receipt_retry_delays_s, faults=faults, clock=clock)
        self._signatures = AliyunSignatures(lambda: self.config.access_keys, self.clock)
        self._flow: dict[tuple[str, str, str], deque[float]] = defaultdict(deque)
        self._ids = itertools.count(900_000_000_000)
        self._sent_by_phone: dict[str, list[_Sent]] = defaultdict(list)
        self._sequence = itertools.count(1)

    @staticmethod
    def phone_key(phone: str) -> str:
        """The 11-digit mainland number, as Aliyun writes it."""
        m = _PHONE.match(phone.strip())
        return m.group(1) if m else phone

    @staticmethod
    def _is_ack(status: int, body: bytes) -> bool:
        """Aliyun checks only HTTP 200 and that ``code`` is numeric."""
        answer = json_answer(status, body)
        return isinstance(answer, dict) and isinstance(answer.get("code"), int)

    def reply(self, phone: str, text: str, *, sign_name: str = "") -> list[dict[str, Any]]:
        """A handset replies ``text``: push it as an SmsUp batch to ``reply_callback_url``."""
        local = _PHONE.match(phone.strip())
        if not local:
            raise ValueError(f"not a mainland mobile number: {phone!r}")
        item = {
            "phone_number": local.group(1),
            "send_time": _fmt(self.clock()),
            "content": text,
            "sign_name": sign_name or min(self.config.sign_names),
            "dest_code": self.config.dest_code,
            "sequence_id": next(self._sequence),
        }
        if self.config.reply_callback_url:
            push_json(self.pusher, self.config.reply_callback_url, [item], self._is_ack)
        return [item]

    # ---- gateway checks -------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        # The official SDKs put every parameter in the query string, even on a POST with an empty
        # body; form posts put them in the body. The gateway reads both, and signs over both.
        raw = await request.read()
        params = dict(request.query)
        if raw and request.content_type == "application/x-www-form-urlencoded":
            params.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("ACS3-"):
            problem, action, version = self._signatures.check_v3(request, raw, authorization)
        else:
            problem = self._signatures.check_v1(request.method, params)
            action, version = params.get("Action", ""), params.get("Version", "")
        if problem:
            return self._error(*problem)
        if action not in _ACTIONS or version != "2017-05-25":
            return self._error("InvalidApi.NotFound")
        # Faults are for sends: the receipt query is how a test settles what a fault left unknown.
        fault = await self.inject() if action in _SEND_ACTIONS else None
        if fault is not None and fault != "TIMEOUT":
            return self._error(fault)
        answer = getattr(self, _ACTIONS[action])(params)
        if fault == "TIMEOUT":
            await self.hang()
        return answer

    def _error(self, code: str, message: str = "") -> web.Response:
        if code.startswith("HTTP_"):
            status = int(code[5:])
            name = "ServiceUnavailable" if status == 503 else "InternalError"
            return json_response({"RequestId": self._request_id(), "Code": name, "Message": "simulated failure"}, status)
        status = _GATEWAY_STATUS.get(code, 400 if code.startswith("Missing") else 200)
        body = {"RequestId": self._request_id(), "Code": code, "Message": message or _MESSAGES.get(code, code)}
        if status != 200:
            body["HostId"] = "dysmsapi.aliyuncs.com"
        return json_response(body, status)

    def _request_id(self) -> str:
        n = next(self._ids)
        return f"{n:08X}-B967-440B-8683-{n:012X}"

    # ---- actions --------------------------------------------------------------------------------

    def _check_message(self, phone: str, sign: str, template: str, param_json: Any) -> str | None:
        if sign not in self.config.sign_names:
            return "isv.SMS_SIGNATURE_ILLEGAL"
        body = self.config.templates.get(template)
        if body is None:
            return "isv.SMS_TEMPLATE_ILLEGAL"
        if not isinstance(param_json, dict) or not all(isinstance(v, str) for v in param_json.values()):
            return "isv.INVALID_JSON_PARAM"
        if any(var not in param_json for var in re.findall(r"\$\{(\w+)\}", body)):
            return "isv.TEMPLATE_MISSING_PARAMETERS"
        for value in param_json.values():
            if not 1 <= len(value) <= 35:
                return "isv.PARAM_LENGTH_LIMIT"
            if _URL.search(value):
                return "isv.PARAM_NOT_SUPPORT_URL"
        if not _PHONE.match(phone):
            return "isv.MOBILE_NUMBER_ILLEGAL"
        if self.phone_key(phone) in self.send_scenarios:
            return self.send_scenarios[self.phone_key(phone)]
        window = self._flow[(sign, template, phone)]
        now = self.clock()
        while window and window[0] <= now - _DAY_S:
            window.popleft()
        if len(window) >= self.config.daily_limit_per_phone:
            return "isv.BUSINESS_LIMIT_CONTROL"
        return None

    def _accept(self, phone: str, sign: str, template: str, params: dict[str, str], out_id: str, biz_id: str) -> None:
        local = _PHONE.match(phone)
        phone = local.group(1) if local else phone
        now = self.clock()
        self._flow[(sign, template, phone)].append(now)
        text = f"【{sign}】" + re.sub(r"\$\{(\w+)\}", lambda m: params.get(m.group(1), ""), self.config.templates[template])
        rec = SentRecord(self.provider, biz_id, phone, out_id, template, params, text, now)
        sent = _Sent(rec, biz_id, template, out_id, now)
        self._sent_by_phone[phone].append(sent)
        self.record(rec)
        self._reports.add(sent, self.config.receipt_delay_s * self.config.time_factor)

    def _ok(self, biz_id: str) -> web.Response:
        return json_response({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": self._request_id()})

    def _send_sms(self, p: dict[str, str]) -> web.Response:
        if not p.get("PhoneNumbers") or not p.get("SignName") or not p.get("TemplateCode"):
            return self._error("isv.INVALID_PARAMETERS")
        phones = p["PhoneNumbers"].split(",")
        if len(phones) > 1000:
            return self._error("isv.MOBILE_COUNT_OVER_LIMIT")
        try:
            values = json.loads(p.get("TemplateParam") or "{}")
        except json.JSONDecodeError:
            return self._error("isv.INVALID_JSON_PARAM")
        for phone in phones:
            problem = self._check_message(phone, p["SignName"], p["TemplateCode"], values)
            if problem:
                return self._error(problem)
        biz_id = f"{next(self._ids)}^0"
        for phone in phones:
            self._accept(phone, p["SignName"], p["TemplateCode"], values, p.get("OutId", ""), biz_id)
        return self._ok(biz_id)

    def _send_batch(self, p: dict[str, str]) -> web.Response:
        try:
            phones = json.loads(p.get("PhoneNumberJson", ""))
            signs = json.loads(p.get("SignNameJson", ""))
            values = json.loads(p.get("TemplateParamJson") or "null")
        except json.JSONDecodeError:
            return self._error("isv.INVALID_JSON_PARAM")
        if not isinstance(phones, list) or not isinstance(signs, list) or not p.get("TemplateCode"):
            return self._error("isv.INVALID_PARAMETERS")
        if len(phones) > 100:
            return self._error("isv.MOBILE_COUNT_OVER_LIMIT")
        if values is None:
            values = [{} for _ in phones]
        if len(signs) != len(phones) or not isinstance(values, list) or len(values) != len(phones):
            return self._error("isv.INVALID_PARAMETERS")
        for phone, sign, vals in zip(phones, signs, values, strict=True):
            problem = self._check_message(str(phone), str(sign), p["TemplateCode"], vals)
            if problem:
                return self._error(problem)
        biz_id = f"{next(self._ids)}^0"
        for phone, sign, vals in zip(phones, signs, values, strict=True):
            self._accept(str(phone), sign, p["TemplateCode"], vals, p.get("OutId", ""), biz_id)
        return self._ok(biz_id)

    def _query(self, p: dict[str, str]) -> web.Response:
        phone, date = p.get("PhoneNumber", ""), p.get("SendDate", "")
        try:
            size, page = int(p.get("PageSize", "")), int(p.get("CurrentPage", ""))
        except ValueError:
            return self._error("isv.INVALID_PARAMETERS")
        if not phone or not re.fullmatch(r"\d{8}", date) or not 1 <= size <= 50 or page < 1:
            return self._error("isv.INVALID_PARAMETERS")
        rows = [
            s
            for s in self._sent_by_phone.get(phone, [])
            if datetime.fromtimestamp(s.send_time, CHINA_TZ).strftime("%Y%m%d") == date
            and (not p.get("BizId") or s.biz_id == p["BizId"])
        ]
        dtos = [
            {
                "PhoneNum": phone,
                "SendStatus": s.status,
                "ErrCode": s.err_code,
                "TemplateCode": s.template_code,
                "Content": s.record.text,
                "SendDate": _fmt(s.send_time),
                "ReceiveDate": _fmt(s.receive_time) if s.receive_time else "",
                "OutId": s.out_id,
            }
            for s in rows[(page - 1) * size : page * size]
        ]
        return json_response(
            {
                "Code": "OK",
                "Message": "OK",
                "RequestId": self._request_id(),
                "TotalCount": len(rows),
                "SmsSendDetailDTOs": {"SmsSendDetailDTO": dtos},
            }
        )

    # ---- receipts -------------------------------------------------------------------------------

    def _settle(self, s: _Sent, now: float) -> dict[str, Any]:
        """The carrier's verdict on ``s`` (a receipt scenario fails it) and the SmsReport item saying so."""
        failed = self.receipt_scenarios.get(s.record.recipient)
        s.status, s.err_code, s.receive_time = (2, failed, now) if failed else (3, "DELIVERED", now)
        return self._report(s)

    @staticmethod
    def _report(s: _Sent) -> dict[str, Any]:
        ok = s.status == 3
        return {
            "phone_number": s.record.recipient,
            "send_time": _fmt(s.send_time),
            "report_time": _fmt(s.receive_time),
            "success": ok,
            "err_code": s.err_code,
            "err_msg": "用户接收成功" if ok else "用户接收失败",
            "sms_size": str(1 if len(s.record.text) <= 70 else -(-len(s.record.text) // 67)),
            "biz_id": s.biz_id,
            "out_id": s.out_id,
        }

