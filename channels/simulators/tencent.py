"""Tencent Cloud SMS simulator: ``SendSms`` 2021-01-11 behind a TC3-HMAC-SHA256 check.

The signature is recomputed with whatever ``SignedHeaders`` the client declared (``content-type``
and ``host`` are required), ``X-TC-Timestamp`` must be within 5 minutes, and the credential date must
be the UTC date of the timestamp. Request-level errors come back as ``Response.Error`` with HTTP 200;
per-number verdicts in ``SendStatusSet``.
"""

from __future__ import annotations

import hmac
import itertools
import json
import re
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from channels.signing import tc3_signature
from channels.simulators._common import Faults, SentRecord, Simulator, json_response

__all__ = ["TencentSimConfig", "TencentSimulator"]

_AUTH = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>\w+)/tc3_request, "
    r"SignedHeaders=(?P<headers>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)
_PHONE = re.compile(r"^(?:\+86|0086|86)?(1[3-9]\d{9})$")
_DAY_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class TencentSimConfig:
    secrets: Mapping[str, str] = field(default_factory=lambda: {"sim-secret-id": "sim-secret-key"})
    sdk_app_id: str = "1400000001"
    sign_names: frozenset[str] = frozenset({"盘锦政务"})
    #: TemplateId -> body with {1}, {2}… slots
    templates: Mapping[str, str] = field(
        default_factory=lambda: {"2000001": "您可能符合{1}，{2}，申报截止{3}。{4}。详见 https://s.pj.gov.cn/{5} 回复TD退订"}
    )
    #: +86 phone -> per-number code (e.g. FailedOperation.PhoneNumberInBlacklist)
    send_scenarios: Mapping[str, str] = field(default_factory=dict)
    daily_limit_per_phone: int = 10
    max_param_len: int = 35


class TencentSimulator(Simulator):
    provider = "tencent_sms"

    def __init__(
        self,
        config: TencentSimConfig | None = None,
        *,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(faults=faults, clock=clock)
        self.config = config or TencentSimConfig()
        self._serials = itertools.count(1)
        self._daily: dict[str, deque[float]] = defaultdict(deque)
        self.app.router.add_route("*", "/", self._handle)

    def _error(self, code: str, message: str = "") -> web.Response:
        if code.startswith("HTTP_"):
            return web.Response(status=int(code[5:]), text="simulated failure")
        return json_response({"Response": {"Error": {"Code": code, "Message": message or code}, "RequestId": str(uuid.uuid4())}})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return self._error("InvalidParameter", "only POST is supported")
        payload = await request.read()
        problem = self._check_auth(request, payload)
        if problem:
            return self._error(*problem)
        fault = await self.inject()
        if fault is not None and fault != "TIMEOUT":
            return self._error(fault, "simulated")
        try:
            body = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._error("InvalidParameter", "body is not JSON")
        answer = self._send(body if isinstance(body, dict) else {})
        if fault == "TIMEOUT":
            await self.hang()
        return answer

    def _check_auth(self, request: web.Request, payload: bytes) -> tuple[str, str] | None:
        h = request.headers
        for name in ("X-TC-Action", "X-TC-Version", "X-TC-Timestamp", "X-TC-Region", "Authorization"):
            if not h.get(name):
                return ("MissingParameter", f"missing header {name}")
        if h["X-TC-Action"] != "SendSms" or h["X-TC-Version"] != "2021-01-11":
            return ("InvalidParameter", "unknown action or version")
        m = _AUTH.match(h["Authorization"])
        if not m or m["service"] != "sms":
            return ("AuthFailure.InvalidAuthorization", "Authorization header is malformed")
        signed = m["headers"].split(";")
        if "content-type" not in signed or "host" not in signed or signed != sorted(signed):
            return ("AuthFailure.InvalidAuthorization", "SignedHeaders must include content-type and host, sorted")
        secret = self.config.secrets.get(m["id"])
        if secret is None:
            return ("AuthFailure.SecretIdNotFound", "The SecretId is not found")
        try:
            ts = int(h["X-TC-Timestamp"])
        except ValueError:
            return ("InvalidParameter", "X-TC-Timestamp is not an integer")
        if abs(self.clock() - ts) > 300:
            return ("AuthFailure.SignatureExpire", "Signature expired: the timestamp is more than 5 minutes off")
        if datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d") != m["date"]:
            return ("AuthFailure.SignatureFailure", "credential date is not the UTC date of the timestamp")
        headers = {}
        for name in signed:
            value = h.get(name, "")
            headers[name] = value.lower() if name == "x-tc-action" else value
        expected = tc3_signature(
            secret_key=secret, service="sms", timestamp=ts, headers=headers, signed_headers=signed, payload=payload
        )
        if not hmac.compare_digest(expected, m["sig"]):
            return (
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. Please check your signature is correct.",
            )
        return None

    def _send(self, body: dict[str, Any]) -> web.Response:
        phones = body.get("PhoneNumberSet")
        params = body.get("TemplateParamSet", [])
        if not isinstance(phones, list) or not phones or not body.get("TemplateId"):
            return self._error("MissingParameter", "PhoneNumberSet and TemplateId are required")
        if len(phones) > 200:
            return self._error("LimitExceeded.PhoneNumberCountLimit", "at most 200 numbers per call")
        if body.get("SmsSdkAppId") != self.config.sdk_app_id:
            return self._error("InvalidParameterValue.SdkAppIdNotExist", "SmsSdkAppId does not exist")
        if body.get("SignName") not in self.config.sign_names:
            return self._error("FailedOperation.SignatureIncorrectOrUnapproved", "signature not approved")
        template = self.config.templates.get(str(body["TemplateId"]))
        if template is None:
            return self._error("FailedOperation.TemplateIncorrectOrUnapproved", "template not approved")
        slots = len(set(re.findall(r"\{(\d+)\}", template)))
        if not isinstance(params, list) or len(params) != slots or not all(isinstance(p, str) for p in params):
            return self._error("InvalidParameterValue.TemplateParameterFormatError", "TemplateParamSet does not fit")
        if any(len(p) > self.config.max_param_len for p in params):
            return self._error("InvalidParameterValue.TemplateParameterLengthLimit", "a parameter is too long")
        text = f"【{body['SignName']}】" + re.sub(r"\{(\d+)\}", lambda m: params[int(m.group(1)) - 1], template)
        context = str(body.get("SessionContext", ""))
        statuses = [self._one(str(p), text, str(body["TemplateId"]), params, context) for p in phones]
        return json_response({"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}})

    def _one(self, phone: str, text: str, template: str, params: list[str], context: str) -> dict[str, Any]:
        m = _PHONE.match(phone)
        e164 = f"+86{m.group(1)}" if m else phone
        status: dict[str, Any] = {"SerialNo": "", "PhoneNumber": e164, "Fee": 0, "SessionContext": context, "IsoCode": "CN"}
        code = "Ok"
        if not m:
            code = "InvalidParameterValue.IncorrectPhoneNumber"
        elif e164 in self.config.send_scenarios:
            code = self.config.send_scenarios[e164]
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
        self.record(SentRecord(self.provider, serial, m.group(1), context, template, named, text, self.clock()))
        return {**status, "SerialNo": serial, "Fee": fee, "Code": "Ok", "Message": "send success"}
