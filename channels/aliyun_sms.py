"""Aliyun SMS (dysmsapi 2017-05-25, RPC style, signature V1 / HMAC-SHA1).

Messages with the same template go out in ``SendBatchSms`` calls of up to 100 numbers, each with its
own variables; a lone message goes through ``SendSms`` with ``OutId`` = our delivery id. A batch
carries one ``OutId`` per call (a digest of its delivery ids), so receipts of batch members are
matched by (BizId, phone). Sends are not idempotent: an unknown outcome is looked up with
``QuerySendDetails`` before any retry (see ``query``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from types import MappingProxyType

from channels.base import OutboundMessage, Outcome, SendResult, chunked
from channels.errors import ChannelError, InvalidMessageError, ProviderServerError
from channels.http_channel import HttpChannel
from channels.query import Answer, Inquiry
from channels.rate_limit import CHINA_TZ, RateLimit
from channels.receipts import Receipt, aliyun_verdict
from channels.render import check_sms_variable
from channels.signing import aliyun_signed_query

__all__ = ["ALIYUN_CODES", "AliyunSms", "AliyunSmsConfig", "SendDetail"]

_P, _R, _U = Outcome.PERMANENT, Outcome.RETRYABLE, Outcome.UNREACHABLE
#: Every code of the protocol document (business codes with HTTP 200, then gateway codes with 4xx).
ALIYUN_CODES: Mapping[str, Outcome] = MappingProxyType(
    {
        "OK": Outcome.ACCEPTED,
        "isv.BUSINESS_LIMIT_CONTROL": _R,  # per-phone flow control: later, not never
        "isv.MOBILE_NUMBER_ILLEGAL": _U,
        "isv.MOBILE_COUNT_OVER_LIMIT": _P,
        "isv.TEMPLATE_MISSING_PARAMETERS": _P,
        "isv.INVALID_JSON_PARAM": _P,
        "isv.INVALID_PARAMETERS": _P,
        "isv.PARAM_LENGTH_LIMIT": _P,
        "isv.PARAM_NOT_SUPPORT_URL": _P,
        "isv.AMOUNT_NOT_ENOUGH": _R,  # the account needs topping up; the other provider may still work
        "isv.BLACK_KEY_CONTROL_LIMIT": _U,
        "isv.SMS_TEMPLATE_ILLEGAL": _P,
        "isv.SMS_SIGNATURE_ILLEGAL": _P,
        "isv.SMS_SIGNATURE_SCENE_ILLEGAL": _P,
        "isv.SIGN_STATE_ILLEGAL": _P,
        "isv.EXTEND_CODE_ERROR": _P,
        "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": _U,
        "isv.DENY_IP_RANGE": _P,
        "isv.DAY_LIMIT_CONTROL": _R,
        "isv.MONTH_LIMIT_CONTROL": _R,
        "isv.SMS_CONTENT_ILLEGAL": _P,
        "isv.SMS_SIGN_ILLEGAL": _P,
        "isv.OUT_OF_SERVICE": _R,
        "isv.PRODUCT_UN_SUBSCRIPT": _P,
        "isv.PRODUCT_UNSUBSCRIBE": _P,
        "isv.ACCOUNT_NOT_EXISTS": _P,
        "isv.ACCOUNT_ABNORMAL": _P,
        "isp.RAM_PERMISSION_DENY": _P,
        "isp.SYSTEM_ERROR": _R,
        "SignatureDoesNotMatch": _P,
        "InvalidAccessKeyId.NotFound": _P,
        "InvalidAccessKeyId.Inactive": _P,
        "InvalidTimeStamp.Format": _P,
        "InvalidTimeStamp.Expired": _P,  # our clock is off by > 15 min: fix the clock, not retry
        "SignatureNonceUsed": _R,  # a fresh nonce on the next attempt fixes it
        "Missing{ParameterName}": _P,
        "InvalidSignatureMethod": _P,
        "Throttling.User": _R,
        "InvalidApi.NotFound": _P,
    }
)
_THROTTLE = frozenset(
    {"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "isv.MONTH_LIMIT_CONTROL", "Throttling.User", "QUOTA_EXHAUSTED"}
)
_PHONE = re.compile(r"^(?:\+86|0086|86)?1[3-9]\d{9}$")
_SEND_MAX, _BATCH_MAX = 1000, 100


@dataclass(frozen=True, slots=True)
class AliyunSmsConfig:
    access_key_id: str
    access_key_secret: str
    sign_name: str
    #: logical template name -> Aliyun TemplateCode
    templates: Mapping[str, str]
    base_url: str = "https://dysmsapi.aliyuncs.com/"
    region_id: str = "cn-hangzhou"
    timeout_s: float = 5.0
    use_batch: bool = True
    rate: RateLimit = field(default_factory=lambda: RateLimit(requests_per_s=5000, burst=500))


@dataclass(frozen=True, slots=True)
class SendDetail:
    """One row of ``QuerySendDetails``: SendStatus 1 = waiting for receipt, 2 = failed, 3 = delivered."""

    phone: str
    send_status: int
    err_code: str
    template_code: str
    content: str
    out_id: str
    send_date: str
    receive_date: str


class AliyunSms(HttpChannel[AliyunSmsConfig]):
    name = "aliyun_sms"
    kind = "sms"
    code_table = ALIYUN_CODES
    throttle_codes = _THROTTLE
    messages_per_request = _BATCH_MAX  # SendBatchSms: up to 100 numbers, each with its own parameters

    @cached_property
    def _batch_out_ids(self) -> OrderedDict[str, str]:
        """delivery id -> OutId of the batch it last went out in, so ``query`` can recognise it."""
        return OrderedDict()

    # ---- sending --------------------------------------------------------------------------------

    async def _send(self, batch: Sequence[OutboundMessage]) -> list[SendResult]:
        results: list[SendResult | None] = [None] * len(batch)
        groups: dict[str, list[int]] = {}
        for i, msg in enumerate(batch):
            problem = self._check(msg)
            if problem is not None:
                results[i] = self.result_from_error(msg, problem)
            else:
                groups.setdefault(self.config.templates[msg.template], []).append(i)
        jobs = []
        for code, idxs in groups.items():
            if self.config.use_batch and len(idxs) > 1:
                jobs += [self._batch_job(code, [batch[i] for i in part], part) for part in chunked(idxs, _BATCH_MAX)]
            else:
                jobs += [self._single_job(code, batch[i], i) for i in idxs]
        for pairs in await asyncio.gather(*jobs):
            for i, res in pairs:
                results[i] = res
        return [r for r in results if r is not None]

    def _check(self, msg: OutboundMessage) -> InvalidMessageError | None:
        if msg.template not in self.config.templates:
            return InvalidMessageError(f"no Aliyun template for {msg.template!r}", code="TEMPLATE_UNKNOWN")
        if not _PHONE.match(msg.recipient):
            return InvalidMessageError("not a mainland mobile number", code="isv.MOBILE_NUMBER_ILLEGAL")
        try:
            for key, value in msg.params.items():
                check_sms_variable(key, value)
        except InvalidMessageError as exc:
            return exc
        return None

    async def _single_job(self, template_code: str, msg: OutboundMessage, index: int) -> list[tuple[int, SendResult]]:
        params = {
            "PhoneNumbers": msg.recipient,
            "SignName": self.config.sign_name,
            "TemplateCode": template_code,
            "TemplateParam": json.dumps(dict(msg.params), ensure_ascii=False, separators=(",", ":")),
            "OutId": msg.delivery_id,
        }
        try:
            await self._limiter.acquire(1)
            body = await self._call("SendSms", params)
        except ChannelError as exc:
            return [(index, self.result_from_error(msg, exc))]
        return [(index, self.result(msg, str(body.get("Code")), str(body.get("Message", "")),
                                    provider_message_id=str(body.get("BizId", ""))))]

    async def _batch_job(
        self, template_code: str, msgs: list[OutboundMessage], idxs: Sequence[int]
    ) -> list[tuple[int, SendResult]]:
        out_id = "B" + hashlib.sha1(",".join(m.delivery_id for m in msgs).encode()).hexdigest()[:24]
        for m in msgs:
            self._remember(m.delivery_id, out_id)
        dumps = json.dumps
        params = {
            "PhoneNumberJson": dumps([m.recipient for m in msgs]),
            "SignNameJson": dumps([self.config.sign_name] * len(msgs), ensure_ascii=False),
            "TemplateCode": template_code,
            "TemplateParamJson": dumps([dict(m.params) for m in msgs], ensure_ascii=False, separators=(",", ":")),
            "OutId": out_id,
        }
        try:
            await self._limiter.acquire(len(msgs))
            body = await self._call("SendBatchSms", params)
        except ChannelError as exc:
            return [(i, self.result_from_error(m, exc)) for i, m in zip(idxs, msgs, strict=True)]
        code = str(body.get("Code"))
        if self.outcome_for(code) is Outcome.UNREACHABLE and len(msgs) > 1:
            # A bad number rejects the whole batch and nothing was sent: find the culprit one by one.
            singles = await asyncio.gather(*(self._single_job(template_code, m, i) for i, m in zip(idxs, msgs, strict=True)))
            return [pair for part in singles for pair in part]
        text, biz_id = str(body.get("Message", "")), str(body.get("BizId", ""))
        return [(i, self.result(m, code, text, provider_message_id=biz_id)) for i, m in zip(idxs, msgs, strict=True)]

    def _remember(self, delivery_id: str, out_id: str) -> None:
        self._batch_out_ids[delivery_id] = out_id
        self._batch_out_ids.move_to_end(delivery_id)
        while len(self._batch_out_ids) > 100_000:
            self._batch_out_ids.popitem(last=False)

    # ---- the RPC call ---------------------------------------------------------------------------

    def signed_form(self, action: str, params: Mapping[str, str]) -> str:
        """The urlencoded POST body for ``action``: common parameters, ``params`` and the V1 signature."""
        full = {
            "AccessKeyId": self.config.access_key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": self.config.region_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": datetime.fromtimestamp(self._now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
            **params,
        }
        return aliyun_signed_query(self.config.access_key_secret, "POST", full)

    async def _call(self, action: str, params: Mapping[str, str]) -> dict[str, object]:
        form = self.signed_form(action, params)
        body, status = await self._post_json(
            self.config.base_url, data=form.encode(), headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        if not isinstance(body, dict) or "Code" not in body:
            raise ProviderServerError(f"{self.name}: answer without Code (HTTP {status})", code="BAD_ANSWER")
        return body

    # ---- receipts query -------------------------------------------------------------------------

    async def query_send_details(
        self, phone: str, send_date: str, *, biz_id: str = "", page_size: int = 50, page: int = 1
    ) -> list[SendDetail]:
        """``QuerySendDetails`` for one phone on ``send_date`` (``yyyyMMdd``); raises ``ChannelError``."""
        params = {"PhoneNumber": phone, "SendDate": send_date, "PageSize": str(page_size), "CurrentPage": str(page)}
        if biz_id:
            params["BizId"] = biz_id
        await self._limiter.bucket.acquire(1.0)
        body = await self._call("QuerySendDetails", params)
        code = str(body.get("Code"))
        if code != "OK":
            raise ProviderServerError(f"{self.name}: QuerySendDetails answered {code}", code=code)
        dtos = body.get("SmsSendDetailDTOs", {})
        rows = dtos.get("SmsSendDetailDTO", []) if isinstance(dtos, dict) else []
        return [
            SendDetail(
                phone=str(r.get("PhoneNum", "")),
                send_status=int(r.get("SendStatus", 0)),
                err_code=str(r.get("ErrCode", "")),
                template_code=str(r.get("TemplateCode", "")),
                content=str(r.get("Content", "")),
                out_id=str(r.get("OutId", "")),
                send_date=str(r.get("SendDate", "")),
                receive_date=str(r.get("ReceiveDate", "")),
            )
            for r in rows
        ]

    async def query(self, items: Sequence[Inquiry]) -> list[Answer]:
        """Look for each message in Aliyun's send records (``QuerySendDetails``) since it may have gone out.

        A record carrying our id (``OutId``, the batch's ``OutId`` remembered from the send, or one of the
        item's markers in the text) means Aliyun has it, with its delivery verdict once there is one. No
        such record means it certainly was not sent, unless a record of the same template to that phone
        cannot be told apart without markers (then, and when the query fails: cannot tell).
        """
        return list(await asyncio.gather(*(self._query_one(item) for item in items)))

    async def _query_one(self, item: Inquiry) -> Answer:
        now = datetime.fromtimestamp(self._now(), CHINA_TZ)
        first = (item.since or now).astimezone(CHINA_TZ).date()
        days = min(3, max(1, (now.date() - first).days + 1))
        dates = [(now.date() - timedelta(days=back)).strftime("%Y%m%d") for back in range(days)]
        rows: list[SendDetail] = []
        try:
            for date in dates:
                rows += await self.query_send_details(item.recipient, date)
        except ChannelError:
            return Answer(item.delivery_id, self.name, None)
        ids = {item.delivery_id, self._batch_out_ids.get(item.delivery_id, "")} - {""}
        hit = next((r for r in rows if r.out_id in ids or any(m and m in r.content for m in item.markers)), None)
        if hit is not None:
            receipt = None
            if hit.send_status in (2, 3):
                delivered = hit.send_status == 3
                receipt = Receipt(
                    self.name, "", hit.phone or item.recipient, delivered, aliyun_verdict(delivered, hit.err_code),
                    hit.err_code or ("DELIVERED" if delivered else ""), delivery_id=item.delivery_id,
                )  # fmt: skip
            return Answer(item.delivery_id, self.name, True, receipt=receipt)
        template_code = self.config.templates.get(item.template, "")
        if not item.markers and any(r.template_code == template_code for r in rows):
            return Answer(item.delivery_id, self.name, None)
        return Answer(item.delivery_id, self.name, False)
