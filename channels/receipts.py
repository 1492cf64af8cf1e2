"""Delivery receipts and events that providers push to us: parsed into one ``Receipt`` shape.

* Aliyun ``SmsReport`` (HTTP batch mode): a JSON array; answer ``ALIYUN_RECEIPT_ACK`` with HTTP 200.
  Aliyun does not deduplicate: the same report may come again, so key on ``Receipt.key``.
* WeChat ``TEMPLATESENDJOBFINISH``: an XML event on the account's server URL, signed with the
  ``signature``/``timestamp``/``nonce`` query parameters; answer ``success``.
"""

from __future__ import annotations

import hmac
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from channels.errors import ProtocolError
from channels.outcome import Outcome
from channels.rate_limit import CHINA_TZ
from channels.signing import wechat_callback_signature

__all__ = [
    "ALIYUN_RECEIPT_ACK",
    "Receipt",
    "parse_aliyun_sms_report",
    "parse_wechat_event",
    "verify_wechat_signature",
]

#: What Aliyun expects back; anything else (or a timeout) makes it push again after 1, 5, 10 minutes.
ALIYUN_RECEIPT_ACK = {"code": 0, "msg": "接收成功"}

_MAX_XML_BYTES = 64 * 1024
_WECHAT_STATUS: dict[str, Outcome] = {
    "success": Outcome.ACCEPTED,
    "failed:user block": Outcome.UNREACHABLE,
    "failed: system failed": Outcome.RETRYABLE,
}


@dataclass(frozen=True, slots=True)
class Receipt:
    """A provider's later word on a message it accepted.

    ``delivered`` is True only for a confirmed delivery. ``outcome`` says what to do on failure:
    ``UNREACHABLE`` (try another channel), ``RETRYABLE`` or ``PERMANENT``; ACCEPTED when delivered.
    """

    provider: str
    provider_message_id: str
    recipient: str
    delivered: bool
    outcome: Outcome
    code: str
    text: str = ""
    delivery_id: str = ""
    reported_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """Deduplication key: a provider may push the same report more than once."""
        return (self.provider, self.provider_message_id, self.recipient)


def _aliyun_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        return None


# Carrier error codes in receipts that mean the number itself is unusable (empty, suspended, absent).
_ALIYUN_UNREACHABLE_RECEIPT = frozenset({"MK:0001", "MK:0012", "MI:0013", "IC:0015", "UNDELIV", "EMPTY_NUMBER"})


def aliyun_verdict(delivered: bool, err_code: str) -> Outcome:
    """What an Aliyun delivery verdict (an SmsReport, or a QuerySendDetails row) means for the message."""
    if delivered:
        return Outcome.ACCEPTED
    return Outcome.UNREACHABLE if err_code in _ALIYUN_UNREACHABLE_RECEIPT else Outcome.PERMANENT


def parse_aliyun_sms_report(body: bytes | str) -> list[Receipt]:
    """Parse an Aliyun SmsReport push (a JSON array of reports)."""
    try:
        items = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"SmsReport is not JSON: {exc}") from exc
    if not isinstance(items, list):
        raise ProtocolError("SmsReport must be a JSON array")
    receipts = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "biz_id" not in item or "phone_number" not in item:
            raise ProtocolError(f"SmsReport item {i} lacks biz_id or phone_number")
        success = item.get("success") in (True, "true")
        code = str(item.get("err_code", ""))
        outcome = aliyun_verdict(success, code)
        receipts.append(
            Receipt(
                provider="aliyun_sms",
                provider_message_id=str(item["biz_id"]),
                recipient=str(item["phone_number"]),
                delivered=success,
                outcome=outcome,
                code=code,
                text=str(item.get("err_msg", "")),
                delivery_id=str(item.get("out_id") or ""),
                reported_at=_aliyun_time(item.get("report_time")),
            )
        )
    return receipts


def verify_wechat_signature(token: str, signature: str, timestamp: str, nonce: str) -> bool:
    """True when ``signature`` is sha1(sorted(token, timestamp, nonce)), compared in constant time."""
    return hmac.compare_digest(wechat_callback_signature(token, timestamp, nonce), signature or "")


def parse_wechat_event(body: bytes) -> Receipt | None:
    """Parse a TEMPLATESENDJOBFINISH event; None for any other event or message type.

    The XML is refused if it declares a DTD or entities (no entity expansion attacks) or is large.
    """
    if len(body) > _MAX_XML_BYTES:
        raise ProtocolError("WeChat event larger than 64 KiB")
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise ProtocolError("WeChat event declares a DTD")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ProtocolError(f"WeChat event is not XML: {exc}") from exc
    fields = {child.tag: (child.text or "").strip() for child in root}
    if fields.get("MsgType") != "event" or fields.get("Event") != "TEMPLATESENDJOBFINISH":
        return None
    status = fields.get("Status", "")
    outcome = _WECHAT_STATUS.get(status, Outcome.PERMANENT)
    created = fields.get("CreateTime", "")
    return Receipt(
        provider="wechat",
        provider_message_id=fields.get("MsgID", ""),
        recipient=fields.get("FromUserName", ""),
        delivered=outcome is Outcome.ACCEPTED,
        outcome=outcome,
        code=status,
        reported_at=datetime.fromtimestamp(int(created), CHINA_TZ) if created.isdigit() else None,
    )
