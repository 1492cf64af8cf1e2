"""Tencent Cloud SMS (``SendSms`` 2021-01-11, TC3-HMAC-SHA256): the second SMS provider.

One ``SendSms`` call carries up to 200 numbers that share one template and one parameter list, so
only messages with identical parameters are grouped. Request-level failures come back as
``Response.Error``; per-number verdicts come in ``SendStatusSet`` (success is ``"Ok"``, not ``"OK"``).

Every call's ``SessionContext`` names the delivery ids it carries (one id, or several joined by
commas, the call split so that they fit in 512 bytes), so a pulled status names our rows even after
a restart. Receipts come three ways: the status callback (``parse_tencent_status_callback``),
``pull_send_status`` (a queue: each report is handed out once) and ``pull_send_status_by_phone``,
which ``settle`` uses to find out whether a message whose send timed out went out.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from types import MappingProxyType
from urllib.parse import urlsplit

from channels.base import OutboundMessage, Outcome, SendResult, chunked
from channels.errors import (
    AuthError,
    ChannelError,
    InvalidMessageError,
    PermanentError,
    ProviderServerError,
    ThrottledError,
)
from channels.http_channel import HttpChannel
from channels.query import Answer, Inquiry
from channels.rate_limit import CHINA_TZ, RateLimit
from channels.receipts import Receipt, parse_tencent_pulled_status, session_context_for
from channels.replies import Reply
from channels.signing import Tc3Request, tc3_authorization

__all__ = ["TENCENT_CODES", "SendLookup", "TencentSms", "TencentSmsConfig", "TencentTemplate"]

_P, _R, _U = Outcome.PERMANENT, Outcome.RETRYABLE, Outcome.UNREACHABLE
#: Every code of the protocol document: common (request-level) first, then SMS-specific per number.
TENCENT_CODES: Mapping[str, Outcome] = MappingProxyType(
    {
        "Ok": Outcome.ACCEPTED,
        "AuthFailure.SignatureFailure": _P,
        "AuthFailure.SignatureExpire": _P,  # our clock is > 5 min off
        "AuthFailure.SecretIdNotFound": _P,
        "AuthFailure.InvalidAuthorization": _P,
        "InvalidParameter": _P,
        "InvalidParameterValue": _P,
        "MissingParameter": _P,
        "LimitExceeded": _R,
        "RequestLimitExceeded": _R,
        "RequestLimitExceeded.IPLimitExceeded": _R,
        "IpNotInWhitelist": _P,
        "InternalError": _R,
        "FailedOperation.SignatureIncorrectOrUnapproved": _P,
        "FailedOperation.TemplateIncorrectOrUnapproved": _P,
        "FailedOperation.PhoneNumberInBlacklist": _U,  # the user unsubscribed (免打扰)
        "FailedOperation.ContainSensitiveWord": _P,
        "InvalidParameterValue.IncorrectPhoneNumber": _U,
        "InvalidParameterValue.ContentLengthLimit": _P,
        "InvalidParameterValue.SdkAppIdNotExist": _P,
        "LimitExceeded.DeliveryFrequencyLimit": _R,
        "LimitExceeded.PhoneNumberDailyLimit": _R,
        "LimitExceeded.PhoneNumberThirtySecondLimit": _R,
        "LimitExceeded.PhoneNumberOneHourLimit": _R,
        "LimitExceeded.PhoneNumberCountLimit": _P,
        "FailedOperation.InsufficientBalanceInSmsPackage": _R,  # top-up needed; fail over meanwhile
        "InvalidParameterValue.TemplateParameterFormatError": _P,
        "InvalidParameterValue.TemplateParameterLengthLimit": _P,
        "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": _P,
    }
)
_THROTTLE = frozenset(
    {
        "LimitExceeded",
        "RequestLimitExceeded",
        "RequestLimitExceeded.IPLimitExceeded",
        "LimitExceeded.DeliveryFrequencyLimit",
        "LimitExceeded.PhoneNumberDailyLimit",
        "LimitExceeded.PhoneNumberThirtySecondLimit",
        "LimitExceeded.PhoneNumberOneHourLimit",
        "QUOTA_EXHAUSTED",
    }
)
_PHONE = re.compile(r"^(?:\+86|0086|86)?(1[3-9]\d{9})$")
_MAX_NUMBERS = 200


@dataclass(frozen=True, slots=True)
class TencentTemplate:
    """A Tencent template id and the order of its ``{1}``, ``{2}``… slots, named as our params."""

    template_id: str
    params: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SendLookup:
    """What Tencent's records say of one message: ``sent`` True (found), or None (cannot tell)."""

    delivery_id: str
    sent: bool | None
    serial_no: str = ""
    #: the carrier's verdict found with it (delivered, or failed and why)
    receipt: Receipt | None = None


@dataclass(frozen=True, slots=True)
class TencentSmsConfig:
    secret_id: str
    secret_key: str
    sdk_app_id: str
    sign_name: str
    templates: Mapping[str, TencentTemplate]
    base_url: str = "https://sms.tencentcloudapi.com/"
    region: str = "ap-guangzhou"
    timeout_s: float = 5.0
    rate: RateLimit = field(default_factory=lambda: RateLimit(requests_per_s=3000, burst=300))
    #: how far back ``settle`` looks for a message's status (Tencent keeps 7 days)
    settle_lookback_s: float = 24 * 3600.0
    #: how long after a send a status report may still come (carriers report most within minutes): until
    #: then a send Tencent has no record of is asked about again rather than given up (``answer_wait_s``)
    report_wait_s: float = 1800.0


class TencentSms(HttpChannel[TencentSmsConfig]):
    name = "tencent_sms"
    kind = "sms"
    code_table = TENCENT_CODES
    throttle_codes = _THROTTLE

    @cached_property
    def _host(self) -> str:
        return urlsplit(self.config.base_url).netloc

    async def _send(self, batch: Sequence[OutboundMessage]) -> list[SendResult]:
        results: list[SendResult | None] = [None] * len(batch)
        groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        for i, msg in enumerate(batch):
            tpl = self.config.templates.get(msg.template)
            if tpl is None:
                results[i] = self.result_from_error(
                    msg, InvalidMessageError(f"no Tencent template for {msg.template!r}", code="TEMPLATE_UNKNOWN")
                )
                continue
            missing = [p for p in tpl.params if not msg.params.get(p)]
            if missing:
                results[i] = self.result_from_error(
                    msg, InvalidMessageError(f"missing parameters {missing}", code="TEMPLATE_MISSING_PARAMETERS")
                )
                continue
            if not _PHONE.match(msg.recipient):
                results[i] = self.result(msg, "InvalidParameterValue.IncorrectPhoneNumber", "not a mainland mobile")
                continue
            values = tuple(msg.params[p] for p in tpl.params)
            groups.setdefault((tpl.template_id, values), []).append(i)
        jobs = []
        for (template_id, values), idxs in groups.items():
            # a number appears once per call, so repeated phones go into separate calls
            rounds: list[list[int]] = []
            seen: list[set[str]] = []
            for i in idxs:
                phone = _e164(batch[i].recipient)
                slot = next((k for k, s in enumerate(seen) if phone not in s), None)
                if slot is None:
                    rounds.append([])
                    seen.append(set())
                    slot = len(rounds) - 1
                rounds[slot].append(i)
                seen[slot].add(phone)
            for part in (p for r in rounds for c in chunked(r, _MAX_NUMBERS) for p in _fit_context(c, batch)):
                jobs.append(self._job(template_id, values, [batch[i] for i in part], part))
        for pairs in await asyncio.gather(*jobs):
            for i, res in pairs:
                results[i] = res
        return [r for r in results if r is not None]

    async def _job(
        self, template_id: str, values: tuple[str, ...], msgs: list[OutboundMessage], idxs: Sequence[int]
    ) -> list[tuple[int, SendResult]]:
        # ids that cannot be named (a comma inside, or one id over 512 bytes) get a digest instead
        context = session_context_for([m.delivery_id for m in msgs]) or "B" + hashlib.sha1(
            ",".join(m.delivery_id for m in msgs).encode()
        ).hexdigest()[:24]
        payload = {
            "PhoneNumberSet": [_e164(m.recipient) for m in msgs],
            "SmsSdkAppId": self.config.sdk_app_id,
            "SignName": self.config.sign_name,
            "TemplateId": template_id,
            "TemplateParamSet": list(values),
            "SessionContext": context,
        }
        try:
            await self._limiter.acquire(len(msgs))
            body = await self._call("SendSms", payload)
        except ChannelError as exc:
            return [(i, self.result_from_error(m, exc)) for i, m in zip(idxs, msgs, strict=True)]
        response = body.get("Response", {})
        error = response.get("Error") if isinstance(response, dict) else None
        if isinstance(error, dict):
            code, text = str(error.get("Code", "")), str(error.get("Message", ""))
            return [(i, self.result(m, code, text)) for i, m in zip(idxs, msgs, strict=True)]
        statuses = {str(s.get("PhoneNumber")): s for s in response.get("SendStatusSet", []) if isinstance(s, dict)}
        out = []
        for i, m in zip(idxs, msgs, strict=True):
            s = statuses.get(_e164(m.recipient))
            if s is None:
                out.append((i, self.result(m, "NO_STATUS", "number missing from SendStatusSet", outcome=_R)))
            else:
                out.append((i, self.result(m, str(s.get("Code")), str(s.get("Message", "")),
                                           provider_message_id=str(s.get("SerialNo", "")))))
        return out

    def signed_headers(self, action: str, payload: bytes) -> dict[str, str]:
        """Headers for a TC3-signed call; the action header is signed too, lowercased as Tencent does."""
        timestamp = int(self._now())
        headers = {
            "content-type": "application/json; charset=utf-8",
            "host": self._host,
            "x-tc-action": action.lower(),
        }
        auth = tc3_authorization(
            secret_id=self.config.secret_id,
            secret_key=self.config.secret_key,
            service="sms",
            timestamp=timestamp,
            request=Tc3Request(headers, ["content-type", "host", "x-tc-action"], payload),
        )
        return {
            "Content-Type": headers["content-type"],
            "Host": self._host,
            "X-TC-Action": action,
            "X-TC-Version": "2021-01-11",
            "X-TC-Region": self.config.region,
            "X-TC-Timestamp": str(timestamp),
            "Authorization": auth,
        }

    async def _call(self, action: str, payload: Mapping[str, object]) -> dict[str, object]:
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        body, _ = await self._post_json(self.config.base_url, data=data, headers=self.signed_headers(action, data))
        if not isinstance(body, dict) or not isinstance(body.get("Response"), dict):
            raise ProviderServerError(f"{self.name}: answer without Response", code="BAD_ANSWER")
        return body

    # ---- receipts and replies: the pull APIs ----------------------------------------------------

    async def _pull(self, action: str, payload: Mapping[str, object], key: str) -> list[object]:
        """Call a pull API and return its result list; a ``Response.Error`` raises ``ChannelError``."""
        await self._limiter.bucket.acquire(1.0)
        response = (await self._call(action, payload))["Response"]
        assert isinstance(response, dict)
        error = response.get("Error")
        if isinstance(error, dict):
            code, text = str(error.get("Code", "")), f"{action}: {error.get('Message', '')}"
            if code.startswith("AuthFailure"):
                raise AuthError(text, code=code)
            if code in self.throttle_codes:
                raise ThrottledError(text, code=code)
            if self.outcome_for(code) is Outcome.RETRYABLE:
                raise ProviderServerError(text, code=code)
            raise PermanentError(text, code=code)
        rows = response.get(key)
        if rows is None:
            return []
        if not isinstance(rows, list):
            raise ProviderServerError(f"{self.name}: {action} answered without {key}", code="BAD_ANSWER")
        return rows

    async def pull_send_status(self, limit: int = 100) -> list[Receipt]:
        """``PullSmsSendStatus``: the next reports from Tencent's queue (each is handed out once).

        Apply what comes back before pulling again: a report pulled and then lost is gone.
        """
        payload = {"SmsSdkAppId": self.config.sdk_app_id, "Limit": _limit(limit)}
        return parse_tencent_pulled_status(await self._pull("PullSmsSendStatus", payload, "PullSmsSendStatusSet"))

    async def pull_send_status_by_phone(
        self, phone: str, begin: float, end: float | None = None, *, limit: int = 100
    ) -> list[Receipt]:
        """``PullSmsSendStatusByPhoneNumber``: reports for one number sent from ``begin`` (UNIX s,
        at most 7 days back) to ``end`` (default now). Sends not yet reported are not listed."""
        payload: dict[str, object] = {
            "SmsSdkAppId": self.config.sdk_app_id, "PhoneNumber": _e164(phone), "BeginTime": int(begin),
            "Offset": 0, "Limit": _limit(limit),
        }  # fmt: skip
        if end is not None:
            payload["EndTime"] = int(end)
        rows = await self._pull("PullSmsSendStatusByPhoneNumber", payload, "PullSmsSendStatusSet")
        return parse_tencent_pulled_status(rows)

    async def pull_replies(self, limit: int = 100) -> list[Reply]:
        """``PullSmsReplyStatus``: the next up-messages from Tencent's queue, classified."""
        payload = {"SmsSdkAppId": self.config.sdk_app_id, "Limit": _limit(limit)}
        rows = await self._pull("PullSmsReplyStatus", payload, "PullSmsReplyStatusSet")
        replies = []
        for row in rows:
            if not isinstance(row, dict) or str(row.get("CountryCode", "86")) != "86":
                continue
            text = str(row.get("ReplyContent") or "")
            stamp = row.get("ReplyTime")
            replies.append(
                Reply.read(
                    self.name, str(row.get("SubscriberNumber") or ""), text,
                    datetime.fromtimestamp(stamp, CHINA_TZ) if isinstance(stamp, int) else None,
                    sign_name=str(row.get("SignName") or ""), extend_code=str(row.get("ExtendCode") or ""),
                )
            )
        return replies

    def answer_wait_s(self) -> float:
        return self.config.report_wait_s

    async def find_send(self, recipient: str, delivery_id: str, since: datetime | None = None) -> SendLookup:
        """Ask Tencent whether the message ``delivery_id`` to ``recipient`` went out (sent since ``since``;
        default ``settle_lookback_s`` ago). Never raises for provider trouble.

        A reported status whose SessionContext names the delivery id: ``sent=True`` with the SerialNo
        and the receipt. Otherwise ``sent=None``: Tencent lists a send only once the carrier has
        reported it, so "no record yet" never proves that nothing went out.
        """
        begin = since.timestamp() if since is not None else self._now() - self.config.settle_lookback_s
        begin = max(begin, self._now() - 7 * 24 * 3600 + 60)  # Tencent keeps seven days
        try:
            receipts = await self.pull_send_status_by_phone(recipient, begin)
        except ChannelError:
            return SendLookup(delivery_id, None)
        for r in receipts:
            if delivery_id == r.delivery_id or delivery_id in r.context_ids:
                return SendLookup(delivery_id, True, r.provider_message_id, r)
        return SendLookup(delivery_id, None)

    async def query(self, items: Sequence[Inquiry]) -> list[Answer]:
        """What Tencent's records say of messages of unknown outcome, through ``find_send``: found, the
        SerialNo and the receipt; otherwise None (absence proves nothing, see ``find_send``)."""

        async def one(item: Inquiry) -> Answer:
            found = await self.find_send(item.recipient, item.delivery_id, item.since)
            return Answer(item.delivery_id, self.name, found.sent, found.serial_no, found.receipt)

        return list(await asyncio.gather(*(one(i) for i in items)))


def _limit(limit: int) -> int:
    if not 1 <= limit <= 100:
        raise ValueError("Tencent pulls take a limit of 1 to 100")
    return limit


def _fit_context(idxs: Sequence[int], batch: Sequence[OutboundMessage]) -> list[list[int]]:
    """Split one call's messages so that each part's delivery ids fit in one SessionContext."""
    parts: list[list[int]] = [[]]
    for i in idxs:
        candidate = [*parts[-1], i]
        if parts[-1] and session_context_for([batch[j].delivery_id for j in candidate]) is None:
            parts.append([i])
        else:
            parts[-1] = candidate
    return [p for p in parts if p]


def _e164(phone: str) -> str:
    m = _PHONE.match(phone)
    return f"+86{m.group(1)}" if m else phone
